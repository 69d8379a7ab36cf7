"""cohabit.engine."""
