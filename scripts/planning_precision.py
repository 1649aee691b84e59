"""Rule planning_precision: expected precision and assurance after more months, months until conclusive, figure."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

import logging  # noqa: E402
import time  # noqa: E402

import arviz as az  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cara_eval.model.estimands import stacked_draws  # noqa: E402
from cara_eval.planning import conclusive_table, plot_assurance, precision_table  # noqa: E402
from cara_eval.planning.accrual import project_accrual  # noqa: E402
from cara_eval.planning.precision import PLANNING_VARIABLES  # noqa: E402

started = time.perf_counter()
settings = snakemake.params.planning
partial = stacked_draws([az.from_netcdf(path) for path in snakemake.input.idata], PLANNING_VARIABLES)
no_pooling = stacked_draws([az.from_netcdf(snakemake.input.idata_no_pooling)], ["no_pooling_force_log_hr"])
cases = pd.read_parquet(snakemake.input.cases)
accrual = project_accrual(cases, np.arange(settings["max_months"] + 1), snakemake.params.followup_days)
precision = precision_table(partial, no_pooling, accrual, snakemake.params.priors, settings["simulations"],
                            settings["draws_per_simulation"], snakemake.params.seed)
precision.to_csv(snakemake.output.precision, index=False)
conclusive_table(precision, settings["assurance_target"]).to_csv(snakemake.output.conclusive, index=False)
plot_assurance(precision, settings["assurance_target"], path=snakemake.output.figure)
logging.info("planning for %d forces over %d months in %.1f s", precision["force"].nunique() - 1,
             settings["max_months"], time.perf_counter() - started)
