"""Frequentist cross-checks: each estimator recovers a known effect; the wild bootstrap is exact and honest."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cara_eval.crosscheck.its import its_estimates, monthly_rates
from cara_eval.crosscheck.propensity import propensity_estimates
from cara_eval.crosscheck.regression import (
    ESTIMATE_COLUMNS,
    design_matrix,
    full_followup,
    per_force_estimates,
    regression_estimates,
    wild_cluster_bootstrap,
)
from cara_eval.synth.population import simulate_population

COVARIATES = ["age", "sex", "ethnicity", "prior_da_incidents", "offence_type", "dash_risk", "relationship",
              "together_at_index"]


@pytest.fixture(scope="module")
def population():
    """The default nine forces at full size (missing covariates included), as the workflow simulates them."""
    return simulate_population(18000, None, seed=20261126)


@pytest.fixture(scope="module")
def regression(population):
    return regression_estimates(population.cases, COVARIATES, followup_days=365, level=0.9, weights="webb",
                                draws=199, seed=1)


def _pick(table, method, estimand, scope="pooled", force=""):
    force_match = table["force"].isna() | (table["force"] == "") if force == "" else table["force"] == force
    rows = table.loc[(table["method"] == method) & (table["estimand"] == estimand) & (table["scope"] == scope)
                     & force_match]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def test_pooled_logit_recovers_the_true_effect_on_the_treated(regression, population):
    truth = population.truth["outcomes"]["any_reoffence"]["pooled"]
    rd = _pick(regression, "logit_glm", "risk_difference_per100")
    odds = _pick(regression, "logit_glm", "odds_ratio")
    assert rd.estimate < 0 and odds.estimate < 1
    assert rd.ci_low <= truth["risk_difference_per100"] <= rd.ci_high
    assert odds.ci_low <= truth["odds_ratio"] <= odds.ci_high
    assert list(regression.columns) == ESTIMATE_COLUMNS


def test_linear_probability_model_agrees_with_the_logit_and_reports_both_intervals(regression):
    logit = _pick(regression, "logit_glm", "risk_difference_per100")
    robust = _pick(regression, "lpm_cluster_robust", "risk_difference_per100")
    boot = _pick(regression, "lpm_wild_cluster_bootstrap", "risk_difference_per100")
    assert robust.estimate == boot.estimate
    assert abs(boot.estimate - logit.estimate) < 1.0  # per 100: same effect on two scales
    assert boot.ci_low < boot.estimate < boot.ci_high and boot.ci_high < 0
    assert "webb" in boot.note and "cluster-robust errors over-reject" in boot.note


def test_poisson_rate_ratio_uses_events_forces_only(regression, population):
    poisson = _pick(regression, "poisson_glm", "rate_ratio")
    n_events_forces = population.cases.loc[population.cases["outcome_source"] == "events", "force"].nunique()
    assert poisson.estimate < 1 and poisson.ci_high < 1
    assert f"events-based forces only ({n_events_forces})" in poisson.note
    assert n_events_forces < population.cases["force"].nunique()


def test_per_force_glms_are_noisy_but_centred_on_each_force_truth(regression, population):
    by_force = population.truth["outcomes"]["any_reoffence"]["by_force"]
    rows = regression.loc[(regression["scope"] == "force") & (regression["estimand"] == "risk_difference_per100")]
    assert sorted(rows["force"]) == sorted(by_force)
    covered = [(r.ci_low <= by_force[r.force]["risk_difference_per100"] <= r.ci_high) for r in rows.itertuples()]
    assert sum(covered) >= len(covered) - 2
    widths = rows["ci_high"] - rows["ci_low"]
    pooled = _pick(regression, "logit_glm", "risk_difference_per100")
    assert widths.min() > pooled.ci_high - pooled.ci_low  # every force alone is less certain than the pool
    precision = 1 / widths**2
    assert np.average(rows["estimate"], weights=precision) < 0


def test_fast_wild_bootstrap_equals_refitting_every_draw():
    """The per-cluster algebra gives the same p-value as refitting OLS for every one of the 2**G draws."""
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(4), [30, 50, 80, 40])
    x = np.column_stack([np.ones(len(groups)), rng.random(len(groups)) < 0.5, rng.normal(size=len(groups)),
                         groups == 1, groups == 2, groups == 3]).astype(float)
    y = x @ np.array([0.3, 0.1, 0.05, 0.1, -0.1, 0.0]) + rng.normal(0, 0.3, len(groups))
    result = wild_cluster_bootstrap(y, x, column=1, groups=groups, level=0.9, weights="rademacher", draws=999, seed=0)
    assert result.enumerated and result.n_draws == 16

    def cr1_t(y_star, null):
        beta = np.linalg.lstsq(x, y_star, rcond=None)[0]
        bread = np.linalg.inv(x.T @ x)
        scores = np.array([x[groups == g].T @ (y_star - x @ beta)[groups == g] for g in range(4)])
        meat = scores.T @ scores * 4 / 3 * (len(y) - 1) / (len(y) - x.shape[1])
        return (beta[1] - null) / np.sqrt((bread @ meat @ bread)[1, 1])

    z = np.delete(x, 1, axis=1)
    restricted_fit = z @ np.linalg.lstsq(z, y, rcond=None)[0]
    t_obs = cr1_t(y, 0.0)
    t_star = [cr1_t(restricted_fit + (y - restricted_fit) * np.array(w)[groups], 0.0)
              for w in np.array(np.meshgrid(*[[-1.0, 1.0]] * 4, indexing="ij")).reshape(4, -1).T]
    assert result.p_value == pytest.approx(np.mean(np.abs(t_star) >= abs(t_obs) - 1e-12))


def test_wild_bootstrap_is_honest_where_cluster_robust_errors_are_not():
    """Few unequal clusters with heterogeneous effects: CR1 with t(G-1) over-rejects a true null, the
    restricted wild bootstrap stays near nominal and its intervals are wider."""
    n_clusters, replications, truth = 6, 200, -0.05
    rejected_cluster, rejected_bootstrap, width_ratio = 0, 0, []
    for replication in range(replications):
        rng = np.random.default_rng(replication)
        sizes = np.round(np.exp(rng.normal(5, 1, n_clusters))).astype(int) + 20
        groups = np.repeat(np.arange(n_clusters), sizes)
        treated = (rng.random(len(groups)) < np.repeat(rng.uniform(0.05, 0.95, n_clusters), sizes)).astype(float)
        effect = truth + np.repeat(rng.normal(0, 0.1, n_clusters), sizes)
        y = (rng.random(len(groups)) < 0.3 + effect * treated).astype(float)
        x = np.column_stack([treated, np.eye(n_clusters)[groups]])
        result = wild_cluster_bootstrap(y, x, 0, groups, level=0.9, weights="webb", draws=399, seed=replication)
        half_width = stats.t(n_clusters - 1).ppf(0.95) * result.se_cluster
        rejected_cluster += abs(result.estimate - truth) > half_width
        rejected_bootstrap += not result.ci_low <= truth <= result.ci_high
        width_ratio.append((result.ci_high - result.ci_low) / (2 * half_width))
    assert rejected_cluster / replications > 0.15  # nominal 0.10
    assert rejected_bootstrap / replications < rejected_cluster / replications
    assert rejected_bootstrap / replications < 0.15
    assert np.median(width_ratio) > 1.0


def test_segmented_regression_recovers_a_known_level_drop():
    """Monthly series with a trend, a 10-point drop at the start and AR(1) noise, 100 times over: the
    level change is unbiased and always negative, the slope change centred on zero. (Newey-West errors
    under-cover in 8-year series, about 0.8 for a nominal 0.9, hence a coverage floor, not 0.9.)"""
    months = pd.period_range("2014-01", periods=96, freq="M")
    start = pd.Timestamp("2018-01-01")
    post = months >= pd.Period(start, freq="M")
    levels, slopes, covered = [], [], 0
    for replication in range(100):
        rng = np.random.default_rng(replication)
        noise = np.zeros(len(months))
        for t in range(1, len(months)):
            noise[t] = 0.5 * noise[t - 1] + rng.normal(0, 2)
        rate = 35 - 0.05 * np.arange(len(months)) - 10 * post + noise
        series = pd.DataFrame({"force": "dorset", "month": months, "n_cases": 40, "rate_per100": rate})
        table = its_estimates(series, {"dorset": start}, level=0.9, lags=3, min_months=6).set_index("estimand")
        level = table.loc["level_change_per100"]
        levels.append(level.estimate)
        covered += level.ci_low <= -10 <= level.ci_high
        slopes.append(table.loc["slope_change_per100_per_month", "estimate"])
    assert np.mean(levels) == pytest.approx(-10, abs=0.4)
    assert max(levels) < 0
    assert np.mean(slopes) == pytest.approx(0, abs=0.02)
    assert covered >= 70


def test_its_on_simulated_forces_points_the_right_way_and_explains_gaps(population):
    starts = {force: spec["cara_start"] for force, spec in population.truth["forces"].items()}
    series = monthly_rates(population.cases, followup_days=365, min_cases=5)
    assert (series["n_cases"] >= 5).all()
    table = its_estimates(series, starts, level=0.9, lags=3, min_months=6)
    level = table.loc[table["estimand"] == "level_change_per100"]
    assert sorted(level["force"]) == sorted(starts)
    estimable = level.dropna(subset=["estimate"])
    assert len(estimable) >= 6
    assert (estimable["estimate"] < 0).sum() > len(estimable) / 2
    assert level.loc[level["estimate"].isna(), "note"].str.startswith("not estimable").all()


def _confounded_cases(n=6000, effect_per100=-5.0, seed=11):
    """Prior DA incidents raise both the chance of CARA and of reoffending: the naive difference is wrong."""
    rng = np.random.default_rng(seed)
    prior = rng.poisson(1.5, n).astype(float)
    treated = rng.random(n) < 1 / (1 + np.exp(-(-1.5 + 0.9 * prior)))
    risk = np.clip(0.15 + 0.06 * prior + effect_per100 / 100 * treated, 0, 1)
    return pd.DataFrame({
        "force": rng.choice(["dorset", "norfolk"], n),
        "arm": np.where(treated, "cara", "comparison"),
        "prior_da_incidents": prior,
        "sex": rng.choice(["male", "female"], n),
        "any_reoffence": pd.array(rng.random(n) < risk, dtype="boolean"),
    })


def test_propensity_weights_remove_confounding_and_balance_the_arms():
    cases = _confounded_cases()
    naive = 100 * (cases.loc[cases["arm"] == "cara", "any_reoffence"].mean()
                   - cases.loc[cases["arm"] == "comparison", "any_reoffence"].mean())
    assert naive > 0  # confounding flips the sign
    estimates, balance = propensity_estimates(cases, ["prior_da_incidents", "sex"], level=0.9, clip=(0.01, 0.99),
                                              draws=100, seed=2)
    pooled = estimates.loc[estimates["scope"] == "pooled"].iloc[0]
    assert pooled.estimate < 0 and pooled.ci_low <= -5.0 <= pooled.ci_high
    prior = balance.loc[balance["covariate"] == "prior_da_incidents"]
    assert (prior["smd_before"].abs() > 0.5).all() and (prior["smd_after"].abs() < 0.1).all()
    assert sorted(estimates.loc[estimates["scope"] == "force", "force"]) == ["dorset", "norfolk"]


def test_propensity_on_simulated_forces_balances_case_mix(population):
    cases = full_followup(population.cases, 365)
    estimates, balance = propensity_estimates(cases, COVARIATES, level=0.9, clip=(0.01, 0.99), draws=20, seed=3)
    assert estimates.loc[estimates["scope"] == "pooled", "estimate"].item() < 0
    large = balance.loc[balance["force"].isin(["west_midlands", "hampshire", "west_yorkshire"])]
    assert large["smd_after"].abs().max() < 0.1 < large["smd_before"].abs().max()


def test_design_keeps_a_force_whose_field_is_never_recorded():
    """A force-wide missing level is collinear with the force dummy: the column goes, the force stays."""
    cases = pd.DataFrame({
        "force": ["a"] * 4 + ["b"] * 4, "arm": ["cara", "comparison"] * 4, "period": [2018, 2019] * 4,
        "ethnicity": ["white", "asian", "white", "white", None, None, None, None],
    })
    design = design_matrix(cases, ["ethnicity"], force_effects=True, year_trend=True)
    assert len(design.matrix) == 8
    assert "force_b" in design.matrix and "ethnicity_missing" not in design.matrix
    assert np.linalg.matrix_rank(design.matrix.to_numpy()) == design.matrix.shape[1]


def test_a_force_whose_comparison_arm_never_reoffends_is_reported_not_estimable():
    """Separation gives no estimate, not an odds ratio of 3e10."""
    rng = np.random.default_rng(8)
    n = 60
    cases = pd.DataFrame({
        "force": "norfolk", "arm": np.repeat(["cara", "comparison"], n // 2), "period": 2021,
        "age": rng.normal(35, 8, n), "any_reoffence": pd.array([True, False] * (n // 4) + [False] * (n // 2)),
    })
    table = pd.DataFrame(per_force_estimates(cases, ["age"], level=0.9))
    assert table["estimate"].isna().all()
    assert table["note"].str.contains("not estimable in this force alone: quasi-separation").all()


def test_one_force_gives_per_force_rows_and_says_why_there_is_no_pooled_estimate(population):
    one_force = population.cases.loc[population.cases["force"] == "dorset"].reset_index(drop=True)
    table = regression_estimates(one_force, ["age", "sex"], followup_days=365, level=0.9, weights="webb",
                                 draws=99, seed=1)
    pooled_binary = table.loc[(table["scope"] == "pooled") & (table["method"] != "poisson_glm")]
    assert len(pooled_binary) == 4 and pooled_binary["estimate"].isna().all()
    assert pooled_binary["note"].str.contains("two or more forces").all()
    assert table.loc[table["scope"] == "force", "estimate"].notna().all()
