"""cohabit.config."""
