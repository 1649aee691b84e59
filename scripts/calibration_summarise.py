"""Rule calibration_summarise: the grid's coverage table, the targets it meets, its figure and the run record."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

import json  # noqa: E402

import pandas as pd  # noqa: E402

from cara_eval.calibration.replicates import coverage_figure, run_record, target_table  # noqa: E402

calibration = snakemake.params.calibration
coverage = pd.concat([pd.read_csv(path, keep_default_na=False, na_values=[""]) for path in snakemake.input.coverages],
                     ignore_index=True)
coverage.to_csv(snakemake.output.coverage, index=False)
target_table(coverage, calibration).to_csv(snakemake.output.targets, index=False)
figure = coverage_figure(coverage, tuple(calibration["targets"]["coverage_90_band"]))
figure.savefig(snakemake.output.figure, dpi=150, bbox_inches="tight", metadata={"Software": None})
with open(snakemake.output.run, "w") as handle:
    json.dump(run_record(snakemake.params.replicate_counts), handle, indent=2, sort_keys=True)
