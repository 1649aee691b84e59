"""Expected precision and assurance of the risk difference after more months of data: preposterior simulation.

Method (a normal approximation of the fitted hierarchy, checked against real refits in tests/planning):

1. Each force's data alone say y_f ~ N(theta_f, v_f) about its log hazard ratio: the no-pooling fit's posterior
   with its wide prior divided out.
2. More months multiply the information on theta_f by the gain in 1 / (1/E_cara + 1/E_comparison), E the expected
   events per arm (cara_eval.planning.accrual): the variance of a log rate ratio of two Poisson counts.
3. For each of S draws from the current posterior (theta_f from the partially pooled fit), the new data's
   estimate is simulated around that theta_f and combined with y_f; the hierarchy theta_f ~ N(mu, tau), with the
   configured priors on mu and tau (tau on a grid), gives the new partially pooled posterior.
4. Its draws go to the risk difference per 100 CARA cases as the model's ATT does (each force's untreated
   12-month risk and its together shift, read from the fit); the national figure weights forces by CARA cases.
5. The width of the 90% interval, averaged over the S simulations, is the expected width; the share of
   simulations whose interval excludes zero is the assurance. The approximation's current width is rescaled to the
   fitted model's current interval (columns `approximation_ratio`, `approximation_shift`: the scale and shift that
   match the approximation's month-0 interval to the fit's), so only the change with more data is approximated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

NATIONAL = "all"
LOW, HIGH = 0.05, 0.95
TAU_GRID_POINTS = 60
PLANNING_VARIABLES = ["force_log_hr", "mu_log_hr", "tau", "risk_difference_per100", "risk_difference_per100_force",
                      "risk_ratio_force", "log_hr_att_force"]
PRECISION_COLUMNS = ["scope", "force", "months_added", "cases_added", "cara_cases_added", "expected_width_90",
                     "assurance"]


@dataclass(frozen=True)
class Hierarchy:
    """What the normal approximation needs from the fit: per-force evidence, priors, the map to risk differences."""

    forces: list[str]
    estimate: np.ndarray  # y_f: the force's data alone (log hazard ratio)
    variance: np.ndarray  # v_f
    risk_untreated: np.ndarray  # CARA cases' 12-month risk without CARA, per force
    effect_shift: np.ndarray  # ATT log hazard ratio minus the force effect (the together shift, averaged)
    mu_mean: float
    mu_sd: float
    tau_grid: np.ndarray
    tau_log_prior: np.ndarray

    def risk_difference(self, log_hr: np.ndarray) -> np.ndarray:
        """Risk difference per 100 of each force (last axis) at a force effect: risk with minus risk without."""
        cumulative = -np.log1p(-self.risk_untreated)
        return 100 * (-np.expm1(-cumulative * np.exp(log_hr + self.effect_shift)) - self.risk_untreated)


def _tau_log_density(tau: np.ndarray, spec: dict) -> np.ndarray:
    """Log prior density of tau up to a constant, for the prior families the model accepts for it."""
    scale = spec["sigma"]
    if spec["dist"] == "half_normal":
        return -0.5 * (tau / scale) ** 2
    if spec["dist"] == "half_cauchy":
        return -np.log1p((tau / scale) ** 2)
    if spec["dist"] == "exponential":
        return -tau / scale
    raise ValueError(f"tau prior: unsupported dist {spec['dist']!r}")


def hierarchy_from_fits(partial: xr.Dataset, no_pooling: xr.Dataset, priors: dict) -> Hierarchy:
    """The approximation's inputs from the stacked draws of the partial-pooling and no-pooling fits."""
    forces = [str(f) for f in partial["force"].to_numpy()]
    no_pool = no_pooling["no_pooling_force_log_hr"].sel(force=forces)
    prior_precision = 1 / priors["no_pooling_force_log_hr"]["sigma"] ** 2
    prior_mean = priors["no_pooling_force_log_hr"].get("mu", 0.0)
    post_mean, post_var = no_pool.mean("sample").to_numpy(), no_pool.var("sample").to_numpy()
    # Divide the wide prior out; a force the prior dominates keeps a floor of information (1 / 4 prior variances).
    precision = np.maximum(1 / post_var - prior_precision, prior_precision / 4)
    estimate = (post_mean / post_var - prior_mean * prior_precision) / precision
    rd = partial["risk_difference_per100_force"].to_numpy() / 100
    ratio_gap = partial["risk_ratio_force"].to_numpy() - 1
    untreated = rd / np.where(np.abs(ratio_gap) > 1e-4, ratio_gap, np.nan)  # r1 - r0 over r1 / r0 - 1 is r0
    risk_untreated = np.clip(np.nanmedian(untreated, axis=partial["risk_ratio_force"].get_axis_num("sample")),
                             1e-4, 1 - 1e-4)
    shift = (partial["log_hr_att_force"] - partial["force_log_hr"]).mean("sample").to_numpy()
    tau_spec = priors["tau"]
    if "tau" in partial:  # estimated: a grid over its plausible range
        upper = 3 * max(float(partial["tau"].quantile(0.995)), tau_spec["sigma"])
        tau_grid = np.linspace(upper / TAU_GRID_POINTS, upper, TAU_GRID_POINTS)
    else:  # fixed at its prior scale (two forces) or absent (one force: its effect is mu)
        tau_grid = np.array([tau_spec["sigma"] if len(forces) > 1 else 1e-6])
    return Hierarchy(
        forces=forces, estimate=estimate, variance=1 / precision, risk_untreated=risk_untreated, effect_shift=shift,
        mu_mean=priors["mu_log_hr"].get("mu", 0.0), mu_sd=priors["mu_log_hr"]["sigma"], tau_grid=tau_grid,
        tau_log_prior=_tau_log_density(tau_grid, tau_spec),
    )


def information_gain(accrual: pd.DataFrame, forces: list[str]) -> pd.DataFrame:
    """Information on each force's log hazard ratio after m months relative to now (months x forces).

    Information of a log rate ratio: 1 / (1/E_cara + 1/E_comparison); half an event keeps an empty arm finite."""
    events = accrual.pivot_table(index=["months_added", "force"], columns="arm", values="events").fillna(0.0) + 0.5
    information = (1 / (1 / events["cara"] + 1 / events["comparison"])).unstack("force")[forces]
    return information / information.loc[0]


def posterior_intervals(hierarchy: Hierarchy, estimate: np.ndarray, variance: np.ndarray, weights: np.ndarray,
                        uniforms: np.ndarray, normals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """90% intervals of each force's and the national risk difference given the forces' data-alone estimates.

    estimate: (S, F) one set of estimates per simulation; variance: (F,); weights: CARA cases per force (F,);
    uniforms (S, K) and normals (S, K, F + 1): the random numbers of K posterior draws per simulation.
    Returns q05 and q95, each (S, F + 1), the last column national. tau is integrated on its grid, mu and theta
    drawn from their conditional normals (Gelman et al., Bayesian Data Analysis, section 5.4)."""
    tau2 = hierarchy.tau_grid[:, None] ** 2
    marginal_var = tau2 + variance[None, :]  # (G, F)
    mu_precision = 1 / hierarchy.mu_sd**2 + (1 / marginal_var).sum(axis=1)  # (G,)
    weighted = estimate @ (1 / marginal_var).T  # (S, G)
    mu_mean = (hierarchy.mu_mean / hierarchy.mu_sd**2 + weighted) / mu_precision
    log_post = (
        hierarchy.tau_log_prior
        - 0.5 * np.log(marginal_var).sum(axis=1)
        - 0.5 * np.log(mu_precision)
        - 0.5 * ((estimate**2) @ (1 / marginal_var).T - mu_precision * mu_mean**2)
    )
    post = np.exp(log_post - log_post.max(axis=1, keepdims=True))
    cdf = np.cumsum(post, axis=1) / post.sum(axis=1, keepdims=True)
    grid_index = np.minimum((uniforms[:, :, None] > cdf[:, None, :]).sum(axis=2), len(hierarchy.tau_grid) - 1)
    rows = np.arange(len(estimate))[:, None]
    mu = mu_mean[rows, grid_index] + normals[:, :, -1] / np.sqrt(mu_precision[grid_index])
    tau2_draw = tau2[grid_index, 0][:, :, None]
    theta_precision = 1 / tau2_draw + 1 / variance
    theta_mean = (mu[:, :, None] / tau2_draw + estimate[:, None, :] / variance) / theta_precision
    theta = theta_mean + normals[:, :, :-1] / np.sqrt(theta_precision)
    rd = hierarchy.risk_difference(theta)
    national = (rd * weights).sum(axis=2) / weights.sum()
    values = np.concatenate([rd, national[:, :, None]], axis=2)
    low, high = np.quantile(values, [LOW, HIGH], axis=1)
    return low, high


def _current_intervals(partial: xr.Dataset, forces: list[str]) -> pd.DataFrame:
    """The fitted model's own 90% intervals now, per force and national (index: force or NATIONAL)."""
    force_rd = partial["risk_difference_per100_force"].sel(force=forces)
    low = force_rd.quantile(LOW, dim="sample").to_numpy()
    high = force_rd.quantile(HIGH, dim="sample").to_numpy()
    national = partial["risk_difference_per100"].quantile([LOW, HIGH], dim="sample").to_numpy()
    return pd.DataFrame({"q05": [*low, national[0]], "q95": [*high, national[1]]}, index=[*forces, NATIONAL])


def precision_table(partial: xr.Dataset, no_pooling: xr.Dataset, accrual: pd.DataFrame, priors: dict,
                    simulations: int, draws_per_simulation: int, seed: int) -> pd.DataFrame:
    """Expected 90% width and assurance per scope (national, each force) for each number of added months in
    `accrual` (which must include 0).

    `partial`, `no_pooling`: stacked draws (cara_eval.model.estimands.stacked_draws) with PLANNING_VARIABLES and
    `no_pooling_force_log_hr`; `accrual`: cara_eval.planning.accrual.project_accrual over the same months.
    The same random numbers serve every month (common random numbers), so the curves move only with the data.
    Month 0 is the fitted model itself: its current width, and assurance 1 or 0 (its interval excludes zero or not).
    Columns PRECISION_COLUMNS, the 5% and 95% quantiles of the width over simulations (width_90_q05, width_90_q95),
    current_q05, current_q95, approximation_ratio and approximation_shift."""
    hierarchy = hierarchy_from_fits(partial, no_pooling, priors)
    forces = hierarchy.forces
    gain = information_gain(accrual, forces)
    cara = accrual[accrual["arm"] == "cara"].pivot(index="months_added", columns="force", values="cases_added")[forces]
    cases = accrual.groupby(["months_added", "force"])["cases_added"].sum().unstack("force")[forces]
    n_cara = accrual[(accrual["arm"] == "cara") & (accrual["months_added"] == 0)].set_index("force")["n_cases"][forces]
    rng = np.random.default_rng(seed)
    theta = partial["force_log_hr"].sel(force=forces).transpose("sample", "force").to_numpy()
    truth = theta[rng.choice(len(theta), size=simulations, replace=len(theta) < simulations)]
    noise = rng.standard_normal((simulations, len(forces)))
    uniforms = rng.random((simulations, draws_per_simulation))
    normals = rng.standard_normal((simulations, draws_per_simulation, len(forces) + 1))

    current = _current_intervals(partial, forces)
    current_width = (current["q95"] - current["q05"]).to_numpy()
    conclusive_now = ((current["q05"] > 0) | (current["q95"] < 0)).to_numpy(dtype=float)
    # Month 0 through the approximation, with the same random numbers: its mean interval is matched to the fitted
    # model's own (scale and shift), so only the change with more data rests on the approximation.
    now_low, now_high = posterior_intervals(hierarchy, np.tile(hierarchy.estimate, (simulations, 1)),
                                            hierarchy.variance, n_cara.to_numpy(dtype=float), uniforms, normals)
    ratio = current_width / np.mean(now_high - now_low, axis=0)
    shift = (current["q05"] + current["q95"]).to_numpy() / 2 - np.mean(now_low + now_high, axis=0) / 2
    rows = []
    for months in gain.index:
        g = gain.loc[months].to_numpy()
        # The data-alone estimate after the added months: today's, combined with new data simulated around theta.
        new_estimate = (hierarchy.estimate + (g - 1) * truth + np.sqrt((g - 1) * hierarchy.variance) * noise) / g
        weights = (n_cara + cara.loc[months]).to_numpy(dtype=float)
        low, high = posterior_intervals(hierarchy, new_estimate, hierarchy.variance / g, weights, uniforms, normals)
        centre, half_width = (low + high) / 2 + shift, ratio * (high - low) / 2
        width = np.mean(2 * half_width, axis=0) if months > 0 else current_width
        width_low, width_high = np.quantile(2 * half_width, [LOW, HIGH], axis=0) if months > 0 else (current_width,) * 2
        assurance = np.mean(np.abs(centre) > half_width, axis=0) if months > 0 else conclusive_now
        for j, force in enumerate([*forces, NATIONAL]):
            national = force == NATIONAL
            rows.append({
                "scope": "national" if national else "force",
                "force": force,
                "months_added": int(months),
                "cases_added": float(cases.loc[months].sum() if national else cases.loc[months, force]),
                "cara_cases_added": float(cara.loc[months].sum() if national else cara.loc[months, force]),
                "expected_width_90": float(width[j]),
                "width_90_q05": float(width_low[j]),
                "width_90_q95": float(width_high[j]),
                "assurance": float(assurance[j]),
                "current_q05": current["q05"].iloc[j],
                "current_q95": current["q95"].iloc[j],
                "approximation_ratio": ratio[j],
                "approximation_shift": shift[j],
            })
    return pd.DataFrame(rows)


def conclusive_table(precision: pd.DataFrame, target: float) -> pd.DataFrame:
    """Months until conclusive per scope: 0 when the fitted 90% interval excludes zero now, else the first month
    on the grid whose assurance reaches `target`, else missing (more than the grid's last month).

    Columns: scope, force, current_q05, current_q95, conclusive_now, months_to_conclusive, assurance_at_max,
    max_months, approximation_ratio, approximation_shift."""
    rows = []
    for (scope, force), part in precision.groupby(["scope", "force"], sort=False):
        part = part.sort_values("months_added")
        first = part.iloc[0]
        now = bool(first["current_q05"] > 0 or first["current_q95"] < 0)
        reached = part.loc[(part["months_added"] > 0) & (part["assurance"] >= target), "months_added"]
        months = 0 if now else (int(reached.iloc[0]) if len(reached) else np.nan)
        rows.append({"scope": scope, "force": force, "current_q05": first["current_q05"],
                     "current_q95": first["current_q95"], "conclusive_now": now, "months_to_conclusive": months,
                     "assurance_at_max": part["assurance"].iloc[-1], "max_months": int(part["months_added"].max()),
                     "approximation_ratio": first["approximation_ratio"],
                     "approximation_shift": first["approximation_shift"]})
    table = pd.DataFrame(rows)
    table["months_to_conclusive"] = table["months_to_conclusive"].astype("Int64")
    return table
