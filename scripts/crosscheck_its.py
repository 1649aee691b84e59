"""Rule crosscheck_its: segmented regression of monthly DA reoffence rates at each force's CARA start."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

import pandas as pd

from cara_eval.crosscheck.its import its_estimates, monthly_rates
from cara_eval.quality.profile import read_force_designs

settings = snakemake.params.its
cases = pd.read_parquet(snakemake.input.cases, columns=["force", "index_date", "followup_days", "any_reoffence"])
designs = read_force_designs(snakemake.input.mappings)
cara_starts = {force: designs[force].cara_start for force in cases["force"].unique()}
series = monthly_rates(cases, snakemake.params.followup_days, settings["min_cases_per_month"])
estimates = its_estimates(series, cara_starts, snakemake.params.level, settings["newey_west_lags"],
                          settings["min_months"])
estimates.to_csv(snakemake.output.estimates, index=False)
