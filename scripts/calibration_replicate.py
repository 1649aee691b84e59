"""Rule calibration_replicate: simulate one replicate of a scenario, fit it as model_fit does, score it; or take it
from the calibration store when the same code, packages and settings made it before (cara_eval.calibration.store)."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

from cara_eval.common.compile_cache import start_fitting_job  # noqa: E402

start_fitting_job(snakemake.params.compile_dir, snakemake.threads)

import logging  # noqa: E402

from cara_eval.calibration.store import stored_or_fitted, write_replicate  # noqa: E402

scenario, replicate = snakemake.wildcards.scenario, int(snakemake.wildcards.replicate)
params = snakemake.params


def fit():
    """Imported here: a replicate taken from the store needs neither PyMC nor JAX."""
    from cara_eval.calibration.replicates import run_replicate

    return run_replicate(scenario, replicate, params.calibration, params.model, params.seed, cores=snakemake.threads)


table, record = stored_or_fitted(params.store, scenario, replicate, params.calibration, params.model, params.seed, fit)
write_replicate(table, record, snakemake.output.replicate, snakemake.output.provenance)
logging.info("%s replicate %d: %.0f s wall, %.0f s CPU", scenario, replicate, table["seconds"].iloc[0],
             table["cpu_seconds"].iloc[0])
