"""Rule sensitivity_compare: pooled estimands of every variant of one analysis (pooling, priors, trend)."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

import arviz as az  # noqa: E402
import pandas as pd  # noqa: E402

from cara_eval.sensitivity.analyses import pooled_summary, variant_settings  # noqa: E402

analysis, datasets = snakemake.wildcards.analysis, snakemake.params.datasets
paths = iter(zip(snakemake.input.idata, snakemake.input.gates))
parts = []
for variant in snakemake.params.variants:
    fits = [next(paths) for _ in datasets]
    passed = all(pd.read_csv(gate)["passed"].all() for _, gate in fits)
    _, _, note = variant_settings(snakemake.params.model, snakemake.params.sensitivity, variant)
    note = f"{note}; primary model" if variant == "primary" else note
    table = pooled_summary([az.from_netcdf(idata) for idata, _ in fits], passed, analysis, variant,
                           f"{note}; datasets {'+'.join(datasets)}")
    parts.append(table)
pd.concat(parts, ignore_index=True).to_csv(snakemake.output.table, index=False)
