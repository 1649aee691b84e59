"""Stage: impute (rules are added by the impute work)."""
