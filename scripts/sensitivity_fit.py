"""Rule sensitivity_fit: one sensitivity variant of the primary model on one dataset; its gate and PSIS-LOO."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

from cara_eval.common.compile_cache import start_fitting_job  # noqa: E402

start_fitting_job(snakemake.params.variant["model"]["compile_dir"], snakemake.threads)

import logging  # noqa: E402

import pandas as pd  # noqa: E402

from cara_eval.model.effectiveness import derive_seed, fit_cases  # noqa: E402
from cara_eval.model.gate import gate_table  # noqa: E402
from cara_eval.sensitivity.analyses import cell_loo  # noqa: E402

variant, dataset = snakemake.wildcards.variant, snakemake.wildcards.dataset
settings, pooling = snakemake.params.variant["model"], snakemake.params.variant["pooling"]
seed = derive_seed(snakemake.params.seed, "sensitivity", variant, dataset)
cases = pd.read_parquet(snakemake.input.cases)

_, model, idata = fit_cases(cases, settings, seed, snakemake.threads, pooling)
idata.to_netcdf(snakemake.output.idata)
gate = gate_table(idata, dataset, settings["gate"])
gate.to_csv(snakemake.output.gate, index=False)
logging.info("%s on %s (%s): gate %s", variant, dataset, snakemake.params.variant["note"],
             "passed" if gate["passed"].all() else "FAILED")
loo = cell_loo(model, idata)
loo.to_pickle(snakemake.output.loo)
logging.info("PSIS-LOO over %d cells: elpd %.1f (se %.1f), p_loo %.1f", loo.n_data_points, loo.elpd_loo, loo.se,
             loo.p_loo)
