"""Rule calibration_sbc_replicate: parameters from the model's prior, outcomes from the model, refit, ranks; or the
replicate from the calibration store when the same code, packages and settings made it (cara_eval.calibration.store)."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

from cara_eval.common.compile_cache import start_fitting_job  # noqa: E402

start_fitting_job(snakemake.params.compile_dir, snakemake.threads)

from cara_eval.calibration.store import SBC, stored_or_fitted, write_replicate  # noqa: E402

replicate = int(snakemake.wildcards.replicate)
params = snakemake.params


def fit():
    """Imported here: a replicate taken from the store needs neither PyMC nor JAX."""
    from cara_eval.calibration.sbc import run_sbc_replicate

    return run_sbc_replicate(replicate, params.calibration, params.model, params.seed, cores=snakemake.threads)


table, record = stored_or_fitted(params.store, SBC, replicate, params.calibration, params.model, params.seed, fit)
write_replicate(table, record, snakemake.output.ranks, snakemake.output.provenance)
