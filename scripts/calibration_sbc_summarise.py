"""Rule calibration_sbc_summarise: every SBC rank, the uniformity checks and the rank histograms."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

import pandas as pd  # noqa: E402

from cara_eval.calibration.archive import write_sbc_summary  # noqa: E402

ranks = pd.concat([pd.read_csv(path) for path in snakemake.input.ranks], ignore_index=True)
write_sbc_summary(ranks, snakemake.params.bins, dict(snakemake.output.items()))
