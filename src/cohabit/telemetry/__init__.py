"""cohabit.telemetry."""
