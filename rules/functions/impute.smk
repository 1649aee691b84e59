"""Decisions of the impute stage (its get_* functions), kept apart from its rules."""

from cara_eval.impute.naming import mnar_label


def get_mnar_dataset(delta, k):
    """MNAR dataset of one delta and imputation k. Delta 0 shifts nothing: it is imp{k} itself (same seed, same
    bytes), so neither the dataset nor its fit is made twice."""
    return f"imp{k}" if delta == 0 else f"mnar{mnar_label(delta)}_imp{k}"


def get_mnar_datasets():
    """MNAR sensitivity datasets for every configured delta and k in 1..mnar.m."""
    mnar = config["imputation"]["mnar"]
    return [
        get_mnar_dataset(delta, k)
        for delta in mnar["deltas"]
        for k in range(1, mnar["m"] + 1)
    ]


def get_impute_traces():
    """Convergence traces of the primary imputations, one per imp{k}."""
    return [
        f"results/impute/diagnostics/trace_{dataset}.csv"
        for dataset in get_imputation_datasets()
    ]


def get_impute_outputs():
    """Everything the impute stage delivers (for the final targets)."""
    datasets = dict.fromkeys(get_imputation_datasets() + get_mnar_datasets() + ["cc"])
    return [f"results/impute/{dataset}.parquet" for dataset in datasets] + [
        "results/impute/diagnostics/missingness.csv",
        "results/impute/diagnostics/warnings.csv",
        "results/impute/diagnostics/structural_pairs.csv",
        "results/impute/diagnostics/convergence.png",
        "results/impute/diagnostics/observed_vs_imputed.png",
    ]


def get_mnar_delta(wildcards):
    """The delta of an MNAR dataset as the number config lists (the file name carries its label)."""
    by_label = {mnar_label(d): d for d in config["imputation"]["mnar"]["deltas"]}
    if wildcards.delta not in by_label:
        raise WorkflowError(
            f"MNAR delta {wildcards.delta} is not in imputation.mnar.deltas {list(by_label)}"
        )
    return by_label[wildcards.delta]
