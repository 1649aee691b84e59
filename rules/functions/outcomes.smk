"""Decisions of the secondary-outcomes stage (its get_* functions), kept apart from its rules."""


wildcard_constraints:
    secondary_outcome="reoffence_count|harm",


def get_outcome_fit_files(name):
    """One file per fit (imp1..impM) of a secondary outcome, for pooling."""

    def files(wildcards):
        return [
            f"results/outcomes/{wildcards.secondary_outcome}/{dataset}/{name}"
            for dataset in get_imputation_datasets()
        ]

    return files


def get_outcome_estimand(wildcards):
    """The estimand definition of one secondary outcome, as configured (written beside its table)."""
    return config["secondary_outcomes"]["estimand"][wildcards.secondary_outcome]


def get_secondary_outcomes():
    """Secondary outcomes switched on in config (none in the Quick start run)."""
    return list(config["secondary_outcomes"]["outcomes"])


def get_secondary_outcome_outputs():
    """The stage's deliverables: pooled estimands per outcome, and the truth check on synthetic data."""
    outputs = []
    for outcome in get_secondary_outcomes():
        outputs += [
            f"results/outcomes/{outcome}/pooled/estimands.csv",
            f"results/outcomes/{outcome}/pooled/gate_summary.csv",
            f"results/outcomes/{outcome}/pooled/estimand.json",
        ]
        if is_synthetic_data():
            outputs.append(f"results/outcomes/{outcome}/truth_check.csv")
    return outputs
