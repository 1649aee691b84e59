"""Rule sensitivity_score_model_fit: the primary model's own fit of an imputed dataset as the sensitivity stage's
primary variant: its gate judged alone (not as 1/m of the pooled draws) and its PSIS-LOO over cells."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

from cara_eval.common.compile_cache import start_fitting_job  # noqa: E402

start_fitting_job(snakemake.params.model["compile_dir"], snakemake.threads)

import arviz as az  # noqa: E402
import pandas as pd  # noqa: E402

from cara_eval.sensitivity.analyses import scoring_model, write_gate_and_loo  # noqa: E402

settings, dataset = snakemake.params.model, snakemake.wildcards.dataset
model = scoring_model(pd.read_parquet(snakemake.input.cases), settings)
write_gate_and_loo(model, az.from_netcdf(snakemake.input.idata), dataset, settings["gate"], snakemake.output,
                   "primary model's own fit")
