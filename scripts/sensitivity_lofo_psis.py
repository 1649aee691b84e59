"""Rule sensitivity_lofo_psis: every force's held-out score from the full-data fit of one pooling, by importance
sampling (no refit), with the Pareto k that decides which forces are refitted (a checkpoint)."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

from cara_eval.common.compile_cache import start_fitting_job  # noqa: E402

start_fitting_job(snakemake.params.model["compile_dir"], snakemake.threads)

import logging  # noqa: E402

import arviz as az  # noqa: E402
import pandas as pd  # noqa: E402

from cara_eval.model.cells import CellSpec, build_cells  # noqa: E402
from cara_eval.sensitivity.analyses import (  # noqa: E402
    VARIANT_OF_POOLING,
    lofo_refits_needed,
    psis_lofo_scores,
    variant_settings,
)

pooling, dataset = snakemake.wildcards.pooling, snakemake.wildcards.dataset
settings, _, _ = variant_settings(snakemake.params.model, snakemake.params.sensitivity, VARIANT_OF_POOLING[pooling])
sampling = snakemake.params.sensitivity["lofo"]["importance_sampling"]
cells = build_cells(pd.read_parquet(snakemake.input.cases), CellSpec.from_config(settings["cells"]))
idata = az.from_netcdf(snakemake.input.idata).sel(draw=slice(None, None, sampling["thin"]))

gate_passed = bool(pd.read_csv(snakemake.input.gate)["passed"].all())
scores = psis_lofo_scores(cells, idata, settings, pooling).assign(dataset=dataset, gate_passed=gate_passed)
scores.to_csv(snakemake.output.scores, index=False)
refitted = set(lofo_refits_needed(scores, sampling["max_pareto_k"])["force"])
for row in scores.itertuples():
    logging.info("%s: lpd %.2f, Pareto k %.2f%s", row.force, row.lpd, row.pareto_k,
                 " (refitted)" if row.force in refitted else "")
