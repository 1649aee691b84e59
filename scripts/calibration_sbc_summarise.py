"""Rule calibration_sbc_summarise: every SBC rank, the uniformity checks and the rank histograms."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

import pandas as pd  # noqa: E402

from cara_eval.calibration.sbc import rank_figure, uniformity_table  # noqa: E402

ranks = pd.concat([pd.read_csv(path) for path in snakemake.input.ranks], ignore_index=True)
ranks.to_csv(snakemake.output.ranks, index=False)
uniformity_table(ranks, snakemake.params.bins).to_csv(snakemake.output.uniformity, index=False)
rank_figure(ranks, snakemake.params.bins).savefig(snakemake.output.figure, dpi=150, bbox_inches="tight",
                                                  metadata={"Software": None})
