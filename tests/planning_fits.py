"""Posterior draws shaped like the model's (partial pooling and its no-pooling twin) and projected accruals, with
chosen force effects and precisions: inputs for the planning tests and the report's planning tables."""

import numpy as np
import pandas as pd
import xarray as xr

from cara_eval.planning.accrual import ARMS

RISK_UNTREATED = 0.3


def risk_difference_per100(log_hr, risk_untreated=RISK_UNTREATED):
    return 100 * (-np.expm1(np.log1p(-risk_untreated) * np.exp(log_hr)) - risk_untreated)


def synthetic_fits(forces, log_hr, posterior_sd, data_sd, draws=4000, seed=0):
    """Stacked draws: partial-pooling force effects N(log_hr, posterior_sd), no-pooling ones N(log_hr, data_sd)."""
    rng = np.random.default_rng(seed)
    log_hr, posterior_sd, data_sd = (np.broadcast_to(np.asarray(v, float), (len(forces),)) for v in
                                     (log_hr, posterior_sd, data_sd))
    theta = log_hr + posterior_sd * rng.standard_normal((draws, len(forces)))
    rd = risk_difference_per100(theta)
    coords = {"sample": np.arange(draws), "force": forces}
    per_force = ("sample", "force")
    partial = xr.Dataset({
        "force_log_hr": (per_force, theta),
        "log_hr_att_force": (per_force, theta),
        "risk_difference_per100_force": (per_force, rd),
        "risk_ratio_force": (per_force, 1 + rd / (100 * RISK_UNTREATED)),
        "risk_difference_per100": ("sample", rd.mean(axis=1)),
        "mu_log_hr": ("sample", theta.mean(axis=1)),
        "tau": ("sample", np.abs(0.1 + 0.05 * rng.standard_normal(draws))),
    }, coords=coords)
    no_pooling = xr.Dataset({"no_pooling_force_log_hr": (per_force, log_hr + data_sd * rng.standard_normal(
        (draws, len(forces))))}, coords=coords)
    return partial, no_pooling


def linear_accrual(forces, months, events_now, events_per_month, cases_now=500, cases_per_month=20):
    """Both arms of every force gain the same events and cases each month."""
    rows = [{"force": force, "arm": arm, "months_added": m, "n_cases": cases_now, "cases_added": cases_per_month * m,
             "events": events_now + events_per_month * m}
            for force in forces for arm in ARMS for m in months]
    return pd.DataFrame(rows)
