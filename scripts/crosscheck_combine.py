"""Rule crosscheck_combine: one table of every cross-check, in the layout of the Bayesian estimands."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

import pandas as pd

from cara_eval.crosscheck.regression import ESTIMATE_COLUMNS

parts = [pd.read_csv(path) for path in snakemake.input]
pd.concat(parts, ignore_index=True)[ESTIMATE_COLUMNS].to_csv(snakemake.output.estimates, index=False)
