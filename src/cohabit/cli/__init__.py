"""cohabit.cli."""
