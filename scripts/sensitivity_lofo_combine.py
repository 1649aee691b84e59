"""Rule sensitivity_lofo_combine: leave-one-force-out scores per force and summed, per pooling (importance-sampled
where Pareto k allows, refitted elsewhere)."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

import pandas as pd  # noqa: E402

from cara_eval.sensitivity.analyses import lofo_scores, lofo_table  # noqa: E402


def read_all(paths):
    return pd.concat([pd.read_csv(path) for path in paths], ignore_index=True) if paths else pd.DataFrame()


scores = lofo_scores(read_all(snakemake.input.importance_sampled), read_all(snakemake.input.refits),
                     snakemake.params.max_pareto_k)
lofo_table(scores).to_csv(snakemake.output.table, index=False)
