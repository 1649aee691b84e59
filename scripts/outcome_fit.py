"""Rule outcome_fit: one secondary-outcome fit (reoffence_count or harm) on one imputed dataset, and its gate."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

from cara_eval.common.compile_cache import start_fitting_job  # noqa: E402

start_fitting_job(snakemake.params.model["compile_dir"], snakemake.threads)

import logging  # noqa: E402

import pandas as pd  # noqa: E402

from cara_eval.model.effectiveness import derive_seed  # noqa: E402
from cara_eval.model.gate import gate_table  # noqa: E402
from cara_eval.outcomes.models import fit_outcome, gated_variables, observed_table  # noqa: E402

outcome, dataset = snakemake.wildcards.secondary_outcome, snakemake.wildcards.dataset
seed = derive_seed(snakemake.params.seed, outcome, dataset)
cases = pd.read_parquet(snakemake.input.cases)

observed = observed_table(cases, outcome)
observed.to_csv(snakemake.output.observed, index=False)
cells, _, idata = fit_outcome(cases, outcome, snakemake.params.model, snakemake.params.outcomes, seed,
                              cores=snakemake.threads)
if cells.excluded_forces:
    logging.info("%s: flag-only forces left out (no counts or harm): %s", outcome, ", ".join(cells.excluded_forces))
idata.to_netcdf(snakemake.output.idata)
gate = gate_table(idata, dataset, snakemake.params.model["gate"], gated_variables(outcome))
gate.to_csv(snakemake.output.gate, index=False)
logging.info("%s %s: gate %s", outcome, dataset, "passed" if gate["passed"].all() else "FAILED")
