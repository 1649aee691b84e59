"""Propensity-score cross-check within force: ATT weights, balance before and after, risk difference per 100.

Why: Karavias et al. (2023) matched CARA cases to historical controls on propensity scores; this repeats
that design in every force so the report can show how much case mix alone moves the estimate. Scores are
fitted within force (each force has its own comparison group). Case mix only: with historical controls
the weights do not adjust for secular trends, which the regression and ITS cross-checks do.
"""

import numpy as np
import pandas as pd

from cara_eval.crosscheck.regression import ESTIMATE_COLUMNS, Design, design_matrix, estimate_row
from cara_eval.quality.profile import standardised_mean_difference

BALANCE_COLUMNS = ["force", "covariate", "level", "cara_mean", "comparison_mean_before", "comparison_mean_after",
                   "smd_before", "smd_after"]


def propensity_scores(x: np.ndarray, treated: np.ndarray, ridge: float = 1e-6, max_iterations: int = 50) -> np.ndarray:
    """Logistic regression of CARA on case mix by Newton's method, with a tiny ridge.

    Hand-rolled rather than statsmodels because the bootstrap refits it hundreds of times per force, and
    the ridge keeps the fit finite when a small force's rare level separates the arms.
    """
    beta = np.zeros(x.shape[1])
    for _ in range(max_iterations):
        score = 1 / (1 + np.exp(-x @ beta))
        hessian = (x * (score * (1 - score))[:, None]).T @ x + ridge * np.eye(x.shape[1])
        step = np.linalg.solve(hessian, x.T @ (treated - score) - ridge * beta)
        beta += step
        if np.max(np.abs(step)) < 1e-8:
            break
    return 1 / (1 + np.exp(-x @ beta))


def att_weights(x: np.ndarray, treated: np.ndarray, clip: tuple[float, float]) -> np.ndarray:
    """Weights for the effect on the treated: 1 for CARA cases, e/(1-e) for comparison cases.

    Scores are clipped to ``clip`` so that a few comparison cases that look exactly like CARA cases cannot
    carry the whole comparison group.
    """
    score = np.clip(propensity_scores(x, treated.astype(float)), *clip)
    return np.where(treated, 1.0, score / (1 - score))


def balance_table(design: Design, treated: np.ndarray, weights: np.ndarray) -> pd.DataFrame:
    """Standardised mean differences per covariate level, before and after weighting.

    The denominator is the unweighted SD in both columns (Austin 2009, as the quality stage's case mix),
    so a change in SMD is a change in means only.
    """
    x = design.matrix.drop(columns="intercept")
    cara, comparison = x[treated], x[~treated]
    comparison_weights = weights[~treated]
    weighted_mean = comparison.mul(comparison_weights, axis=0).sum() / comparison_weights.sum()
    variances = (cara.var(ddof=0), comparison.var(ddof=0))
    return pd.DataFrame({
        "covariate": [design.terms[c][0] for c in x.columns],
        "level": [design.terms[c][1] for c in x.columns],
        "cara_mean": cara.mean().to_numpy(),
        "comparison_mean_before": comparison.mean().to_numpy(),
        "comparison_mean_after": weighted_mean.to_numpy(),
        "smd_before": standardised_mean_difference(cara.mean(), comparison.mean(), *variances),
        "smd_after": standardised_mean_difference(cara.mean(), weighted_mean, *variances),
    })


def weighted_risk_difference(outcome: np.ndarray, treated: np.ndarray, weights: np.ndarray) -> float:
    """CARA reoffence rate minus the ATT-weighted comparison rate, per 100."""
    return 100 * (outcome[treated].mean() - np.average(outcome[~treated], weights=weights[~treated]))


def _resample_within_arm(treated: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Row positions of a bootstrap sample that keeps each arm's size, so every replicate has both arms."""
    return np.concatenate([rng.choice(arm, size=len(arm)) for arm in (np.flatnonzero(treated),
                                                                     np.flatnonzero(~treated))])


def propensity_estimates(cases: pd.DataFrame, covariates: list, level: float, clip: tuple[float, float],
                         draws: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ATT risk difference per force and pooled (CARA-case weighted), percentile bootstrap intervals.

    The bootstrap refits the propensity model in every replicate, so the interval carries the score's
    own uncertainty. Returns (estimates in ``ESTIMATE_COLUMNS`` layout, balance table).
    """
    rng = np.random.default_rng(seed)
    forces = sorted(cases["force"].unique())
    arrays, balance, point = {}, [], {}
    for force in forces:
        force_cases = cases.loc[cases["force"] == force].reset_index(drop=True)
        if force_cases["arm"].nunique() < 2:
            continue
        design = design_matrix(force_cases, covariates, force_effects=False, year_trend=False, treatment=False)
        x, treated = design.matrix.to_numpy(), (force_cases["arm"] == "cara").to_numpy()
        outcome = force_cases["any_reoffence"].astype(float).to_numpy()
        weights = att_weights(x, treated, clip)
        arrays[force] = (x, treated, outcome)
        point[force] = weighted_risk_difference(outcome, treated, weights)
        balance.append(balance_table(design, treated, weights).assign(force=force))
    estimable = list(arrays)
    n_cara = pd.Series({force: arrays[force][1].sum() for force in estimable}, dtype=float)

    replicates = []
    for _ in range(draws):
        replicate = {}
        for force, (x, treated, outcome) in arrays.items():
            rows = _resample_within_arm(treated, rng)
            replicate[force] = weighted_risk_difference(outcome[rows], treated[rows],
                                                        att_weights(x[rows], treated[rows], clip))
        replicates.append(replicate)
    replicates = pd.DataFrame(replicates, columns=estimable)
    point = pd.Series(point, dtype=float)
    point["pooled"] = float(np.average(point[estimable], weights=n_cara[estimable]))
    replicates["pooled"] = replicates[estimable].to_numpy() @ (n_cara / n_cara.sum()).to_numpy()

    alpha = 1 - level
    note = (f"logistic propensity on case mix within force, ATT weights (scores clipped to {list(clip)}); "
            f"percentile bootstrap ({draws} draws, arms resampled separately, scores refitted); case mix only, "
            "no adjustment for secular trends")
    rows = []
    for scope_force in estimable + ["pooled"]:
        draws_of = replicates[scope_force]
        p_value = min(1.0, 2 * min((draws_of <= 0).mean(), (draws_of >= 0).mean()))
        scope, force, extra = (("pooled", "", "; pooled = CARA-case-weighted mean of force effects")
                               if scope_force == "pooled" else ("force", scope_force, ""))
        rows.append(estimate_row("propensity_att", scope, force, "risk_difference_per100", point[scope_force],
                                 draws_of.quantile(alpha / 2), draws_of.quantile(1 - alpha / 2), p_value,
                                 note + extra))
    rows += [estimate_row("propensity_att", "force", f, "risk_difference_per100", np.nan, np.nan, np.nan, np.nan,
                          "not estimable: only one arm in this force") for f in forces if f not in estimable]
    estimates = pd.DataFrame(rows, columns=ESTIMATE_COLUMNS)
    return estimates, pd.concat(balance, ignore_index=True)[BALANCE_COLUMNS]
