"""Rule sensitivity_fit_loo: PSIS-LOO over cells of one sensitivity fit. Only the pooling comparison ranks fits by
it, so only its fits are scored (each score is 9-11 s, on default data, that no other analysis reads)."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

from cara_eval.common.compile_cache import start_fitting_job  # noqa: E402

start_fitting_job(snakemake.params.variant["model"]["compile_dir"], snakemake.threads)

import arviz as az  # noqa: E402
import pandas as pd  # noqa: E402

from cara_eval.sensitivity.analyses import scoring_model, write_loo  # noqa: E402

settings, pooling = snakemake.params.variant["model"], snakemake.params.variant["pooling"]
model = scoring_model(pd.read_parquet(snakemake.input.cases), settings, pooling)
write_loo(model, az.from_netcdf(snakemake.input.idata), snakemake.output.loo)
