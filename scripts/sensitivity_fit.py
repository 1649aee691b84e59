"""Rule sensitivity_fit: one sensitivity variant of the primary model on one dataset, and its gate (its PSIS-LOO, where
the pooling comparison needs it: sensitivity_fit_loo)."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

from cara_eval.common.compile_cache import start_fitting_job  # noqa: E402

start_fitting_job(snakemake.params.variant["model"]["compile_dir"], snakemake.threads)

import pandas as pd  # noqa: E402

from cara_eval.model.effectiveness import derive_seed, fit_cases  # noqa: E402
from cara_eval.sensitivity.analyses import write_gate  # noqa: E402

variant, dataset = snakemake.wildcards.variant, snakemake.wildcards.dataset
settings, pooling = snakemake.params.variant["model"], snakemake.params.variant["pooling"]
seed = derive_seed(snakemake.params.seed, "sensitivity", variant, dataset)
cases = pd.read_parquet(snakemake.input.cases)

_, _, idata = fit_cases(cases, settings, seed, snakemake.threads, pooling)
idata.to_netcdf(snakemake.output.idata)
write_gate(idata, dataset, settings["gate"], snakemake.output.gate, f"{variant} ({snakemake.params.variant['note']})")
