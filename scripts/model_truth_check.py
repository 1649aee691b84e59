"""Rule model_truth_check: the pooled estimate and the naive before/after estimate beside the synthetic truth."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

import json  # noqa: E402

import pandas as pd  # noqa: E402

from cara_eval.model.naive import naive_before_after, truth_check  # noqa: E402

with open(snakemake.input.truth) as handle:
    truth = json.load(handle)
naive = naive_before_after(pd.read_parquet(snakemake.input.cases))
estimands = pd.read_csv(snakemake.input.estimands)
# The first-reoffence hazard model also answers time to first reoffence: its ATT hazard ratio is checked too.
checked = ["any_reoffence", "time_to_first"] if snakemake.wildcards.outcome == "any_reoffence" else [snakemake.wildcards.outcome]
table = pd.concat([truth_check(estimands, naive, truth, outcome) for outcome in checked], ignore_index=True)
table.to_csv(snakemake.output.truth_check, index=False)
