"""Decisions of the planning stage (its get_* functions), kept apart from its rules."""


def get_planning_outcome():
    """Planning is for the report's primary outcome (any_reoffence by default)."""
    return config["report"]["primary_outcome"]


def get_planning_fit_files(wildcards):
    """The primary partial-pooling fits (one per imputation): the posterior the simulations start from."""
    return [
        f"{get_model_fit_dir(get_planning_outcome(), dataset)}/idata.nc"
        for dataset in get_imputation_datasets()
    ]


def get_planning_no_pooling_file(wildcards):
    """The no-pooling twin: what each force's data alone say about its effect."""
    return f"results/model/{get_planning_outcome()}/idata_no_pooling.nc"


def get_planning_cases(wildcards):
    """The cases the no-pooling twin was fitted to: each force's current monthly rate, events and follow-up."""
    return f"results/impute/{get_no_pooling_dataset()}.parquet"


def get_planning_outputs():
    """The planning deliverables the report reads."""
    return [
        "results/planning/precision.csv",
        "results/planning/months_to_conclusive.csv",
        "results/planning/months_to_conclusive.png",
    ]
