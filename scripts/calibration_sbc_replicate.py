"""Rule calibration_sbc_replicate: parameters from the model's prior, outcomes from the model, refit, ranks."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

from cara_eval.common.compile_cache import use_compile_dir  # noqa: E402

use_compile_dir(snakemake.params.model["compile_dir"])

from cara_eval.calibration.sbc import run_sbc_replicate  # noqa: E402

table = run_sbc_replicate(int(snakemake.wildcards.replicate), snakemake.params.calibration, snakemake.params.model,
                          snakemake.params.seed, cores=snakemake.threads)
table.to_csv(snakemake.output.ranks, index=False)
