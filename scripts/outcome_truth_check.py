"""Rule outcome_truth_check: a secondary outcome's pooled estimates beside the synthetic truth."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

import json  # noqa: E402

import pandas as pd  # noqa: E402

from cara_eval.model.naive import truth_check  # noqa: E402

with open(snakemake.input.truth) as handle:
    truth = json.load(handle)
table = truth_check(pd.read_csv(snakemake.input.estimands), None, truth, snakemake.wildcards.secondary_outcome)
table.to_csv(snakemake.output.truth_check, index=False)
