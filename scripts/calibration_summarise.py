"""Rule calibration_summarise: the grid's coverage table, the targets it meets, its figure and the run record."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

import pandas as pd  # noqa: E402

from cara_eval.calibration.archive import read_coverage, write_grid_summary  # noqa: E402
from cara_eval.calibration.summary import run_record  # noqa: E402

coverage = pd.concat([read_coverage(path) for path in snakemake.input.coverages], ignore_index=True)
write_grid_summary(coverage, snakemake.params.calibration, run_record(snakemake.params.replicate_counts),
                   dict(snakemake.output.items()))
