"""Rule sensitivity_summary: every switched-on analysis in one table and one figure."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402

from cara_eval.sensitivity.analyses import plot_summary, summary_table  # noqa: E402

summary = summary_table({Path(path).stem: pd.read_csv(path) for path in snakemake.input.tables})
summary.to_csv(snakemake.output.summary, index=False)
plot_summary(summary, snakemake.output.figure)
