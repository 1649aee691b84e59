"""Decisions of the model stage (its get_* functions), kept apart from its rules."""

import yaml


wildcard_constraints:
    outcome="|".join(config["model"]["outcomes"]),
    dataset=r"[A-Za-z0-9_.\-]+",


def get_model_fit_dir(outcome, dataset):
    """Where the primary fit of one outcome on one dataset (an imputation) lives."""
    return f"results/model/{outcome}/{dataset}"


def get_model_fit_files(name):
    """One file per primary fit (imp1..impM) of an outcome, for pooling."""

    def files(wildcards):
        return [
            f"{get_model_fit_dir(wildcards.outcome, dataset)}/{name}"
            for dataset in get_imputation_datasets()
        ]

    return files


def get_no_pooling_dataset():
    """The dataset of the forest plot's no-pooling twin: one fit per outcome (the first imputation), not one per
    imputation, since it only draws the forest's no-pooling row."""
    return get_imputation_datasets()[0]


def is_synthetic_data():
    """True only when every force's mapping declares synthetic data: only then may truth be read."""
    for force in get_forces():
        with open(get_mapping_path(force)) as handle:
            if not yaml.safe_load(handle).get("synthetic", False):
                return False
    return bool(get_forces())


def get_model_outputs():
    """The model stage's deliverables for every configured outcome."""
    outputs = []
    for outcome in config["model"]["outcomes"]:
        outputs += [
            f"results/model/{outcome}/pooled/estimands.csv",
            f"results/model/{outcome}/pooled/forest.csv",
            f"results/model/{outcome}/pooled/gate_summary.csv",
            f"results/model/{outcome}/pooled/effect_draws.parquet",
            f"results/model/{outcome}/priors.csv",
            f"results/model/{outcome}/terms.csv",
        ]
        if is_synthetic_data():
            outputs.append(f"results/model/{outcome}/truth_check.csv")
    return outputs
