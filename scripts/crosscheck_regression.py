"""Rule crosscheck_regression: pooled logistic GLM + wild cluster bootstrap, pooled Poisson, per-force GLMs."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

import logging

import pandas as pd

from cara_eval.crosscheck.regression import regression_estimates

cases = pd.read_parquet(snakemake.input.cases)
estimates = regression_estimates(
    cases,
    covariates=snakemake.params.covariates,
    followup_days=snakemake.params.followup_days,
    level=snakemake.params.level,
    weights=snakemake.params.wild_bootstrap["weights"],
    draws=snakemake.params.wild_bootstrap["draws"],
    seed=snakemake.params.seed,
)
logging.info("%d estimates from %d cases in %d forces", len(estimates), len(cases), cases["force"].nunique())
estimates.to_csv(snakemake.output.estimates, index=False)
