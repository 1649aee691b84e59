"""Decisions of the crosscheck stage (its get_* functions), kept apart from its rules."""


def get_crosscheck_cases():
    """The imputed (or complete-case) dataset the cross-checks analyse, as the model's first fit does."""
    return f"results/impute/{config['crosscheck']['dataset']}.parquet"


def get_crosscheck_outputs():
    """The cross-check deliverables the report reads."""
    return ["results/crosscheck/estimates.csv", "results/crosscheck/balance.csv"]
