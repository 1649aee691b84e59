"""Rule sensitivity_missing_data: multiple imputation (the primary) vs complete cases vs the MNAR delta grid,
and the delta at which the conclusion would change."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

from pathlib import Path  # noqa: E402

import arviz as az  # noqa: E402
import pandas as pd  # noqa: E402

from cara_eval.impute.naming import mnar_label  # noqa: E402
from cara_eval.sensitivity.analyses import mnar_grid, pooled_summary, summary_rows, tipping_point  # noqa: E402

mnar, fits = snakemake.params.mnar, dict(zip(snakemake.input.idata, snakemake.input.gates))


def summarise(paths, variant, note):
    passed = all(pd.read_csv(fits[path])["passed"].all() for path in paths)
    return pooled_summary([az.from_netcdf(path) for path in paths], passed, "missing_data", variant, note)


primary = pd.read_csv(snakemake.input.multiple_imputation, keep_default_na=False, na_values=[""])
parts = [
    summary_rows(primary, "missing_data", "multiple_imputation",
                 f"primary model: {snakemake.params.m} imputations (MAR), primary chains"),
    summarise([p for p in fits if "/cc/" in p], "complete_case", "complete cases only (rows with any field missing dropped)"),
]
for delta in mnar["deltas"]:
    fit_dirs = snakemake.params.mnar_fit_dirs[mnar_label(delta)]
    paths = [p for p in fits if str(Path(p).parent) in fit_dirs]
    part = summarise(paths, f"mnar_delta_{mnar_label(delta)}",
                     f"MNAR: imputed {mnar['field']} shifted by {mnar_label(delta)}; {len(paths)} imputation(s)")
    parts.append(part.assign(delta=float(delta)))
table = pd.concat(parts, ignore_index=True)
table.to_csv(snakemake.output.table, index=False)
tipping_point(mnar_grid(table), snakemake.params.prob_threshold).to_csv(snakemake.output.tipping_point, index=False)
