"""Estimand tables from posterior draws: pooled across imputations, with the probabilities policy asks for.

Every estimand is an effect on the treated (ATT) over a 365-day window: CARA cells' 12-month risk with vs
without the CARA term, weighted by CARA case counts (see cara_eval.model.effectiveness).
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

# (estimand, scope, posterior variable, no-effect value for prob_reduction or None)
ESTIMANDS = [
    ("risk_difference_per100", "pooled", "risk_difference_per100", 0.0),
    ("risk_ratio", "pooled", "risk_ratio", 1.0),
    ("odds_ratio", "pooled", "odds_ratio", 1.0),
    ("log_hr", "pooled", "mu_log_hr", 0.0),
    ("hazard_ratio", "pooled", "hazard_ratio", 1.0),
    ("risk_cara", "pooled", "risk_cara", None),
    ("risk_without_cara", "pooled", "risk_without_cara", None),
    ("tau", "pooled", "tau", None),
    ("together_log_hr_shift", "pooled", "together_log_hr_shift", 0.0),
    ("risk_difference_per100", "force", "risk_difference_per100_force", 0.0),
    ("risk_ratio", "force", "risk_ratio_force", 1.0),
    ("odds_ratio", "force", "odds_ratio_force", 1.0),
    ("log_hr", "force", "force_log_hr", 0.0),
    ("risk_difference_per100", "relationship", "risk_difference_per100_relationship", 0.0),
    ("risk_ratio", "relationship", "risk_ratio_relationship", 1.0),
    ("odds_ratio", "relationship", "odds_ratio_relationship", 1.0),
    ("risk_difference_per100", "new_force", "new_force_risk_difference_per100", 0.0),
    ("risk_ratio", "new_force", "new_force_risk_ratio", 1.0),
    ("odds_ratio", "new_force", "new_force_odds_ratio", 1.0),
    ("log_hr", "new_force", "new_force_log_hr", 0.0),
    # Time to first reoffence, from the same hazard fit: ATT-averaged hazard ratio, reoffence-free days gained.
    ("log_hr_att", "pooled", "log_hr_att", 0.0),
    ("hazard_ratio_att", "pooled", "hazard_ratio_att", 1.0),
    ("log_hr_att", "force", "log_hr_att_force", 0.0),
    ("hazard_ratio_att", "force", "hazard_ratio_att_force", 1.0),
    ("rmst_difference_days", "pooled", "rmst_difference_days", None),
    ("rmst_difference_days", "force", "rmst_difference_days_force", None),
    ("rmst_difference_days", "relationship", "rmst_difference_days_relationship", None),
]
ESTIMAND_VARIABLES = list(dict.fromkeys(variable for _, _, variable, _ in ESTIMANDS))
MEANINGFUL_REDUCTION_RR = 0.9


def stacked_draws(idatas: list[az.InferenceData], variables: list[str]) -> xr.Dataset:
    """Posterior draws of several fits (one per imputation) as one mixture sample along `sample`.

    Pooling draws across imputations is the Bayesian analogue of Rubin's rules (Zhou and Reiter 2010).
    """
    parts = []
    for k, idata in enumerate(idatas):
        present = [v for v in variables if v in idata.posterior]
        part = idata.posterior[present].stack(sample=("chain", "draw"))
        parts.append(part.drop_vars(["chain", "draw", "sample"]).assign_coords(fit=("sample", [k] * part.sizes["sample"])))
    return xr.concat(parts, dim="sample")


def _summary_row(estimand, scope, level, values, null):
    q05, q50, q95 = np.quantile(values, [0.05, 0.5, 0.95])
    return {
        "estimand": estimand,
        "scope": scope,
        "level": level,
        "mean": float(np.mean(values)),
        "sd": float(np.std(values, ddof=1)),
        "q05": q05,
        "q50": q50,
        "q95": q95,
        "prob_reduction": float(np.mean(values < null)) if null is not None else np.nan,
    }


def estimand_table(draws: xr.Dataset, gate_passed: bool, estimands: list[tuple] | None = None) -> pd.DataFrame:
    """Contract table `estimand, scope, level, mean, sd, q05, q50, q95, prob_reduction, gate_passed`.

    `estimands`: (estimand, scope, variable, null) rows to report (default ESTIMANDS, the primary outcome's).
    `level` is empty for pooled and new-force rows. Adds the two policy probabilities as rows (value in `mean`): Pr(any reduction) on the risk difference
    and Pr(risk reduced by at least 10%), i.e. Pr(risk ratio <= 0.9).
    """
    rows = []
    for estimand, scope, variable, null in ESTIMANDS if estimands is None else estimands:
        if variable not in draws:
            continue
        values = draws[variable]
        extra = [d for d in values.dims if d != "sample"]
        if not extra:
            rows.append(_summary_row(estimand, scope, "", values.to_numpy(), null))
            continue
        for level in values[extra[0]].to_numpy():
            rows.append(_summary_row(estimand, scope, str(level), values.sel({extra[0]: level}).to_numpy(), null))
    blank = {"sd": np.nan, "q05": np.nan, "q50": np.nan, "q95": np.nan, "prob_reduction": np.nan}
    if "risk_difference_per100" in draws:
        rows.append({"estimand": "pr_any_reduction", "scope": "pooled", "level": "", **blank,
                     "mean": float(np.mean(draws["risk_difference_per100"].to_numpy() < 0))})
    if "risk_ratio" in draws:
        rows.append({"estimand": "pr_reduction_ge_10pct", "scope": "pooled", "level": "", **blank,
                     "mean": float(np.mean(draws["risk_ratio"].to_numpy() <= MEANINGFUL_REDUCTION_RR))})
    table = pd.DataFrame(rows)
    table["gate_passed"] = gate_passed
    return table


def forest_table(partial: xr.Dataset, no_pooling: xr.Dataset, n_cases: pd.Series) -> pd.DataFrame:
    """Forest-plot data on the risk-difference-per-100 scale (ATT), contract columns.

    Per force: the no-pooling estimate (independent wide force effects, same likelihood) beside the
    partially pooled one; then the pooled estimate (`force = all`) and the new-force prediction
    (`force = new_force`). `n_cases` is indexed by force.
    """
    rows = []

    def add(force, method, values, n):
        q05, q95 = np.quantile(values, [0.05, 0.95])
        rows.append({"force": force, "method": method, "mean": float(np.mean(values)), "q05": q05, "q95": q95, "n_cases": int(n)})

    for force in partial["force"].to_numpy():
        add(force, "no_pooling", no_pooling["risk_difference_per100_force"].sel(force=force).to_numpy(), n_cases[force])
        add(force, "partial_pooling", partial["risk_difference_per100_force"].sel(force=force).to_numpy(), n_cases[force])
    add("all", "pooled", partial["risk_difference_per100"].to_numpy(), n_cases.sum())
    add("new_force", "new_force", partial["new_force_risk_difference_per100"].to_numpy(), 0)
    return pd.DataFrame(rows)


def effect_draws(draws: xr.Dataset, n_cara: pd.Series) -> pd.DataFrame:
    """Joint posterior draws of the risk difference per 100 for cost-benefit: pooled, per force, new force.

    Same draw index across scopes = same joint draw. `n_cara` (CARA cases per force) is indexed by force.
    """
    index = np.arange(draws.sizes["sample"])
    parts = [pd.DataFrame({"draw": index, "scope": "pooled", "force": None,
                           "rd_per100": draws["risk_difference_per100"].to_numpy(), "n_cara": int(n_cara.sum())})]
    for force in draws["force"].to_numpy():
        parts.append(pd.DataFrame({"draw": index, "scope": "force", "force": str(force),
                                   "rd_per100": draws["risk_difference_per100_force"].sel(force=force).to_numpy(),
                                   "n_cara": int(n_cara.get(force, 0))}))
    parts.append(pd.DataFrame({"draw": index, "scope": "new_force", "force": None,
                               "rd_per100": draws["new_force_risk_difference_per100"].to_numpy(), "n_cara": None}))
    table = pd.concat(parts, ignore_index=True)
    table["n_cara"] = table["n_cara"].astype("Int64")
    return table
