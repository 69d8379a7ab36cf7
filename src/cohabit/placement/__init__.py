"""cohabit.placement."""
