"""Rule calibration_replicate: simulate one replicate of a scenario, fit it as model_fit does, score it."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

from cara_eval.common.compile_cache import use_compile_dir  # noqa: E402

use_compile_dir(snakemake.params.model["compile_dir"])

import logging  # noqa: E402

from cara_eval.calibration.replicates import run_replicate  # noqa: E402

scenario, replicate = snakemake.wildcards.scenario, int(snakemake.wildcards.replicate)
table = run_replicate(scenario, replicate, snakemake.params.calibration, snakemake.params.model,
                      snakemake.params.seed, cores=snakemake.threads)
table.to_csv(snakemake.output.replicate, index=False)
logging.info("%s replicate %d: %.0f s wall, %.0f s CPU", scenario, replicate, table["seconds"].iloc[0],
             table["cpu_seconds"].iloc[0])
