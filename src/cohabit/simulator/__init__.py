"""cohabit.simulator."""
