"""Rule model_fit: one primary fit (partial pooling) on one imputed dataset, its gate and posterior predictive check."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

from cara_eval.common.compile_cache import start_fitting_job  # noqa: E402

start_fitting_job(snakemake.params.model["compile_dir"], snakemake.threads)

import logging  # noqa: E402

import pandas as pd  # noqa: E402

from cara_eval.model.checks import plot_posterior_predictive, posterior_predictive_by_force  # noqa: E402
from cara_eval.model.effectiveness import derive_seed, fit_cases  # noqa: E402
from cara_eval.model.gate import gate_table  # noqa: E402

settings = snakemake.params.model
dataset, outcome = snakemake.wildcards.dataset, snakemake.wildcards.outcome
seed = derive_seed(snakemake.params.seed, outcome, dataset)
cases = pd.read_parquet(snakemake.input.cases)

cells, model, idata = fit_cases(cases, settings, seed, cores=snakemake.threads)
idata.to_netcdf(snakemake.output.idata)
# Each imputation's fit carries 1/m of the ESS the gate asks of the pooled draws (model_pool checks the sum).
gate = gate_table(idata, dataset, settings["gate"], ess_share=1 / snakemake.params.imputations)
gate.to_csv(snakemake.output.gate, index=False)
logging.info("%s: gate %s", dataset, "passed" if gate["passed"].all() else "FAILED")

ppc = posterior_predictive_by_force(model, idata, cells, settings["ppc_draws"], seed)
ppc.to_csv(snakemake.output.ppc, index=False)
plot_posterior_predictive(ppc, snakemake.output.ppc_figure)
