"""Rule impute_diagnose: missingness tables, structural pairs, warnings and figures."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

import pandas as pd  # noqa: E402

from cara_eval.impute.fields import read_not_supplied  # noqa: E402
from cara_eval.impute.plots import plot_missingness, plot_patterns  # noqa: E402
from cara_eval.impute.stage import diagnose  # noqa: E402

section = snakemake.params.imputation
output = snakemake.output
cases = pd.read_parquet(snakemake.input.cases)
diagnostics = diagnose(cases, read_not_supplied(snakemake.input.mappings), section)

diagnostics.missingness.to_csv(output.missingness, index=False)
diagnostics.patterns.to_csv(output.patterns, index=False)
diagnostics.models.to_csv(output.models, index=False)
diagnostics.structural.to_csv(output.structural, index=False)
diagnostics.warnings.to_csv(output.warnings, index=False)
plot_missingness(diagnostics.missingness, output.missingness_png)
plot_patterns(diagnostics.patterns, diagnostics.fields, output.patterns_png)
