"""Bayesian hierarchical, censor-aware piecewise-exponential model of the first DA reoffence (PyMC).

Log hazard of a cell in force f, calendar year t, follow-up interval j, covariates x, arm cara:

    log h = force_intercept_f + interval_shape_j + trend_t + force_slope_f * (t - tbar_f) + (x - xbar)'beta
            + cara * (force_log_hr_f + together_log_hr_shift * together)

with force_intercept_f ~ N(intercept_mean, force_intercept_sd) and force_log_hr_f ~ N(mu_log_hr, tau)
(partial pooling), trend_t a drift plus a random walk over calendar years shared by all forces, and force_slope_f a
force-specific linear deviation from it under a tight prior (zero-sum over forces).

Geometry, measured on the default data (steps per NUTS draw 65 -> 22): every offset is centred where
the data put their weight, so the force intercept is the log hazard of the force's average case in its
average year and trades with nothing else. The design columns are centred on the case means (xbar);
interval_shape is zero on the length-weighted average over the year; trend_t is zero on the case-weighted
average year (not at one reference year, which tied every intercept to the steps in between); each force
slope pivots at its own mean year (tbar_f), and the slopes sum to zero so they cannot trade a common
slope with trend_t. Centred or non-centred force intercepts, effects and trend steps are config
(`model.centred`): centred where the data dominate the prior, non-centred where they do not (small
forces' CARA effects; everything on tiny test data). Event-level forces enter as Poisson counts with a
log-exposure offset, flag-only forces as Binomial counts with p = 1 - exp(-H(follow-up)) from the same
hazard, so every force informs the hierarchy.

What identifies the CARA effect in a force with only historical controls: within that force, arm and
calendar time are confounded, so its comparison is "before vs after its start". The shared trend_t is
learned from the years in which other forces had not yet started (staggered starts) and from
contemporaneous comparisons; the force's counterfactual path is that shared trend plus its intercept and
a small linear slope, which the tight force_slope prior keeps from absorbing the step at CARA start. The
force's effect is then the post-start departure from that path, shrunk towards mu_log_hr. The
assumption is parallel trends across forces up to a small linear deviation; a force-specific break at
CARA start other than CARA itself is indistinguishable from the effect.

Only the terms the data identify are built (cara_eval.model.terms decides, before sampling, and says why for
each one left out): no trend with one calendar period, no interval shape when flags with complete follow-up
give one risk, no covariate no force records or that never varies, no together shift without together and
separated CARA cases; with two forces tau and force_intercept_sd are fixed at their priors' scales, with one
force its level and effect are intercept_mean and mu_log_hr.

Estimands are the effect on the treated (ATT): each CARA cell's 12-month risk with and without the CARA
term, weighted by its CARA case count; they are Deterministics so every fit and prior check reports them.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from pytensor.graph.replace import clone_replace
from scipy.special import gammaln

from cara_eval.model.cells import Cells, CellSpec, build_cells

log = logging.getLogger(__name__)
RELATIONSHIPS = ["separated", "together"]
HYPERPARAMETERS = [
    "intercept_mean",
    "interval_log_ratio",
    "force_intercept_sd",
    "mu_log_hr",
    "tau",
    "together_log_hr_shift",
    "trend_sd",
    "trend_drift",
    "beta",
]


def prior(name: str, priors: dict, dims=None, fallback: str | None = None):
    """One prior from config: `normal` (mu, sigma), `half_normal` (sigma), `half_cauchy` (sigma) or
    `exponential` (sigma = its mean): the last two are the sensitivity analyses' alternatives for tau.
    `fallback`: the config key to use when `name` (a prefixed term of a second outcome) has no prior of its own."""
    spec = priors[name] if fallback is None else priors.get(name, priors[fallback])
    if spec["dist"] == "normal":
        return pm.Normal(name, mu=spec.get("mu", 0.0), sigma=spec["sigma"], dims=dims)
    if spec["dist"] == "half_normal":
        return pm.HalfNormal(name, sigma=spec["sigma"], dims=dims)
    if spec["dist"] == "half_cauchy":
        return pm.HalfCauchy(name, beta=spec["sigma"], dims=dims)
    if spec["dist"] == "exponential":
        return pm.Exponential(name, scale=spec["sigma"], dims=dims)
    raise ValueError(f"prior '{name}': unknown dist {spec['dist']!r}")


def varying(name: str, mean, sd, dims: str, centred: bool):
    """Force-varying term; centred when the data per force dominate the prior, else non-centred."""
    if centred:
        return pm.Normal(name, mu=mean, sigma=sd, dims=dims)
    offset = pm.Normal(f"{name}_z", 0.0, 1.0, dims=dims)
    return pm.Deterministic(name, mean + sd * offset, dims=dims)


def cell_block(table: pd.DataFrame, cells: Cells) -> dict:
    """What a cell's log rate reads (`ForceStructure`): force and period indices, centred design, together."""
    return {
        "force": cells.force_index(table),
        "period": cells.period_index(table),
        "x": cells.design(table) - cells.covariate_centre,
        "together": table["together"].to_numpy().astype(float),
    }


def block_data(prefix: str, table: pd.DataFrame, cells: Cells, dim: str) -> dict:
    """`cell_block` as pm.Data containers, so one graph serves every imputation."""
    dims = {"x": (dim, "covariate")}
    return {key: pm.Data(f"{prefix}_{key}", values, dims=dims.get(key, dim))
            for key, values in cell_block(table, cells).items()}


def _odds_ratio(risk1, risk0):
    return (risk1 / (1 - risk1)) / (risk0 / (1 - risk0))


POOLING = ("partial", "none", "complete")


def model_coords(cells: Cells) -> dict:
    """Named coordinates shared by every outcome's model."""
    spec = cells.spec
    return {
        "force": cells.forces,
        "period": cells.periods,
        "period_step": cells.periods[1:],
        "covariate": cells.covariates,
        "interval": spec.interval_labels,
        "later_interval": spec.interval_labels[1:],
        "relationship": RELATIONSHIPS,
        "standard_cell": np.arange(len(cells.standard)),
    }


@dataclass
class ForceStructure:
    """The terms every outcome model shares: force levels and CARA effects, shared trend, case mix.

    Terms the data cannot identify (cara_eval.model.terms) are constants here: zero, or for the between-force
    SDs with fewer than three forces the scale of their prior.
    """

    force_intercept: pt.TensorVariable
    force_log_hr: pt.TensorVariable
    mu_log_hr: pt.TensorVariable | None  # None without pooling
    tau: pt.TensorVariable | None
    together_shift: pt.TensorVariable
    walk: pt.TensorVariable  # the shared trend's random walk around its drift
    drift: pt.TensorVariable  # the trend's straight-line part, per year, pivoting at each force's mean year
    force_slope: pt.TensorVariable
    beta: pt.TensorVariable
    years: pt.TensorVariable
    force_mean_year: pt.TensorVariable

    def log_rate_untreated(self, block: dict):
        """Log rate of a cell without CARA (before the outcome's own baseline shape)."""
        # under JAX a row-wise sum of products cost 40% of each gradient
        return self.log_rate_of_average_case(block) + pt.dot(block["x"], self.beta)

    def log_rate_of_average_case(self, block: dict):
        """Log rate without CARA of a case at the covariate centre (xbar) in a block's force and period.

        Built as one force x period table and read with one index: every term read per cell instead (five
        gathers, and their gradients' scatter-adds) cost 30% of the national log density + gradient."""
        table = self.force_intercept[:, None] + self.walk[None, :] + (self.drift + self.force_slope)[:, None] * (
            self.years[None, :] - self.force_mean_year[:, None]
        )
        return table.ravel()[block["force"] * self.years.shape[0] + block["period"]]

    def cara_log_effect(self, block: dict, force_effect=None):
        """Log rate ratio of CARA in a cell: the force's effect (or a given one) plus the together shift; the
        forces' effects as one force x together table read with one index, as in `log_rate_of_average_case`."""
        if force_effect is not None:
            return force_effect + self.together_shift * block["together"]
        table = self.force_log_hr[:, None] + self.together_shift * pt.as_tensor([0.0, 1.0])[None, :]
        return table.ravel()[block["force"] * 2 + pt.cast(block["together"], "int64")]

    def new_force_log_hr(self, name: str = "new_force_z"):
        """A force the model has not seen: its effect drawn from N(mu_log_hr, tau)."""
        return self.mu_log_hr + self.tau * pm.Normal(name, 0.0, 1.0)


def fixed_scale(name: str, priors: dict, fallback: str):
    """A between-force or step SD the data cannot estimate, fixed at its configured prior's scale."""
    return pt.as_tensor(float(priors.get(name, priors[fallback])["sigma"]))


def _trend(cells: Cells, priors: dict, centred: bool, prefix: str):
    """Shared calendar trend: (random walk over periods, zero on the case-weighted average year; drift per year).

    With two or more steps the walk's steps sum to zero and a drift (a straight line) carries the net change. A
    steep steady fall then costs the steps' scale nothing, where a plain random walk shrank it towards flat and
    credited part of it to CARA (calibration, linear trends). The line pivots at each force's own mean year
    (`log_rate_untreated`), beside the force's slope, so it cannot trade with the force intercepts of forces
    observed in different years (pivoting at one common year made a funnel with force_intercept_sd). With one
    step (two periods) that step is the trend; with one period there is none. Deterministic `trend` is the whole
    shared path, zero on the case-weighted average year.
    """
    terms = cells.terms
    if not terms.trend:
        return pt.zeros(len(cells.periods)), pt.as_tensor(0.0)
    if terms.trend_sd:  # two or more steps: their scale estimated, the steps summing to zero around a drift
        trend_sd = prior(f"{prefix}trend_sd", priors, fallback="trend_sd")
        steps = pm.ZeroSumNormal
    else:  # one step: it is the trend, its scale fixed
        trend_sd = fixed_scale(f"{prefix}trend_sd", priors, "trend_sd")
        steps = pm.Normal
    if centred:
        trend_steps = steps(f"{prefix}trend_step", sigma=trend_sd, dims="period_step")
    else:
        trend_steps = trend_sd * steps(f"{prefix}trend_step_z", sigma=1.0, dims="period_step")
    level = pt.concatenate([pt.zeros(1), pt.cumsum(trend_steps)])
    weights = pt.as_tensor(cells.period_weights)
    walk = level - pt.dot(weights, level)
    drift = prior(f"{prefix}trend_drift", priors, fallback="trend_drift") if terms.trend_sd else pt.as_tensor(0.0)
    years = np.asarray(cells.periods, dtype=float)
    pm.Deterministic(f"{prefix}trend", walk + drift * (years - pt.dot(weights, years)), dims="period")
    return walk, drift


def force_structure(cells: Cells, priors: dict, centred: dict | None = None, pooling: str = "partial",
                    prefix: str = "") -> ForceStructure:
    """Declare the shared terms inside the current pm.Model (call under `with pm.Model(coords=...)`).

    pooling: `partial` (force intercepts and CARA effects from hierarchies), `none` (independent wide force
    intercepts and effects: the forest plot's twin), `complete` (one CARA effect for every force, tau = 0;
    intercepts still partially pooled). `centred` (config `model.centred`) chooses the parameterisation of
    the force intercepts, the force effects and the trend's random-walk steps: centred where the data
    dominate the prior, else non-centred. `prefix` names the variables of a second outcome's terms.
    Only the terms in `cells.terms` are declared: with two forces the between-force SDs are fixed at their
    priors' scales, with one force its level and effect are the overall ones (cara_eval.model.terms).
    """
    centred = {"intercepts": False, "effects": False, "trend": False, **(centred or {})}
    if pooling not in POOLING:
        raise ValueError(f"pooling must be one of {POOLING}, not {pooling!r}")
    terms = cells.terms
    n_forces = len(cells.forces)
    if cells.covariates:
        beta = prior(f"{prefix}beta", priors, fallback="beta", dims="covariate")
    else:
        beta = pt.zeros(0)
    if terms.together_shift:
        together_shift = prior(f"{prefix}together_log_hr_shift", priors, fallback="together_log_hr_shift")
    else:
        together_shift = pt.as_tensor(0.0)
    walk, drift = _trend(cells, priors, centred["trend"], prefix)
    if terms.force_slopes:
        # Deviations from the shared trend sum to zero, so they cannot trade a common slope with the trend.
        force_slope = pm.ZeroSumNormal(f"{prefix}force_slope", sigma=priors["force_slope"]["sigma"], dims="force")
    else:
        force_slope = pt.zeros(n_forces)
    mu = tau = None  # no pooling: no overall effect, no new force
    if pooling == "none":
        force_intercept = prior(f"{prefix}no_pooling_force_intercept", priors, fallback="no_pooling_force_intercept", dims="force")
        force_log_hr = prior(f"{prefix}no_pooling_force_log_hr", priors, fallback="no_pooling_force_log_hr", dims="force")
    else:
        estimated = terms.hierarchy == "estimated"
        if estimated:
            intercept_sd = prior(f"{prefix}force_intercept_sd", priors, fallback="force_intercept_sd")
        else:
            intercept_sd = fixed_scale(f"{prefix}force_intercept_sd", priors, "force_intercept_sd")
        intercept_mean = prior(f"{prefix}intercept_mean", priors, fallback="intercept_mean")
        if terms.hierarchy == "single_force":
            force_intercept = pm.Deterministic(f"{prefix}force_intercept", intercept_mean * pt.ones(1), dims="force")
        else:
            force_intercept = varying(f"{prefix}force_intercept", intercept_mean, intercept_sd, "force", centred["intercepts"])
        mu = prior(f"{prefix}mu_log_hr", priors, fallback="mu_log_hr")
        tau = pt.as_tensor(0.0) if pooling == "complete" else (
            prior(f"{prefix}tau", priors, fallback="tau") if estimated else fixed_scale(f"{prefix}tau", priors, "tau"))
        if pooling == "complete" or terms.hierarchy == "single_force":
            force_log_hr = pm.Deterministic(f"{prefix}force_log_hr", mu * pt.ones(n_forces), dims="force")
        else:
            force_log_hr = varying(f"{prefix}force_log_hr", mu, tau, "force", centred["effects"])
        pm.Deterministic(f"{prefix}hazard_ratio", pt.exp(mu))
    return ForceStructure(
        force_intercept=force_intercept,
        force_log_hr=force_log_hr,
        mu_log_hr=mu,
        tau=tau,
        together_shift=together_shift,
        walk=walk,
        drift=drift,
        force_slope=force_slope,
        beta=beta,
        years=pt.as_tensor(np.asarray(cells.periods, dtype=float)),
        force_mean_year=pt.as_tensor(cells.force_mean_period),
    )


def interval_shape(name: str, priors: dict, cells: Cells):
    """Log hazard of each follow-up interval relative to the year, zero on the length-weighted average (so
    the force intercepts do not trade with it); `name` falls back to the prior of `interval_log_ratio`.
    Zero everywhere (constant hazard over follow-up) when the data cannot tell the intervals apart."""
    spec = cells.spec
    if not cells.terms.interval_shape:
        return pt.zeros(len(spec.interval_labels))
    log_ratio = prior(name, priors, dims="later_interval", fallback="interval_log_ratio")
    log_ratios = pt.concatenate([pt.zeros(1), log_ratio])
    weights = pt.as_tensor(spec.interval_lengths / spec.interval_lengths.sum())
    return log_ratios - pt.dot(weights, log_ratios)


# How the cells enter the log density (config `model.likelihood`): `cells` one Poisson or Binomial term per cell;
# `grouped` the same log density through sufficient statistics (`grouped_likelihood`).
LIKELIHOODS = ("cells", "grouped")
GROUP_KEYS = ["force", "period", "cara", "together", "interval"]


def exposure_rows(cells: Cells) -> pd.DataFrame:
    """Every Poisson term of the log density as (group keys, covariates, events, exposure) rows: the event-level
    cells, plus each flag cell's cases without a flag, whose log(1 - p) = -H is a Poisson term with no events and
    exposure (n - k) x days in each interval."""
    hazard, flags = cells.hazard, cells.binomial
    survivors = [flags.assign(interval=label, events=0, exposure=(flags["n"] - flags["k"]) * flags[f"days_{label}"])
                 for label in cells.spec.interval_labels]
    rows = pd.concat([hazard, *survivors], ignore_index=True)[hazard.columns]
    return rows[rows["exposure"] > 0].reset_index(drop=True)


def grouped_likelihood(cells: Cells, terms: ForceStructure, shape) -> None:
    """The cells' log likelihood through sufficient statistics (Potentials `events_grouped`, `flags_with_events`).

    A flag cell's binomial log likelihood k log p + (n - k) log(1 - p) + log C(n, k), with log(1 - p) = -H, is
    Poisson terms without events (`exposure_rows`), which join the event-level cells' sum (`grouped_poisson`), plus
    k log(1 - exp(-H)) on the cells with a flag (`flags_with_events`), the only per-cell terms left. There is no
    per-cell variable to predict or score: PSIS-LOO and the predictive checks use the per-cell model of the same
    parameters.
    """
    table = exposure_rows(cells)
    if len(table):
        grouped_poisson(table, cells, terms, shape)
    if len(cells.binomial):
        flags_with_events(cells, terms, shape)


def grouped_poisson(table: pd.DataFrame, cells: Cells, terms: ForceStructure, shape) -> None:
    """Poisson terms' log likelihood as one Potential `events_grouped`, through sufficient statistics.

    A term's log rate is A_g + x'beta + log exposure, where A_g depends only on its group g (force, period, arm,
    together, interval) and x on its covariate pattern p. So sum over terms of y eta - exp(eta) - log y! is
    sum_g Y_g A_g + beta' sum_c y_c x_c - sum_g exp(A_g) (M exp(X beta))_g + a constant, with M[g, p] the exposure of
    group g's terms in pattern p: the same log density and gradient from groups and patterns (hundreds, a few
    thousand nationally) instead of cells (thousands, about 100,000 nationally).
    """
    spec = cells.spec
    interval = pd.Categorical(table["interval"], categories=spec.interval_labels).codes.astype(np.int64)
    key = pd.DataFrame({"force": cells.force_index(table), "period": cells.period_index(table),
                        "cara": table["cara"].to_numpy().astype(np.int64),
                        "together": table["together"].to_numpy().astype(np.int64), "interval": interval})
    group = key.groupby(GROUP_KEYS, sort=True).ngroup().to_numpy()
    groups = key.drop_duplicates().sort_values(GROUP_KEYS).reset_index(drop=True)
    x = cells.design(table) - cells.covariate_centre
    patterns, pattern = np.unique(x, axis=0, return_inverse=True)
    exposure = table["exposure"].to_numpy()
    events = table["events"].to_numpy().astype(float)
    pattern_exposure = np.zeros((len(groups), len(patterns)))
    np.add.at(pattern_exposure, (group, pattern.ravel()), exposure)
    block = {"force": groups["force"].to_numpy(), "period": groups["period"].to_numpy(),
             "together": groups["together"].to_numpy().astype(float)}
    group_log_rate = (terms.log_rate_of_average_case(block)
                      + groups["cara"].to_numpy() * terms.cara_log_effect(block)
                      + shape[groups["interval"].to_numpy()])
    expected = pt.exp(group_log_rate) * pt.dot(pattern_exposure, pt.exp(pt.dot(patterns, terms.beta)))
    constant = float(np.sum(events * np.log(exposure)) - np.sum(gammaln(events + 1)))
    pm.Potential("events_grouped", pt.dot(np.bincount(group, weights=events, minlength=len(groups)), group_log_rate)
                 + pt.dot(x.T @ events, terms.beta) - pt.sum(expected) + constant)


def flags_with_events(cells: Cells, terms: ForceStructure, shape) -> None:
    """What `exposure_rows` leaves of the flag cells' binomial log likelihood: k log(1 - exp(-H)) on each cell with
    a flag, H its cumulative hazard over its follow-up, plus every flag cell's log C(n, k); one Potential."""
    flags = cells.binomial
    n, k = flags["n"].to_numpy(), flags["k"].to_numpy()
    constant = float(np.sum(gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)))
    flagged = flags[k > 0]
    block = cell_block(flagged, cells)
    days = flagged[[f"days_{label}" for label in cells.spec.interval_labels]].to_numpy()
    log_rate = terms.log_rate_untreated(block) + flagged["cara"].to_numpy() * terms.cara_log_effect(block)
    cumulative_hazard = pt.exp(log_rate) * pt.dot(days, pt.exp(shape))
    pm.Potential("flags_with_events",
                 pt.dot(flagged["k"].to_numpy().astype(float), pt.log1mexp(-cumulative_hazard)) + constant)


def build_model(cells: Cells, priors: dict, centred: dict | None = None, pooling: str = "partial",
                likelihood: str = "cells") -> pm.Model:
    """PyMC model of tidy cells (any_reoffence): see the module docstring and `force_structure`. `likelihood`
    (LIKELIHOODS): the Poisson cells one by one, which PSIS-LOO and the predictive checks need, or grouped, the same
    log density at a fraction of the cost, for sampling."""
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}, not {likelihood!r}")
    spec = cells.spec
    coords = model_coords(cells)
    if len(cells.hazard) and likelihood == "cells":
        coords["hazard_cell"] = np.arange(len(cells.hazard))
    if len(cells.binomial) and likelihood == "cells":
        coords["binomial_cell"] = np.arange(len(cells.binomial))

    with pm.Model(coords=coords) as model:
        terms = force_structure(cells, priors, centred, pooling)
        shape = interval_shape("interval_log_ratio", priors, cells)
        baseline_hazard = pt.exp(shape)
        log_hazard_untreated = terms.log_rate_untreated

        if likelihood == "grouped":
            grouped_likelihood(cells, terms, shape)
        elif len(cells.hazard):
            table = cells.hazard
            block = block_data("hazard", table, cells, "hazard_cell")
            cara = pm.Data("hazard_cara", table["cara"].to_numpy().astype(float), dims="hazard_cell")
            interval = pm.Data(
                "hazard_interval",
                pd.Categorical(table["interval"], categories=spec.interval_labels).codes.astype(np.int64),
                dims="hazard_cell",
            )
            log_exposure = pm.Data("hazard_log_exposure", np.log(table["exposure"].to_numpy()), dims="hazard_cell")
            eta = (
                log_hazard_untreated(block)
                + cara * terms.cara_log_effect(block)
                + shape[interval]
                + log_exposure
            )
            pm.Poisson("events", mu=pt.exp(eta), observed=table["events"].to_numpy(), dims="hazard_cell")

        if len(cells.binomial) and likelihood == "cells":
            table = cells.binomial
            block = block_data("binomial", table, cells, "binomial_cell")
            cara = pm.Data("binomial_cara", table["cara"].to_numpy().astype(float), dims="binomial_cell")
            days = pm.Data(
                "binomial_days",
                table[[f"days_{label}" for label in spec.interval_labels]].to_numpy(),
                dims=("binomial_cell", "interval"),
            )
            n = pm.Data("binomial_n", table["n"].to_numpy(), dims="binomial_cell")
            eta = log_hazard_untreated(block) + cara * terms.cara_log_effect(block)
            cumulative_hazard = pt.exp(eta) * pt.dot(days, baseline_hazard)
            # logit(1 - exp(-H)) = log(1 - exp(-H)) + H: finite for any H, so no start point gives -inf.
            pm.Binomial(
                "flag_events",
                n=n,
                logit_p=pt.log1mexp(-cumulative_hazard) + cumulative_hazard,
                observed=table["k"].to_numpy(),
                dims="binomial_cell",
            )

        # ATT standardisation over the CARA cases' own cells.
        table = cells.standard
        block = block_data("standard", table, cells, "standard_cell")
        weight = table["n_cara"].to_numpy().astype(float)
        by_force = (cells.force_index(table), len(cells.forces))
        by_relationship = (table["together"].to_numpy().astype(np.int64), 2)
        untreated_rate = pt.exp(log_hazard_untreated(block))
        year_hazard = untreated_rate * pt.dot(pt.as_tensor(spec.interval_lengths), baseline_hazard)
        risk_without = -pt.expm1(-year_hazard)

        groupings = [(None, "", None), (by_force, "_force", "force")]
        if cells.terms.together_shift:  # else one relationship group has no CARA cases (or none is recorded)
            groupings.append((by_relationship, "_relationship", "relationship"))

        def weighted_mean(values, groups):
            """ATT average of a per-cell quantity over all CARA cases (groups None) or per group (groups: each
            cell's group and the number of groups; a group without CARA cases averages to 0), as a product with a
            constant cells x groups matrix of each cell's share of its group's CARA cases: over a chunk of draws
            one matrix product. Nationally (21,427 ATT cells, 4,000 draws) the Deterministics took 6.0 s against
            7.2 s summed by group index."""
            if groups is None:
                return pt.dot(values, weight / weight.sum())
            group, n_groups = groups
            shares = np.zeros((len(weight), n_groups))
            shares[np.arange(len(weight)), group] = weight
            return pt.dot(values, shares / np.maximum(shares.sum(axis=0), 1.0))

        def restricted_mean_days(log_hr):
            """Expected reoffence-free days within the window of each ATT cell with its log hazard ratio `log_hr`
            (0: without CARA), from piecewise-constant hazards, interval by interval: survival at an interval's start
            is the product of the earlier intervals' 1 - q, so one expm1 per interval and cell is the only
            transcendental. Nationally this took 0.043 s per 50 draws, against 0.13 s as exp and expm1 of a cumulative
            sum over a cells x intervals matrix (the same values to 1e-13)."""
            rate = untreated_rate * pt.exp(log_hr)
            survival, days = 1.0, 0.0
            for j, length in enumerate(spec.interval_lengths):
                hazard = rate * baseline_hazard[j]
                event_probability = -pt.expm1(-hazard * length)
                days = days + survival * event_probability / hazard
                survival = survival * (1.0 - event_probability)
            return days

        def standardise(prefix, log_hr, per_force):
            """Risk difference, ratio and odds ratio of CARA vs no CARA, pooled and by group."""
            risk_with = -pt.expm1(-year_hazard * pt.exp(log_hr))
            for groups, group_suffix, group_dims in groupings:
                if groups is by_force and not per_force:
                    continue
                r1, r0 = weighted_mean(risk_with, groups), weighted_mean(risk_without, groups)
                name = f"{prefix}{{}}{group_suffix}"
                pm.Deterministic(name.format("risk_difference_per100"), 100 * (r1 - r0), dims=group_dims)
                pm.Deterministic(name.format("risk_ratio"), r1 / r0, dims=group_dims)
                pm.Deterministic(name.format("odds_ratio"), _odds_ratio(r1, r0), dims=group_dims)
                if groups is None and per_force:
                    pm.Deterministic("risk_cara", r1)
                    pm.Deterministic("risk_without_cara", r0)

        def time_to_first(log_hr):
            """Time-to-first-reoffence estimands of the same fit: the CARA cases' average log hazard ratio and
            the change in reoffence-free days within the window (restricted mean survival time)."""
            days_gained = restricted_mean_days(log_hr) - restricted_mean_days(0.0)
            for groups, group_suffix, group_dims in groupings:
                if groups is not by_relationship:
                    average = pm.Deterministic(f"log_hr_att{group_suffix}", weighted_mean(log_hr, groups), dims=group_dims)
                    pm.Deterministic(f"hazard_ratio_att{group_suffix}", pt.exp(average), dims=group_dims)
                pm.Deterministic(f"rmst_difference_days{group_suffix}", weighted_mean(days_gained, groups), dims=group_dims)

        standardise("", terms.cara_log_effect(block), per_force=True)
        time_to_first(terms.cara_log_effect(block))
        if pooling == "partial":
            new_force_log_hr = pm.Deterministic("new_force_log_hr", terms.new_force_log_hr())
            standardise("new_force_", terms.cara_log_effect(block, new_force_log_hr), per_force=False)
    return model


# Sampler choices (config `sampler`): PyMC's own NUTS, or nutpie's NUTS on a logp compiled by numba or by JAX.
# Default data, one core, 4 x 1000 draws: numba samples in 16 s against JAX's 37 s (JAX's chains wait on Python
# between steps) and compiles in 32 s from an empty compile cache, 11.5 s on new data with the cache of an earlier
# fit (cara_eval.common.compile_cache), against JAX's 3 s (README, Benchmarks).
NUTS_SAMPLERS = {
    "pymc": ("pymc", {}),
    "nutpie": ("nutpie", {}),
    "nutpie_jax": ("nutpie", {"backend": "jax", "gradient_backend": "jax"}),
}


def target_accept_ladder(target_accept: float | list[float]) -> list[float]:
    """Config `target_accept` as the values to sample at in turn: a number, or a list of increasing numbers."""
    return [target_accept] if isinstance(target_accept, int | float) else list(target_accept)


def sampler_problem(sampler: str, mass_matrix: str, target_accept: float | list[float]) -> str | None:
    """Why sampler settings cannot go together, or None: PyMC's NUTS has only a diagonal mass matrix, and each
    target_accept tried after divergences must be higher than the one before. Checked by `sample` and, before any
    job runs, by the workflow's config check."""
    if mass_matrix == "low_rank" and NUTS_SAMPLERS[sampler][0] != "nutpie":
        return f"mass_matrix low_rank needs a nutpie sampler, not {sampler!r}"
    ladder = target_accept_ladder(target_accept)
    if any(later <= earlier for earlier, later in zip(ladder, ladder[1:])):
        return f"target_accept {ladder} must increase: each value is tried after divergences at the one before"
    return None


def sample(
    model: pm.Model, sampler: str, chains: int, draws: int, tune: int, seed: int, cores: int = 1,
    target_accept: float | list[float] = 0.8, mass_matrix: str = "diagonal",
):
    """NUTS as configured (`NUTS_SAMPLERS`); returns InferenceData with sample_stats.diverging and, in
    sample_stats.attrs, the target_accept it was sampled at. The sampler keeps the free variables only; the
    Deterministics join the posterior afterwards (`deterministics_of_draws`).

    A list of target_accept values is tried in turn, the same seed each time, while the fit has divergences: a
    higher target_accept takes smaller steps, which removes divergences at the cost of more steps in every fit
    (nationally 0.97 took 274,848 steps where 0.9 took 220,768), so it is paid only by the fits that need it.

    mass_matrix "low_rank" is nutpie's diagonal plus low-rank correction, learnt from draws and gradients: with
    300 tuning draws a diagonal one sometimes leaves a chain at tree depth 10 (README, Benchmarks)."""
    nuts_sampler, compile_options = NUTS_SAMPLERS[sampler]
    if problem := sampler_problem(sampler, mass_matrix, target_accept):
        raise ValueError(problem)
    # nutpie would otherwise run a thread per chain on every core of the node, not the job's allocation; it keeps
    # warm-up draws by default, which nothing reads (the same kept draws without them, a third less to store).
    nuts_options = (
        {**compile_options, "cores": cores, "low_rank_modified_mass_matrix": mass_matrix == "low_rank",
         "save_warmup": False}
        if nuts_sampler == "nutpie" else {}
    )
    ladder = target_accept_ladder(target_accept)
    for attempt, accept in enumerate(ladder, start=1):
        with model:
            idata = pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                cores=cores,
                random_seed=seed,
                nuts_sampler=nuts_sampler,
                nuts_sampler_kwargs=nuts_options,
                target_accept=accept,
                progressbar=False,
                compute_convergence_checks=False,
                var_names=[variable.name for variable in model.free_RVs],
            )
        divergences = int(idata.sample_stats["diverging"].sum())
        if not divergences or attempt == len(ladder):
            break
        log.warning("%d divergences at target_accept %s: sampled again at %s", divergences, accept, ladder[attempt])
    idata.sample_stats.attrs["target_accept"] = accept
    idata.posterior = xr.merge([idata.posterior, deterministics_of_draws(model, idata.posterior)],
                               combine_attrs="override")
    return idata


def values_at_draws(model: pm.Model, outputs: list, draws: dict[str, np.ndarray], chunk: int = 50) -> list[np.ndarray]:
    """Tensors of the model's free variables (`outputs`) at many draws (`draws`: each free variable's values, draws
    first), in one JAX function vectorised over chunks of draws; one array per output, draws first.

    Chunks of 50 draws keep the memory nationally (21,427 ATT cells) to about 0.6 GB for the Deterministics (250:
    1.7 GB), at the same speed."""
    import jax  # noqa: PLC0415 (JAX loads only for fits)
    from pymc.sampling.jax import get_jaxified_graph  # noqa: PLC0415

    inputs = {variable: variable.type(name=variable.name) for variable in model.free_RVs}  # RV -> its draws
    graph = clone_replace(outputs, replace=inputs)
    evaluate = jax.jit(jax.vmap(get_jaxified_graph(inputs=list(inputs.values()), outputs=graph)))
    values = [draws[variable.name] for variable in model.free_RVs]
    chunks = [evaluate(*(value[start:start + chunk] for value in values)) for start in range(0, len(values[0]), chunk)]
    return [np.concatenate([np.asarray(computed[index]) for computed in chunks]) for index in range(len(outputs))]


def free_variable_draws(model: pm.Model, posterior: xr.Dataset) -> dict[str, np.ndarray]:
    """Each free variable's draws in a posterior (dims chain and draw, in any order), chains and draws as one leading
    axis, chain by chain: what `values_at_draws` takes."""
    draws = {}
    for variable in model.free_RVs:
        values = posterior[variable.name].transpose("chain", "draw", ...).to_numpy()
        draws[variable.name] = values.reshape(-1, *values.shape[2:])
    return draws


def deterministics_of_draws(model: pm.Model, posterior: xr.Dataset) -> xr.Dataset:
    """The model's Deterministics for every draw of a posterior, computed after sampling (`values_at_draws`).

    Why not during sampling: the sampler evaluates them draw by draw in its chain threads; nationally (21,427 ATT
    cells) that cost 4.6 ms of JAX per draw, over a tenth of the fit, and numba's evaluation about 20 ms."""
    from pymc.backends.arviz import coords_and_dims_for_inferencedata  # noqa: PLC0415

    outputs = list(model.deterministics)
    n_chains, n_draws = posterior.sizes["chain"], posterior.sizes["draw"]
    coords, dims = coords_and_dims_for_inferencedata(model)
    variables = {}
    for variable, values in zip(outputs, values_at_draws(model, outputs, free_variable_draws(model, posterior)),
                                strict=True):
        names = dims.get(variable.name, [f"{variable.name}_dim_{axis}" for axis in range(variable.ndim)])
        variables[variable.name] = (("chain", "draw", *names), values.reshape(n_chains, n_draws, *values.shape[1:]))
    used = {name for names, _ in variables.values() for name in names}
    return xr.Dataset(variables, coords={"chain": posterior["chain"], "draw": posterior["draw"],
                                         **{name: values for name, values in coords.items() if name in used}})


def sample_as_configured(model: pm.Model, settings: dict, seed: int, cores: int = 1):
    """`sample` with the sampler settings of a config section (`model`, or a section's `fit` laid over it)."""
    return sample(model, settings["sampler"], settings["chains"], settings["draws"], settings["tune"], seed, cores,
                  settings["target_accept"], settings["mass_matrix"])


def derive_seed(seed: int, *names: str) -> int:
    """Seed of one fit from the master seed and its names (outcome, dataset): stable across runs."""
    return int(np.random.SeedSequence([seed, *(zlib.crc32(n.encode()) for n in names)]).generate_state(1)[0])


def fit_cases(cases: pd.DataFrame, model_config: dict, seed: int, cores: int = 1, pooling: str = "partial"):
    """Cells, per-cell model and posterior of one dataset as configured (config section `model`). The posterior is
    sampled with the configured likelihood; the model returned has the per-cell one, which scores and predicts
    every cell (PSIS-LOO, posterior predictive checks) with the same parameters."""
    cells = build_cells(cases, CellSpec.from_config(model_config["cells"]))
    for row in cells.terms.dropped().itertuples():
        log.info("model term left out: %s (%s)", row.term, row.reason)
    sampled = build_model(cells, model_config["priors"], model_config["centred"], pooling, model_config["likelihood"])
    idata = sample_as_configured(sampled, model_config, seed, cores)
    if model_config["likelihood"] == "cells":
        return cells, sampled, idata
    return cells, build_model(cells, model_config["priors"], model_config["centred"], pooling), idata
