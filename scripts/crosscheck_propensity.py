"""Rule crosscheck_propensity: ATT-weighted risk difference within force, and the balance it achieves."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

import pandas as pd

from cara_eval.crosscheck.propensity import propensity_estimates
from cara_eval.crosscheck.regression import full_followup

settings = snakemake.params.propensity
cases = full_followup(pd.read_parquet(snakemake.input.cases), snakemake.params.followup_days)
estimates, balance = propensity_estimates(
    cases,
    covariates=snakemake.params.covariates,
    level=snakemake.params.level,
    clip=tuple(settings["clip"]),
    draws=settings["bootstrap_draws"],
    seed=snakemake.params.seed,
)
estimates.to_csv(snakemake.output.estimates, index=False)
balance.to_csv(snakemake.output.balance, index=False)
