"""Rule impute_plot: chain convergence and observed-vs-imputed distributions over all imputations."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

import pandas as pd  # noqa: E402

from cara_eval.impute.fields import supplied_fields  # noqa: E402
from cara_eval.impute.plots import plot_convergence, plot_observed_vs_imputed  # noqa: E402

traces = {f"imp{k}": pd.read_csv(path) for k, path in enumerate(snakemake.input.traces, start=1)}
cases = pd.read_parquet(snakemake.input.cases)
imputed = [pd.read_parquet(path) for path in snakemake.input.datasets]
plot_convergence(traces, snakemake.output.convergence)
fields = supplied_fields(cases, snakemake.params.fields)
plot_observed_vs_imputed(cases, imputed, fields, snakemake.output.observed_vs_imputed)
