"""cohabit.operator."""
