"""Secondary outcomes: cells and censoring, cell vs row-level likelihood, recovery of known effects, truth check."""

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st
import yaml

from cara_eval.model.cells import CellSpec
from cara_eval.model.effectiveness import sample
from cara_eval.model.estimands import estimand_table, stacked_draws
from cara_eval.model.gate import gate_table
from cara_eval.model.naive import truth_check
from cara_eval.outcomes.models import (
    ESTIMANDS,
    build_count_model,
    build_harm_model,
    estimand_variables,
    gated_variables,
    lognormal_cell_loglik,
    observed_table,
    outcome_cells,
    outcome_priors,
)

CONFIG = yaml.safe_load(open("config/config.yaml"))
PRIORS = outcome_priors(CONFIG["model"]["priors"], CONFIG["secondary_outcomes"])
SMALL_DATA_CENTRED = {"intercepts": False, "effects": False, "trend": False}  # few small forces: prior dominates
BASELINE_PER_DAY = (0.45 / 365, 0.27 / 365)  # all DA reoffences, intervals [0, 90) and [90, 365)
INTERVAL_DAYS = np.array([90.0, 275.0])
SIZE_LOG_MEAN, SIZE_SIGMA = 2.0, 1.0


def simulate(n_per_force=500, log_rr=-0.7, size_log_ratio=-0.3, forces=("alpha", "bravo", "charlie"),
             flag_forces=(), seed=0):
    """Canonical cases with Poisson reoffence counts (piecewise rate) and lognormal harm when any, plus the truth.

    CARA from each force's staggered start year, historical controls before; follow-up cut by the extract date.
    Truth: ATT over CARA cases of expected reoffences and harm per 100 in 365 days, with vs without CARA.
    """
    rng = np.random.default_rng(seed)
    frames, truth_parts = [], []
    for position, force in enumerate(forces):
        n = n_per_force
        index_date = pd.Timestamp("2017-01-01") + pd.to_timedelta(rng.integers(0, 6 * 365, n), unit="D")
        period = index_date.year.to_numpy()
        cara = period >= 2019 + position % 3
        together, female = rng.random(n) < 0.5, rng.random(n) < 0.2
        prior = rng.poisson(0.8, n).astype(float)
        log_rate = rng.normal(0, 0.15) + 0.05 * (period - 2019) + 0.3 * np.minimum(prior, 2) - 0.2 * female
        multiplier = np.exp(log_rate + cara * log_rr)
        followup = np.minimum(365, (pd.Timestamp("2023-06-30") - index_date).days.to_numpy()).astype(int)
        observed_days = np.clip(followup[:, None] - np.array([0, 90])[None, :], 0, INTERVAL_DAYS[None, :])
        per_interval = rng.poisson(multiplier[:, None] * np.asarray(BASELINE_PER_DAY)[None, :] * observed_days)
        count = per_interval.sum(axis=1)
        first = np.where(per_interval[:, 0] > 0, 1 + rng.random(n) * np.minimum(observed_days[:, 0], 89),
                         90 + rng.random(n) * np.maximum(observed_days[:, 1] - 1, 0))
        size_mean = SIZE_LOG_MEAN + cara * size_log_ratio
        harm = np.where(count > 0, np.exp(rng.normal(size_mean, SIZE_SIGMA)), 0.0)
        flag = force in flag_forces
        frames.append(pd.DataFrame({
            "case_id": [f"{force}-{i}" for i in range(n)], "force": force,
            "arm": np.where(cara, "cara", "comparison"), "comparison_type": np.where(cara, None, "historical"),
            "index_date": index_date, "period": period, "age": rng.integers(18, 70, n).astype(float),
            "sex": np.where(female, "female", "male"), "prior_da_incidents": prior,
            "together_at_index": pd.array(together, dtype="boolean"), "followup_days": followup,
            "outcome_source": "flag" if flag else "events", "any_reoffence": count > 0,
            "reoffence_count": np.nan if flag else count.astype(float), "harm": np.nan if flag else harm,
            "days_to_first": np.where((count > 0) & ~flag, np.floor(first), np.nan), "event_observed": count > 0,
        }))
        year_count = np.exp(log_rate[cara]) * (np.asarray(BASELINE_PER_DAY) * INTERVAL_DAYS).sum()
        without = year_count, (1 - np.exp(-year_count)) * np.exp(SIZE_LOG_MEAN + SIZE_SIGMA**2 / 2)
        with_cara = year_count * np.exp(log_rr), ((1 - np.exp(-year_count * np.exp(log_rr)))
                                                   * np.exp(SIZE_LOG_MEAN + size_log_ratio + SIZE_SIGMA**2 / 2))
        truth_parts.append((with_cara, without))
    cases = pd.concat(frames, ignore_index=True)

    def att(k):
        w = np.concatenate([part[0][k] for part in truth_parts])
        wo = np.concatenate([part[1][k] for part in truth_parts])
        return {"ratio": w.mean() / wo.mean(), "difference_per100": 100 * (w.mean() - wo.mean())}

    count_truth, harm_truth = att(0), att(1)
    truth = {"outcomes": {
        "reoffence_count": {"pooled": {"rate_ratio": count_truth["ratio"], "log_rate_ratio": np.log(count_truth["ratio"]),
                                       "difference_per100": count_truth["difference_per100"]}},
        "harm": {"pooled": harm_truth},
    }}
    return cases, truth


def _case(followup, count, harm, force="alpha", source="events", first=None, arm="cara"):
    return {"force": force, "arm": arm, "period": 2020, "age": 33.0, "sex": "male", "prior_da_incidents": 0.0,
            "together_at_index": True, "followup_days": followup, "outcome_source": source,
            "reoffence_count": np.nan if source == "flag" else float(count), "harm": np.nan if source == "flag" else harm,
            "any_reoffence": count > 0, "event_observed": count > 0,
            "days_to_first": float(first) if first is not None and source == "events" else np.nan}


def test_case_censored_at_day_100_brings_100_days_not_a_year():
    cases = pd.DataFrame([_case(100, 0, 0.0), _case(365, 2, 12.0, first=40), _case(100, 1, 30.0, first=20),
                          _case(365, 0, 0.0, arm="comparison")])  # a force needs both arms to enter
    spec = CellSpec()
    counts = outcome_cells(cases, spec, "reoffence_count").counts.query("cara == 1")
    assert len(counts) == 1  # one pattern: all three cases in one cell
    assert counts[["n", "count", "days_0-90", "days_90-365"]].iloc[0].tolist() == [3, 3, 270.0, 10 + 275 + 10]
    harm = outcome_cells(cases, spec, "harm")
    # Size when positive only from the whole-window case: a 100-day window truncates the harm sum.
    assert harm.sizes[["n", "sum_log"]].iloc[0].tolist() == [1, pytest.approx(np.log(12.0))]
    # Pr(any): the uncensored case at risk to its first reoffence (day 40), the others to 100 and 20 days.
    hazard = harm.base.hazard.query("cara == 1").set_index("interval")
    assert hazard.loc["0-90", "exposure"] == 90 + 40 + 20
    assert hazard.loc["0-90", "events"] == 2
    assert hazard.loc["90-365", "exposure"] == 10


def test_flag_only_force_is_left_out_and_said_so():
    cases, _ = simulate(n_per_force=60, flag_forces=("charlie",), seed=1)
    cells = outcome_cells(cases, CellSpec(), "reoffence_count")
    assert cells.excluded_forces == ["charlie"]
    assert cells.base.forces == ["alpha", "bravo"]
    assert set(cells.counts["force"]) == {"alpha", "bravo"}
    assert cells.counts["count"].sum() == cases.loc[cases["force"] != "charlie", "reoffence_count"].sum()
    observed = observed_table(cases, "harm").set_index(["force", "arm"])
    assert not observed.loc[("charlie", "cara"), "included"]
    assert np.isnan(observed.loc[("charlie", "cara"), "observed_total"])
    assert observed.loc[("alpha", "cara"), "observed_total"] == pytest.approx(
        cases.loc[(cases["force"] == "alpha") & (cases["arm"] == "cara"), "harm"].sum())


def _logp_at(model, changes):
    point = model.initial_point()
    point.update(changes)
    return float(model.compile_logp()(point))


def test_count_cells_agree_with_row_level_likelihood():
    """Cell sums are sufficient for the rate terms: logp differences equal the row-level ones."""
    cases, _ = simulate(n_per_force=80, seed=2)
    cells = outcome_cells(cases, CellSpec(), "reoffence_count")
    rows = outcome_cells(cases, CellSpec(), "reoffence_count", aggregate=False)
    assert len(rows.counts) == len(cases) > len(cells.counts)
    aggregated, row_level = (build_count_model(c, PRIORS, SMALL_DATA_CENTRED) for c in (cells, rows))
    near, far = {"mu_log_hr": np.array(-0.5), "intercept_mean": np.array(-6.5)}, {"mu_log_hr": np.array(0.3)}
    aggregated_change = _logp_at(aggregated, near) - _logp_at(aggregated, far)
    row_change = _logp_at(row_level, near) - _logp_at(row_level, far)
    assert aggregated_change == pytest.approx(row_change, rel=1e-9)
    assert abs(row_change) > 1.0  # the two points really differ


def test_harm_size_cells_give_the_exact_row_level_likelihood():
    values = np.array([3.0, 12.5, 40.0, 2.2])
    log_values = np.log(values)
    cell = lognormal_cell_loglik(4.0, log_values.sum(), (log_values**2).sum(), 1.7, 0.9).eval()
    assert cell == pytest.approx(st.lognorm.logpdf(values, s=0.9, scale=np.exp(1.7)).sum(), rel=1e-12)

    cases, _ = simulate(n_per_force=80, seed=3)
    cells = outcome_cells(cases, CellSpec(), "harm")
    rows = outcome_cells(cases, CellSpec(), "harm", aggregate=False)
    assert len(rows.sizes) > len(cells.sizes)
    point = {"size_mu_log_hr": np.array(-0.4), "size_intercept_mean": np.array(2.2)}
    centred = {"any": SMALL_DATA_CENTRED, "size": SMALL_DATA_CENTRED}
    aggregated, row_level = (build_harm_model(c, PRIORS, centred) for c in (cells, rows))
    assert _logp_at(aggregated, point) == pytest.approx(_logp_at(row_level, point), rel=1e-9)


@pytest.fixture(scope="module", params=["reoffence_count", "harm"])
def known_effect_fit(request):
    """Three forces, true log rate ratio -0.7 (and log size ratio -0.3): large reductions to recover."""
    cases, truth = simulate(n_per_force=500, seed=21)
    cells = outcome_cells(cases, CellSpec(), request.param)
    if request.param == "reoffence_count":
        model = build_count_model(cells, PRIORS, SMALL_DATA_CENTRED)
    else:
        model = build_harm_model(cells, PRIORS, {"any": SMALL_DATA_CENTRED, "size": SMALL_DATA_CENTRED})
    idata = sample(model, "pymc", 2, 300, 300, 21, cores=2, target_accept=0.95)
    return request.param, truth, idata


@pytest.mark.slow
def test_known_reduction_is_recovered_with_its_interval(known_effect_fit):
    outcome, truth, idata = known_effect_fit
    table = estimand_table(stacked_draws([idata], estimand_variables(outcome)), True, ESTIMANDS[outcome])
    check = truth_check(table, None, truth, outcome).set_index("estimand")
    ratio = "rate_ratio" if outcome == "reoffence_count" else "ratio"
    assert check.loc[ratio, "q95"] < 1.0 and check.loc["difference_per100", "q95"] < 0.0  # sign
    assert check["covered"].all(), check  # 90% intervals hold the true ATT
    indexed = table.set_index(["estimand", "scope"])
    assert set(indexed.loc[("difference_per100", "force"), "level"]) == {"alpha", "bravo", "charlie"}
    assert set(indexed.loc[("difference_per100", "relationship"), "level"]) == {"separated", "together"}
    assert ("difference_per100", "new_force") in indexed.index
    gate = gate_table(idata, "imp1", {"max_r_hat": 1.05, "min_ess_bulk": 100, "min_ess_tail": 100,
                                      "max_divergences": 5}, gated_variables(outcome))
    assert set(gate["parameter"].str.split("[").str[0]) >= {"tau" if outcome == "reoffence_count" else "size_tau",
                                                             "difference_per100"}
    assert gate["passed"].mean() > 0.9


@pytest.mark.slow
def test_report_shows_the_pooled_effect_and_the_forces_left_out(known_effect_fit, tmp_path):
    from cara_eval.report.data import ReportData
    from cara_eval.report.sections.outcomes import secondary_outcomes_markdown, secondary_outcomes_table

    outcome, _, idata = known_effect_fit
    table = estimand_table(stacked_draws([idata], estimand_variables(outcome)), True, ESTIMANDS[outcome])
    table.to_csv(tmp_path / "estimands.csv", index=False)
    forces = {force: {} for force in ("alpha", "bravo", "charlie", "delta")}  # delta: a flag-only force
    data = ReportData({"tables": {f"outcome_{outcome}_estimands": str(tmp_path / "estimands.csv")}, "forces": forces})
    pooled = table[(table["estimand"] == "difference_per100") & (table["scope"] == "pooled")].iloc[0]
    text = secondary_outcomes_markdown(data)
    assert f"{pooled['mean']:+.1f} (90% interval {pooled['q05']:+.1f} to {pooled['q95']:+.1f})" in text
    assert "Not included: Delta" in text
    shown = secondary_outcomes_table(data)
    assert list(shown["Scope"]) == ["pooled", "new force", "separated", "together", "Alpha", "Bravo", "Charlie"]
    assert "not run" in secondary_outcomes_markdown(ReportData({"tables": {}}))
