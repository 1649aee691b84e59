"""Rule sensitivity_lofo_combine: leave-one-force-out scores per force and summed, per pooling."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

import pandas as pd  # noqa: E402

from cara_eval.sensitivity.analyses import lofo_table  # noqa: E402

scores = pd.concat([pd.read_csv(path) for path in snakemake.input.scores], ignore_index=True)
lofo_table(scores).to_csv(snakemake.output.table, index=False)
