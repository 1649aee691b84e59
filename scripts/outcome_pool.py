"""Rule outcome_pool: pool a secondary outcome's posterior draws across imputations into its estimand table."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

import json  # noqa: E402

import arviz as az  # noqa: E402
import pandas as pd  # noqa: E402

from cara_eval.model.estimands import estimand_table, stacked_draws  # noqa: E402
from cara_eval.model.gate import gate_summary  # noqa: E402
from cara_eval.outcomes.models import ESTIMANDS, estimand_variables  # noqa: E402

outcome = snakemake.wildcards.secondary_outcome
summary = gate_summary([pd.read_csv(path) for path in snakemake.input.gates])
summary.to_csv(snakemake.output.gate_summary, index=False)
failed = summary.loc[~summary["passed"], "dataset"].tolist()
if failed and snakemake.params.model["strict"]:
    raise SystemExit(
        f"gate failed for fit(s) {', '.join(failed)} of outcome {outcome}: see "
        f"results/outcomes/{outcome}/<dataset>/gate.csv (config model.strict is true)"
    )

draws = stacked_draws([az.from_netcdf(path) for path in snakemake.input.idata], estimand_variables(outcome))
estimand_table(draws, gate_passed=not failed, estimands=ESTIMANDS[outcome]).to_csv(snakemake.output.estimands, index=False)
observed = pd.read_csv(snakemake.input.observed[0])
with open(snakemake.output.definition, "w") as handle:
    json.dump({"outcome": outcome, "estimand": snakemake.params.estimand,
               "included_forces": sorted(observed.loc[observed["included"], "force"].unique()),
               "excluded_forces": sorted(observed.loc[~observed["included"], "force"].unique()),
               "excluded_reason": "flag-only forces send a 12-month flag, no reoffence counts or harm",
               "fits": summary["dataset"].tolist(), "failed_fits": failed,
               "pooling": "posterior draws concatenated across imputations"}, handle, indent=2)
