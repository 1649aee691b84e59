"""Decisions of the sensitivity stage (its get_* functions), kept apart from its rules."""

import pandas as pd

from cara_eval.sensitivity.analyses import (
    POOLING_VARIANTS,
    VARIANT_OF_POOLING,
    lofo_refits_needed,
    variant_settings,
)


def is_sensitivity_on(analysis):
    """True when config `sensitivity.analyses` lists the analysis."""
    return analysis in config["sensitivity"]["analyses"]


def get_sensitivity_variants(analysis):
    """Variants one comparison fits, the primary first: pooling, tau priors or force-specific trends."""
    others = {
        "pooling": [v for v in POOLING_VARIANTS if v != "primary"],
        "priors": list(config["sensitivity"]["tau_priors"]),
        "trend": ["force_trends"],
    }[analysis]
    return ["primary", *others]


def get_comparison_variants(wildcards):
    """Variants of the comparison analysis a job summarises."""
    return get_sensitivity_variants(wildcards.analysis)


def get_variant_settings(wildcards):
    """Model config, pooling and note of a variant (cara_eval.sensitivity.analyses.variant_settings)."""
    settings, pooling, note = variant_settings(
        config["model"], config["sensitivity"], wildcards.variant
    )
    return {"model": settings, "pooling": pooling, "note": note}


def get_sensitivity_outcome():
    """The outcome every sensitivity fit models: first reoffence, the primary model the stage refits with one thing
    changed (secondary outcomes have their own models), whatever the report leads with.
    """
    return "any_reoffence"


def get_sensitivity_fit_dir(variant, dataset):
    """Where a sensitivity variant's fit of one dataset writes its files: the one place that path is spelled."""
    return f"results/sensitivity/fits/{variant}/{dataset}"


def reuses_model_fit(variant, dataset):
    """True where a sensitivity fit would repeat one of the primary model's own fits: the primary variant on an
    imputed dataset, with sensitivity fits' settings (`sensitivity.fit` over `model`) equal to the model's.
    """
    if variant != "primary" or dataset not in get_imputation_datasets():
        return False
    settings, _, _ = variant_settings(config["model"], config["sensitivity"], variant)
    return settings == config["model"]


def get_sensitivity_fit_file(variant, dataset, name):
    """One file (idata.nc, gate.csv, loo.pkl) of a variant's fit of a dataset. Where the fit is the primary model's
    own, its draws are model_fit's and its gate (judged alone) and PSIS-LOO come from sensitivity_score_model_fit.
    """
    if not reuses_model_fit(variant, dataset):
        return f"{get_sensitivity_fit_dir(variant, dataset)}/{name}"
    if name == "idata.nc":
        return f"{get_model_fit_dir(get_sensitivity_outcome(), dataset)}/{name}"
    return f"results/sensitivity/model_fit_scores/{dataset}/{name}"


def get_comparison_fits(name):
    """One file per (variant, dataset) fit of a comparison analysis."""

    def files(wildcards):
        return [
            get_sensitivity_fit_file(variant, dataset, name)
            for variant in get_sensitivity_variants(wildcards.analysis)
            for dataset in config["sensitivity"]["datasets"]
        ]

    return files


def get_pooling_fits(name):
    """One file per (pooling variant, dataset) fit: the PSIS-LOO comparison's inputs."""
    return [
        get_sensitivity_fit_file(variant, dataset, name)
        for variant in get_sensitivity_variants("pooling")
        for dataset in config["sensitivity"]["datasets"]
    ]


def get_missing_data_fit_dir(dataset):
    """Where the primary model's fit of a missing-data dataset lives: a primary imputation (MNAR delta 0) is the
    primary fit itself, anything else (cc, shifted MNAR datasets) a sensitivity fit."""
    if dataset in get_imputation_datasets():
        return get_model_fit_dir(get_sensitivity_outcome(), dataset)
    return get_sensitivity_fit_dir("primary", dataset)


def get_missing_data_fits(name):
    """Primary-model fits on the complete cases and on every MNAR dataset (imputation.mnar)."""
    return [
        f"{get_missing_data_fit_dir(dataset)}/{name}"
        for dataset in ["cc", *get_mnar_datasets()]
    ]


def get_mnar_fit_dirs():
    """MNAR delta label -> the fit folders of its datasets, so the missing-data table knows which fit is which."""
    mnar = config["imputation"]["mnar"]
    return {
        mnar_label(delta): [
            get_missing_data_fit_dir(get_mnar_dataset(delta, k))
            for k in range(1, mnar["m"] + 1)
        ]
        for delta in mnar["deltas"]
    }


def get_lofo_full_fit(name):
    """The full-data fit of a pooling whose draws the importance-sampled leave-one-force-out scores reweight."""

    def path(wildcards):
        return get_sensitivity_fit_file(
            VARIANT_OF_POOLING[wildcards.pooling], wildcards.dataset, name
        )

    return path


def get_lofo_runs():
    """(pooling, dataset) pairs the leave-one-force-out analysis scores every force of."""
    return [
        (pooling, dataset)
        for pooling in config["sensitivity"]["lofo"]["poolings"]
        for dataset in config["sensitivity"]["datasets"]
    ]


def get_lofo_importance_sampled():
    """One importance-sampled table (every force) per (pooling, dataset)."""
    return [
        f"results/sensitivity/lofo_psis/{pooling}/{dataset}.csv"
        for pooling, dataset in get_lofo_runs()
    ]


def get_lofo_refits(name):
    """One refit per (pooling, dataset, held-out force) whose importance-sampled score is unreliable (Pareto k above
    `sensitivity.lofo.importance_sampling.max_pareto_k`): known once the checkpoint has scored every force.
    """
    max_pareto_k = config["sensitivity"]["lofo"]["importance_sampling"]["max_pareto_k"]

    def files(wildcards):
        paths = []
        for pooling, dataset in get_lofo_runs():
            scored = checkpoints.sensitivity_lofo_psis.get(
                pooling=pooling, dataset=dataset
            )
            scores = scored.output.scores
            for row in lofo_refits_needed(
                pd.read_csv(scores), max_pareto_k
            ).itertuples():
                paths.append(
                    f"results/sensitivity/lofo/{row.pooling}/{row.dataset}/{row.force}.{name}"
                )
        return paths

    return files


def get_sensitivity_tables():
    """Tables of the switched-on analyses: what the summary combines."""
    tables = [
        f"results/sensitivity/{analysis}.csv"
        for analysis in config["sensitivity"]["analyses"]
    ]
    if is_sensitivity_on("pooling"):
        tables.append("results/sensitivity/pooling_loo.csv")
    return tables


def get_sensitivity_outputs():
    """The sensitivity stage's deliverables (for the final targets)."""
    outputs = get_sensitivity_tables()
    if is_sensitivity_on("missing_data"):
        outputs.append("results/sensitivity/tipping_point.csv")
    return outputs + [
        "results/sensitivity/summary.csv",
        "results/sensitivity/summary.png",
    ]
