"""The planning approximation against real refits: the tiny config's forces and model, a cut-off 24 months before
the extract, the predicted 90% width after 24 more months against the width of the real model refitted to the
generator's actual next 24 months (new cases and matured follow-up). Issue 17's target: within 15%; and the
refit's width lies inside the predicted 90% range of widths.

The tiny config's 450 cases add too little in 12 months to tell a prediction from "no change", so the check uses
1,500 cases and 24 months (still three forces and short chains)."""

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_config

from cara_eval.model.effectiveness import fit_cases
from cara_eval.model.estimands import stacked_draws
from cara_eval.planning import precision_table
from cara_eval.planning.accrual import DAYS_PER_MONTH, project_accrual
from cara_eval.planning.precision import HIGH, LOW, NATIONAL, PLANNING_VARIABLES
from cara_eval.synth.population import RAW_IDENTIFIERS, simulate_population

MONTHS = 24
N_CASES = 1500
CHECKED = ["hampshire", "west_yorkshire", NATIONAL]
TOLERANCE = 0.15


def as_of(cases: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """The extract as it would have been at `cutoff`: later cases absent, follow-up and first events cut there."""
    earlier = cases[cases["index_date"] < cutoff].copy()
    earlier["followup_days"] = np.minimum(earlier["followup_days"], (cutoff - earlier["index_date"]).dt.days)
    seen = (earlier["days_to_first"] <= earlier["followup_days"]).to_numpy()
    earlier["any_reoffence"] = seen
    earlier["event_observed"] = seen
    earlier["days_to_first"] = earlier["days_to_first"].where(seen)
    return earlier


def widths(draws) -> pd.Series:
    """90% widths of each force's and the national risk difference per 100."""
    force = draws["risk_difference_per100_force"].quantile([LOW, HIGH], dim="sample")
    national = draws["risk_difference_per100"].quantile([LOW, HIGH], dim="sample").to_numpy()
    result = (force.sel(quantile=HIGH) - force.sel(quantile=LOW)).to_series()
    result[NATIONAL] = national[1] - national[0]
    return result


@pytest.mark.slow
def test_predicted_width_is_within_15_percent_of_a_refit_on_added_data():
    config = tiny_config()
    model = {**config["model"], "draws": 500, "tune": 300, "target_accept": 0.95}
    cases = simulate_population(N_CASES, config["forces"], config["seed"], missingness=False,
                                pseudonyms=False).cases.drop(columns=RAW_IDENTIFIERS)
    cutoff = cases["index_date"].max() - pd.Timedelta(days=round(MONTHS * DAYS_PER_MONTH))
    now = as_of(cases, cutoff)
    assert len(now) < len(cases) and now["any_reoffence"].sum() < cases["any_reoffence"].sum()

    _, _, partial = fit_cases(now, model, seed=1)
    _, _, no_pooling = fit_cases(now, model, seed=2, pooling="none")
    accrual = project_accrual(now, np.arange(MONTHS + 1), config["outcomes"]["followup_days"])
    precision = precision_table(stacked_draws([partial], PLANNING_VARIABLES),
                                stacked_draws([no_pooling], ["no_pooling_force_log_hr"]), accrual,
                                model["priors"], simulations=400, draws_per_simulation=200, seed=3)
    predicted = precision.set_index(["force", "months_added"])
    _, _, refit = fit_cases(cases, model, seed=1)
    refitted = widths(stacked_draws([refit], PLANNING_VARIABLES))

    report = pd.DataFrame({"now": [predicted.loc[(f, 0), "expected_width_90"] for f in CHECKED],
                           "predicted": [predicted.loc[(f, MONTHS), "expected_width_90"] for f in CHECKED],
                           "predicted_q05": [predicted.loc[(f, MONTHS), "width_90_q05"] for f in CHECKED],
                           "predicted_q95": [predicted.loc[(f, MONTHS), "width_90_q95"] for f in CHECKED],
                           "refit": [refitted[f] for f in CHECKED]}, index=CHECKED)
    report["predicted_over_refit"] = report["predicted"] / report["refit"]
    report["now_over_refit"] = report["now"] / report["refit"]
    print(f"\nplanning check, {N_CASES} cases, {MONTHS} months added:\n{report.round(3).to_string()}")
    assert (report["predicted"] < report["now"]).all()
    assert (abs(report["predicted_over_refit"] - 1) < TOLERANCE).all(), report
    assert report["refit"].between(report["predicted_q05"], report["predicted_q95"]).all(), report
