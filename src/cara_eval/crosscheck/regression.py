"""Frequentist cross-checks of the Bayesian estimates: pooled and per-force GLMs, Poisson rates, wild bootstrap.

Why: readers who trust regression tables should see the textbook methods give the same direction as the
hierarchical model, and see why per-force answers disagree (the reason for pooling). Every estimator
writes rows in one layout, ``ESTIMATE_COLUMNS``, so the report can put them next to the Bayesian table.
"""

import itertools
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

ESTIMATE_COLUMNS = ["method", "scope", "force", "estimand", "estimate", "ci_low", "ci_high", "p_value", "note"]
TREATMENT = "cara"
# An odds ratio beyond e**10 (about 22,000) is (quasi-)separation in a small force, not an effect.
MAX_ABS_LOG_ODDS = 10.0

# Six-point weights of Webb (2023): with few clusters Rademacher gives only 2**G distinct draws.
BOOTSTRAP_WEIGHTS = {
    "rademacher": np.array([-1.0, 1.0]),
    "webb": np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)]),
}


@dataclass
class Design:
    """Model matrix plus, for every column, the covariate and level it encodes (for balance tables)."""

    matrix: pd.DataFrame
    terms: dict


def full_followup(cases: pd.DataFrame, followup_days: int) -> pd.DataFrame:
    """Cases observed for the whole window: a binary outcome on cut-short follow-up would look like success."""
    return cases.loc[cases["followup_days"] >= followup_days].reset_index(drop=True)


def design_matrix(cases: pd.DataFrame, covariates: list, force_effects: bool, year_trend: bool,
                  treatment: bool = True) -> Design:
    """Intercept, CARA indicator, force dummies, centred calendar year and covariates.

    Missing covariate values get their own level (categorical) or a fill plus indicator (numeric), so a
    force that never records a field is not dropped whole; columns that are linearly dependent on earlier
    ones (for example a force-wide missing level next to the force dummy) are removed in column order.
    """
    columns = {"intercept": pd.Series(1.0, index=cases.index)}
    terms = {"intercept": ("intercept", "")}
    if treatment:
        columns[TREATMENT] = (cases["arm"] == "cara").astype(float)
        terms[TREATMENT] = (TREATMENT, "")
    if force_effects:
        for name, column in pd.get_dummies(cases["force"], prefix="force", drop_first=True, dtype=float).items():
            columns[name], terms[name] = column, ("force", name.removeprefix("force_"))
    if year_trend:
        columns["year"] = cases["period"].astype(float) - cases["period"].mean()
        terms["year"] = ("period", "")
    for covariate in covariates:
        values = cases[covariate]
        missing = values.isna()
        if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            numeric = values.astype("Float64").astype(float)
            columns[covariate] = numeric.fillna(numeric.median() if (~missing).any() else 0.0)
            terms[covariate] = (covariate, "")
            if missing.any():
                columns[f"{covariate}_missing"] = missing.astype(float)
                terms[f"{covariate}_missing"] = (covariate, "missing")
        else:
            levels = values.astype("string").fillna("missing")
            for level in sorted(levels.unique())[1:]:
                name = f"{covariate}_{level}"
                columns[name], terms[name] = (levels == level).astype(float), (covariate, level)
    matrix = pd.DataFrame(columns)
    keep = _independent_columns(matrix.to_numpy())
    if treatment and TREATMENT not in matrix.columns[keep]:
        raise ValueError("The CARA indicator does not vary independently of the other terms in these cases.")
    matrix = matrix.loc[:, keep]
    return Design(matrix, {name: terms[name] for name in matrix.columns})


def _independent_columns(x: np.ndarray, tolerance: float = 1e-8) -> np.ndarray:
    """Columns that add rank, judged in order: R's diagonal is what each column adds beyond the earlier ones."""
    norms = np.linalg.norm(x, axis=0)
    diagonal = np.abs(np.diag(np.linalg.qr(x, mode="r")))
    return (norms > 0) & (diagonal > tolerance * np.where(norms > 0, norms, 1.0))


def wald_interval(estimate: float, se: float, level: float, df: float | None) -> tuple[float, float, float]:
    """Wald interval and two-sided p-value, on the t scale when df is given (few clusters)."""
    dist = stats.t(df) if df else stats.norm()
    crit = dist.ppf(0.5 + level / 2)
    p_value = 2 * dist.sf(abs(estimate / se)) if se > 0 else np.nan
    return estimate - crit * se, estimate + crit * se, p_value


def estimate_row(method, scope, force, estimand, estimate, ci_low, ci_high, p_value, note) -> dict:
    """One row of the shared estimates layout."""
    return dict(zip(ESTIMATE_COLUMNS, [method, scope, force, estimand, estimate, ci_low, ci_high, p_value, note]))


def _fit_glm(y, design: Design, family, groups=None, offset=None):
    """GLM with force-clustered (CR1) errors when groups are given, else heteroskedasticity-robust (HC1).

    Perfect separation (a small force where one arm never reoffends) raises PerfectSeparationWarning
    as an error: its coefficients are not estimates, so callers report the force as not estimable.
    """
    model = sm.GLM(y, design.matrix, family=family, offset=offset)
    with warnings.catch_warnings(), np.errstate(over="ignore"):  # exp overflow is how separation starts
        warnings.simplefilter("error", PerfectSeparationWarning)
        if groups is None:
            return model.fit(cov_type="HC1")
        codes = pd.factorize(groups)[0]
        return model.fit(cov_type="cluster",
                         cov_kwds={"groups": codes, "use_correction": True, "df_correction": True})


def risk_difference_on_treated(result, design: Design) -> tuple[float, float]:
    """Risk difference per 100 among CARA cases (their case mix), and its delta-method standard error.

    This is the effect on the treated, the estimand of the synthetic truth and the Bayesian model.
    """
    x1 = design.matrix.loc[design.matrix[TREATMENT] == 1].to_numpy()
    x0 = x1.copy()
    x0[:, design.matrix.columns.get_loc(TREATMENT)] = 0.0
    beta = result.params.to_numpy()
    p1, p0 = 1 / (1 + np.exp(-x1 @ beta)), 1 / (1 + np.exp(-x0 @ beta))
    gradient = (p1 * (1 - p1)) @ x1 / len(x1) - (p0 * (1 - p0)) @ x0 / len(x0)
    se = float(np.sqrt(gradient @ result.cov_params().to_numpy() @ gradient))
    return 100 * float(np.mean(p1 - p0)), 100 * se


@dataclass
class WildBootstrapResult:
    """One coefficient's OLS estimate, CR1 standard error and wild-bootstrap interval and p-value (H0: 0)."""

    estimate: float
    se_cluster: float
    ci_low: float
    ci_high: float
    p_value: float
    n_clusters: int
    n_draws: int
    enumerated: bool


def _bootstrap_weights(n_clusters: int, kind: str, draws: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """Draw cluster weights; enumerate every sign pattern when there are no more of them than draws (exact)."""
    values = BOOTSTRAP_WEIGHTS[kind]
    if len(values) ** n_clusters <= draws:
        return np.array(list(itertools.product(values, repeat=n_clusters))), True
    return rng.choice(values, size=(draws, n_clusters)), False


def wild_cluster_bootstrap(y: np.ndarray, x: np.ndarray, column: int, groups: np.ndarray, level: float,
                           weights: str, draws: int, seed: int) -> WildBootstrapResult:
    """Restricted (null-imposed) wild cluster bootstrap-t for one OLS coefficient, interval by test inversion.

    Cameron, Gelbach and Miller (2008); MacKinnon and Webb (2018). OLS is linear in y, so each bootstrap
    coefficient and its CR1 standard error follow from per-cluster sums without refitting (Roodman et al.
    2019, "fast and wild"); the interval is every null value the bootstrap test does not reject.
    """
    codes, _ = pd.factorize(groups)
    n_clusters = codes.max() + 1
    n, k = x.shape
    xtx_inv = np.linalg.inv(x.T @ x)
    cluster_cross = np.zeros((n_clusters, k, k))
    np.add.at(cluster_cross, codes, x[:, :, None] * x[:, None, :])
    q = np.einsum("k,gkl->gl", xtx_inv[column], cluster_cross)
    small_sample = n_clusters / (n_clusters - 1) * (n - 1) / (n - k)

    def cluster_scores(residuals):
        sums = np.zeros((n_clusters, k))
        np.add.at(sums, codes, x * residuals[:, None])
        return xtx_inv @ sums.T  # k x G: each cluster's contribution to beta_hat - beta

    beta = xtx_inv @ x.T @ y
    contribution = cluster_scores(y - x @ beta)[column]
    se_cluster = float(np.sqrt(small_sample * np.sum(contribution**2)))

    z = np.delete(x, column, axis=1)
    d = x[:, column]
    project = np.linalg.solve(z.T @ z, z.T)
    resid_y, resid_d = y - z @ (project @ y), d - z @ (project @ d)
    a_y, a_d = cluster_scores(resid_y), cluster_scores(resid_d)
    rng = np.random.default_rng(seed)
    w, enumerated = _bootstrap_weights(n_clusters, weights, draws, rng)

    def p_value(null: float) -> float:
        a = a_y - null * a_d  # restricted residuals y - null*d - Z gamma(null) are linear in the null value
        numerator = w @ a[column]
        scores = w * a[column] - w @ (q @ a).T
        t_star = numerator / np.sqrt(small_sample * np.sum(scores**2, axis=1))
        return float(np.mean(np.abs(t_star) >= abs((beta[column] - null) / se_cluster) - 1e-12))

    alpha = 1 - level
    ci_low = _invert(p_value, beta[column], -se_cluster, alpha)
    ci_high = _invert(p_value, beta[column], se_cluster, alpha)
    return WildBootstrapResult(float(beta[column]), se_cluster, ci_low, ci_high, p_value(0.0), int(n_clusters),
                               len(w), enumerated)


def _invert(p_value, estimate: float, step: float, alpha: float, max_steps: float = 256.0) -> float:
    """Where the bootstrap p-value falls to alpha moving away from the estimate; +-inf if it never does."""
    inside, multiple = estimate, 1.0
    while p_value(estimate + multiple * step) >= alpha:
        inside = estimate + multiple * step
        multiple *= 2
        if multiple > max_steps:
            return float(np.sign(step) * np.inf)
    outside = estimate + multiple * step
    for _ in range(40):
        middle = (inside + outside) / 2
        inside, outside = (middle, outside) if p_value(middle) >= alpha else (inside, middle)
    return float((inside + outside) / 2)


def pooled_binary_estimates(cases: pd.DataFrame, covariates: list, level: float, weights: str, draws: int,
                            seed: int) -> list[dict]:
    """Pooled logistic GLM (force fixed effects, year trend) and a linear probability model with wild bootstrap."""
    n_forces = cases["force"].nunique()
    if n_forces < 2:
        return [estimate_row(method, "pooled", "", estimand, np.nan, np.nan, np.nan, np.nan,
                             "not estimable: pooling and clustering by force need two or more forces")
                for method, estimand in [("logit_glm", "odds_ratio"), ("logit_glm", "risk_difference_per100"),
                                         ("lpm_cluster_robust", "risk_difference_per100"),
                                         ("lpm_wild_cluster_bootstrap", "risk_difference_per100")]]
    design = design_matrix(cases, covariates, force_effects=True, year_trend=True)
    y = cases["any_reoffence"].astype(float).to_numpy()
    rows = []
    logit = _fit_glm(y, design, sm.families.Binomial(), groups=cases["force"])
    log_or, se_log_or = logit.params[TREATMENT], logit.bse[TREATMENT]
    low, high, p = wald_interval(log_or, se_log_or, level, n_forces - 1)
    note = (f"force fixed effects, linear calendar year, covariates; CR1 errors clustered by force, "
            f"t({n_forces - 1}); anti-conservative with {n_forces} forces, see lpm_wild_cluster_bootstrap")
    rows.append(estimate_row("logit_glm", "pooled", "", "odds_ratio", np.exp(log_or), np.exp(low), np.exp(high), p,
                             note))
    rd, se_rd = risk_difference_on_treated(logit, design)
    rows.append(estimate_row("logit_glm", "pooled", "", "risk_difference_per100", rd,
                             *wald_interval(rd, se_rd, level, n_forces - 1),
                             note + "; effect on the treated, delta method"))

    boot = wild_cluster_bootstrap(y, design.matrix.to_numpy(), design.matrix.columns.get_loc(TREATMENT),
                                  cases["force"].to_numpy(), level, weights, draws, seed)
    lpm_note = "linear probability model, same terms as logit_glm; the CARA coefficient is the risk difference"
    low, high, p = wald_interval(100 * boot.estimate, 100 * boot.se_cluster, level, n_forces - 1)
    rows.append(estimate_row("lpm_cluster_robust", "pooled", "", "risk_difference_per100", 100 * boot.estimate,
                             low, high, p, f"{lpm_note}; CR1 errors clustered by force, t({n_forces - 1})"))
    draws_note = f"all {boot.n_draws} weight patterns enumerated" if boot.enumerated else f"{boot.n_draws} draws"
    rows.append(estimate_row("lpm_wild_cluster_bootstrap", "pooled", "", "risk_difference_per100",
                             100 * boot.estimate, 100 * boot.ci_low, 100 * boot.ci_high, boot.p_value,
                             f"{lpm_note}; wild cluster restricted bootstrap-t, {weights} weights, {draws_note}, "
                             f"{boot.n_clusters} forces; interval by test inversion. Bootstrapped as LPM because "
                             "OLS is linear in y (exact fast bootstrap, no refits) and its coefficient is already "
                             "the risk difference; cluster-robust errors over-reject with few clusters"))
    return rows


def pooled_poisson_estimates(cases: pd.DataFrame, covariates: list, level: float) -> list[dict]:
    """Poisson regression of reoffence counts with log follow-up offset (the protocol's method), events forces."""
    events = cases.loc[(cases["outcome_source"] == "events") & (cases["followup_days"] > 0)].reset_index(drop=True)
    n_forces = events["force"].nunique()
    if n_forces == 0:
        return [estimate_row("poisson_glm", "pooled", "", "rate_ratio", np.nan, np.nan, np.nan, np.nan,
                             "not estimable: no force supplies reoffence events")]
    design = design_matrix(events, covariates, force_effects=n_forces > 1, year_trend=True)
    result = _fit_glm(events["reoffence_count"].astype(float).to_numpy(), design, sm.families.Poisson(),
                      groups=events["force"] if n_forces > 1 else None,
                      offset=np.log(events["followup_days"].astype(float).to_numpy()))
    df = n_forces - 1 if n_forces > 1 else None
    low, high, p = wald_interval(result.params[TREATMENT], result.bse[TREATMENT], level, df)
    errors = f"CR1 errors clustered by force, t({df})" if df else "HC1 errors (one force)"
    note = (f"events-based forces only ({n_forces}); offset log(followup_days); force fixed effects, linear "
            f"calendar year, covariates; {errors}")
    return [estimate_row("poisson_glm", "pooled", "", "rate_ratio", np.exp(result.params[TREATMENT]),
                         np.exp(low), np.exp(high), p, note)]


def per_force_estimates(cases: pd.DataFrame, covariates: list, level: float) -> list[dict]:
    """One logistic GLM per force (no pooling): the noisy, contradictory answers the hierarchy reconciles."""
    rows = []
    for force, force_cases in cases.groupby("force", sort=True):
        force_cases = force_cases.reset_index(drop=True)
        note = "this force alone; linear calendar year, covariates; HC1 errors"
        try:
            design = design_matrix(force_cases, covariates, force_effects=False, year_trend=True)
            result = _fit_glm(force_cases["any_reoffence"].astype(float).to_numpy(), design,
                              sm.families.Binomial())
            if abs(result.params[TREATMENT]) > MAX_ABS_LOG_ODDS:
                raise ValueError(f"quasi-separation, CARA log odds ratio {result.params[TREATMENT]:.0f}")
        except (ValueError, np.linalg.LinAlgError, PerfectSeparationWarning) as error:
            rows += [estimate_row("logit_glm", "force", force, estimand, np.nan, np.nan, np.nan, np.nan,
                                  f"not estimable in this force alone: {error}")
                     for estimand in ("odds_ratio", "risk_difference_per100")]
            continue
        low, high, p = wald_interval(result.params[TREATMENT], result.bse[TREATMENT], level, None)
        rows.append(estimate_row("logit_glm", "force", force, "odds_ratio", np.exp(result.params[TREATMENT]),
                                 np.exp(low), np.exp(high), p, note))
        rd, se_rd = risk_difference_on_treated(result, design)
        rows.append(estimate_row("logit_glm", "force", force, "risk_difference_per100", rd,
                                 *wald_interval(rd, se_rd, level, None),
                                 note + "; effect on the treated, delta method"))
    return rows


def regression_estimates(cases: pd.DataFrame, covariates: list, followup_days: int, level: float,
                         weights: str, draws: int, seed: int) -> pd.DataFrame:
    """All regression cross-checks as one table in ``ESTIMATE_COLUMNS`` layout."""
    binary = full_followup(cases, followup_days)
    rows = (pooled_binary_estimates(binary, covariates, level, weights, draws, seed)
            + pooled_poisson_estimates(cases, covariates, level)
            + per_force_estimates(binary, covariates, level))
    return pd.DataFrame(rows, columns=ESTIMATE_COLUMNS)
