"""Rule model_pool: pool posterior draws across imputations into the estimand and forest tables."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

import json  # noqa: E402

import arviz as az  # noqa: E402
import pandas as pd  # noqa: E402

from cara_eval.model.estimands import (  # noqa: E402
    ESTIMAND_VARIABLES,
    effect_draws,
    estimand_table,
    forest_table,
    stacked_draws,
)
from cara_eval.model.gate import gate_summary, pooled_gate  # noqa: E402

settings = snakemake.params.model
gates = [pd.read_csv(path) for path in snakemake.input.gates]
pooled = pooled_gate(gates, settings["gate"])
pooled.to_csv(snakemake.output.pooled_gate, index=False)
summary = gate_summary([*gates, pooled])
summary.to_csv(snakemake.output.gate_summary, index=False)
failed = summary.loc[~summary["passed"], "dataset"].tolist()
if failed and settings["strict"]:
    raise SystemExit(
        f"model gate failed for fit(s) {', '.join(failed)} of outcome {snakemake.wildcards.outcome}: "
        f"see results/model/{snakemake.wildcards.outcome}/<dataset>/gate.csv (config model.strict is true)"
    )

partial = stacked_draws([az.from_netcdf(p) for p in snakemake.input.idata], ESTIMAND_VARIABLES)
no_pooling = stacked_draws([az.from_netcdf(snakemake.input.idata_no_pooling)], ESTIMAND_VARIABLES)
estimand_table(partial, gate_passed=not failed).to_csv(snakemake.output.estimands, index=False)
counts = pd.read_csv(snakemake.input.ppc[0])
forest = forest_table(partial, no_pooling, counts.groupby("force")["n_cases"].sum())
forest["gate_passed"] = not failed
forest.to_csv(snakemake.output.forest, index=False)
n_cara = counts[counts["arm"] == "cara"].set_index("force")["n_cases"]
effect_draws(partial, n_cara).to_parquet(snakemake.output.effect_draws, index=False)
with open(snakemake.output.definition, "w") as handle:
    json.dump({"outcome": snakemake.wildcards.outcome, "estimand": settings["estimand"],
               "fits": summary["dataset"].iloc[:-1].tolist(), "failed_fits": failed,
               "pooling": "posterior draws concatenated across imputations"}, handle, indent=2)
