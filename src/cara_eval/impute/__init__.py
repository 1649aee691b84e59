"""Missing covariates: diagnostics, multiple imputation across forces, MNAR-shifted and complete-case datasets."""
