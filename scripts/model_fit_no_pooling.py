"""Rule model_fit_no_pooling: the forest plot's no-pooling twin (independent wide force effects), once per outcome."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

from cara_eval.common.compile_cache import start_fitting_job  # noqa: E402

start_fitting_job(snakemake.params.model["compile_dir"], snakemake.threads)

import pandas as pd  # noqa: E402

from cara_eval.model.effectiveness import derive_seed, fit_cases  # noqa: E402

settings = snakemake.params.model
# One seed past the partial-pooling fit of the same dataset, as when the twin ran inside model_fit.
seed = derive_seed(snakemake.params.seed, snakemake.wildcards.outcome, snakemake.params.dataset) + 1
no_pooling_settings = {**settings, "draws": settings["no_pooling_draws"], "tune": settings["no_pooling_draws"]}
_, _, no_pooling = fit_cases(pd.read_parquet(snakemake.input.cases), no_pooling_settings, seed,
                             cores=snakemake.threads, pooling="none")
no_pooling.to_netcdf(snakemake.output.idata)
