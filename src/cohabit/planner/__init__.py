"""cohabit.planner."""
