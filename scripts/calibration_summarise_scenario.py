"""Rule calibration_summarise_scenario: coverage, bias and RMSE of one scenario over its replicates."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

import pandas as pd  # noqa: E402

from cara_eval.calibration.summary import coverage_table  # noqa: E402

replicates = pd.concat([pd.read_csv(path, keep_default_na=True) for path in snakemake.input.replicates],
                       ignore_index=True)
coverage_table(replicates, snakemake.params.unmixed_r_hat).to_csv(snakemake.output.coverage, index=False)
