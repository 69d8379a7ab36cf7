"""cohabit.predictors."""
