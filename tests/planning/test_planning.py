"""Precision planning: accrual from cases, the normal approximation's behaviour, the rule's outputs."""

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO
from planning_fits import linear_accrual, synthetic_fits

from cara_eval.planning import conclusive_table, months_to_conclusive_markdown, plot_assurance, precision_table
from cara_eval.planning.accrual import DAYS_PER_MONTH, project_accrual
from cara_eval.planning.precision import NATIONAL, Hierarchy, posterior_intervals

PRIORS = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["model"]["priors"]
FORCES = ["alpha", "beta", "gamma", "delta"]
MONTHS = np.arange(0, 37, 6)


def _precision(log_hr, events_per_month=10.0, seed=1):
    partial, no_pooling = synthetic_fits(FORCES, log_hr, posterior_sd=0.12, data_sd=0.2, seed=seed)
    accrual = linear_accrual(FORCES, MONTHS, events_now=100.0, events_per_month=events_per_month)
    return precision_table(partial, no_pooling, accrual, PRIORS, simulations=300, draws_per_simulation=200, seed=seed)


def _force(table, force):
    return table[table["force"] == force].sort_values("months_added")


def test_more_months_give_narrower_intervals_and_higher_assurance():
    table = _precision([-0.15, -0.1, -0.2, -0.05])
    for force in [*FORCES, NATIONAL]:
        curve = _force(table, force)
        later = curve[curve["months_added"] > 0]
        assert np.all(np.diff(later["expected_width_90"]) < 0), force
        assert later["expected_width_90"].iloc[-1] < 0.8 * curve["expected_width_90"].iloc[0], force
        # Common random numbers: assurance moves only with the data; allow Monte Carlo wobble of 2 simulations in 100.
        assert np.all(np.diff(later["assurance"]) > -0.02), force
    assert _force(table, "alpha")["assurance"].iloc[-1] > _force(table, "alpha")["assurance"].iloc[1]


def test_a_force_without_new_events_keeps_its_width():
    partial, no_pooling = synthetic_fits(FORCES, -0.1, posterior_sd=0.12, data_sd=0.2)
    accrual = linear_accrual(FORCES, MONTHS, events_now=100.0, events_per_month=10.0)
    stopped = (accrual["force"] == "alpha") & (accrual["arm"] == "comparison")
    accrual.loc[stopped, "events"] = 100.0  # historical controls: no comparison events to come
    table = precision_table(partial, no_pooling, accrual, PRIORS, simulations=300, draws_per_simulation=200, seed=2)
    alpha, beta = _force(table, "alpha"), _force(table, "beta")
    shrink = lambda curve: curve["expected_width_90"].iloc[-1] / curve["expected_width_90"].iloc[1]  # noqa: E731
    assert shrink(alpha) > shrink(beta)  # the force with one growing arm narrows less


def test_a_huge_effect_is_conclusive_with_near_certainty():
    table = _precision([-1.2, -1.0, -1.1, -1.3])
    later = table[table["months_added"] > 0]
    assert (later["assurance"] > 0.97).all()
    conclusive = conclusive_table(table, 0.8)
    assert conclusive["conclusive_now"].all() and (conclusive["months_to_conclusive"] == 0).all()


def test_no_effect_gives_assurance_near_the_false_positive_rate():
    """Truth zero everywhere: the share of 90% intervals that exclude zero is the false-positive rate, at most 10%
    (two tails of 5%), less where pooling towards the prior mean shrinks the estimates."""
    n_forces, simulations = 6, 2000
    variance = np.full(n_forces, 0.01)
    hierarchy = Hierarchy(forces=[f"f{k}" for k in range(n_forces)], estimate=np.zeros(n_forces), variance=variance,
                          risk_untreated=np.full(n_forces, 0.3), effect_shift=np.zeros(n_forces), mu_mean=0.0,
                          mu_sd=0.5, tau_grid=np.linspace(0.005, 0.75, 60),
                          tau_log_prior=-0.5 * (np.linspace(0.005, 0.75, 60) / 0.25) ** 2)
    rng = np.random.default_rng(3)
    estimate = np.sqrt(variance) * rng.standard_normal((simulations, n_forces))
    low, high = posterior_intervals(hierarchy, estimate, variance, np.ones(n_forces), rng.random((simulations, 300)),
                                    rng.standard_normal((simulations, 300, n_forces + 1)))
    excluded = (low > 0) | (high < 0)
    assert 0.01 < excluded[:, :-1].mean() < 0.11
    assert excluded[:, -1].mean() < 0.13  # national: one estimate per simulation, more Monte Carlo noise


def test_conclusive_table_and_words_follow_the_definition():
    table = _precision([-0.3, -0.02, 0.0, -0.2], events_per_month=3.0)
    conclusive = conclusive_table(table, 0.8).set_index("force")
    for force, row in conclusive.iterrows():
        curve = _force(table, force)
        now = row["current_q05"] > 0 or row["current_q95"] < 0
        assert row["conclusive_now"] == now
        reached = curve.loc[(curve["months_added"] > 0) & (curve["assurance"] >= 0.8), "months_added"]
        expected = 0 if now else (reached.iloc[0] if len(reached) else None)
        assert (pd.isna(row["months_to_conclusive"]) and expected is None) or row["months_to_conclusive"] == expected
    text = months_to_conclusive_markdown(conclusive.reset_index(), 0.8, "beta", "Beta")
    assert text.startswith("Beta's own estimate is")
    assert months_to_conclusive_markdown(conclusive.reset_index(), 0.8).startswith("The national estimate is")


def test_months_to_conclusive_in_words_for_each_case():
    """Conclusive now, conclusive after some months, and not within the horizon: each row's own numbers in words."""
    conclusive = pd.DataFrame({
        "force": ["alpha", "beta", "gamma", NATIONAL],
        "current_q05": [-6.04, -5.0, -9.0, -4.5], "current_q95": [-1.26, 2.0, 8.0, 0.6],
        "conclusive_now": [True, False, False, False], "months_to_conclusive": [0, 7, None, 1],
        "assurance_at_max": [1.0, 0.95, 0.3, 0.99], "max_months": [36, 36, 36, 36]})
    assert months_to_conclusive_markdown(conclusive, 0.8, "alpha", "Alpha") == (
        "Alpha's own estimate is conclusive now: its 90% interval (-6.0 to -1.3 per 100 CARA cases) already excludes zero.")
    assert months_to_conclusive_markdown(conclusive, 0.8, "beta", "Beta") == (
        "Beta's own estimate is not conclusive yet: its 90% interval, -5.0 to 2.0 per 100, includes zero. At current "
        "numbers, after about 7 months more data the probability that it will exclude zero reaches 80%.")
    assert months_to_conclusive_markdown(conclusive, 0.8, "gamma", "Gamma") == (
        "Gamma's own estimate is not conclusive yet: its 90% interval, -9.0 to 8.0 per 100, includes zero. At current "
        "numbers it is unlikely to be within 36 months: the probability that the interval will then exclude zero is "
        "30% (target 80%).")
    assert "after about 1 month more data" in months_to_conclusive_markdown(conclusive, 0.8)


def test_figure_draws_nationally_and_for_one_force():
    table = _precision([-0.15, -0.1, -0.2, -0.05])
    national, one = plot_assurance(table, 0.8), plot_assurance(table, 0.8, force="beta", names={"beta": "Beta"})
    labels = lambda fig: [t.get_text() for t in fig.axes[0].get_legend().get_texts()]  # noqa: E731
    assert set(FORCES) <= set(labels(national)) and "all forces (national)" in labels(national)
    assert "Beta" in labels(one) and "alpha" not in labels(one) and "other forces" in labels(one)


def test_accrual_counts_current_rates_maturing_follow_up_and_ended_arms():
    index = pd.Timestamp("2024-03-31")
    cara = pd.DataFrame({"force": "f", "arm": "cara", "index_date": index - pd.to_timedelta(np.arange(0, 730, 10), "D")})
    comparison = pd.DataFrame({"force": "f", "arm": "comparison",
                               "index_date": pd.Timestamp("2015-01-01") + pd.to_timedelta(np.arange(40), "D")})
    cases = pd.concat([cara, comparison], ignore_index=True)
    cases["followup_days"] = np.minimum(365, (index - cases["index_date"]).dt.days.clip(lower=1))
    cases["any_reoffence"] = np.arange(len(cases)) % 4 == 0
    cases["days_to_first"] = np.where(cases["any_reoffence"], np.minimum(30, cases["followup_days"]), np.nan)
    accrual = project_accrual(cases, np.array([0, 12, 24]), 365).set_index(["arm", "months_added"])
    recent = int((cara["index_date"] > index - pd.Timedelta(days=365)).sum())
    assert accrual.loc[("cara", 12), "cases_added"] == pytest.approx(recent * 12 * DAYS_PER_MONTH / 365)
    assert accrual.loc[("cara", 0), "events"] == cases.loc[cases["arm"].eq("cara"), "any_reoffence"].sum()
    assert accrual.loc[("cara", 0), "events"] < accrual.loc[("cara", 12), "events"] < accrual.loc[("cara", 24), "events"]
    assert accrual.loc[("comparison", 24), "events"] == accrual.loc[("comparison", 0), "events"]  # ended, matured
