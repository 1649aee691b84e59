"""Rule calibration_summarise: coverage of 50% and 90% intervals and bias over every replicate, table and figure."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

import pandas as pd  # noqa: E402

from cara_eval.calibration.replicates import coverage_figure, coverage_table  # noqa: E402

replicates = pd.concat([pd.read_csv(path, keep_default_na=True) for path in snakemake.input.replicates],
                       ignore_index=True)
coverage = coverage_table(replicates)
coverage.to_csv(snakemake.output.coverage, index=False)
coverage_figure(coverage).savefig(snakemake.output.figure, dpi=150, bbox_inches="tight", metadata={"Software": None})
