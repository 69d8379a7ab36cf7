"""cohabit.actuator."""
