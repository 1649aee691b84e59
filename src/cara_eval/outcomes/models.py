"""Secondary outcomes on the primary model's terms: number of DA reoffences and crime harm (PyMC).

Both outcomes need dated reoffences, so forces that send only a 12-month flag (`outcome_source == flag`)
are left out (`excluded_forces`); every other term is the primary's (`cara_eval.model.effectiveness.force_structure`):
partially pooled force levels and CARA effects, shared calendar trend with zero-sum force slopes,
banded covariates, and the together shift that carries the relationship moderation.

reoffence_count: negative binomial with a piecewise-constant rate over follow-up (the primary's intervals):
a case's expected count is rate * E, with E = sum_j days_j * exp(interval_shape_j) its shape-weighted exposure
(so a case cut at day 100 brings 100 early days, not a year). Each case is Gamma-Poisson with Gamma shape
E / (365 * overdispersion), i.e. variance = mean * (1 + overdispersion * expected count per year). A sum of
such counts with a common rate is again negative binomial with the summed mean and summed shape, exactly,
whatever the cases' exposures (the usual NB2 form, shape alpha per case, is exact only when exposures match).
The cell sums are sufficient for the rate terms, not for the dispersion, which the cells learn from the
variation between cells.

harm: hurdle. Pr(any harm) is Pr(any DA reoffence), since every harm weight is positive: a censor-aware
piecewise-exponential hazard on first reoffences (the primary's hazard cells, exact with censoring).
Size when positive: lognormal, fitted on cases with the whole 365-day window observed (a shorter window
truncates the sum); the cell statistics n, sum log y, sum (log y)^2 give the exact likelihood.

Estimands are effects on the treated over 365 days, standardised over the CARA cases' own cells as in the
primary: expected reoffences (harm-weight days) per 100 CARA cases with vs without the CARA terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt

from cara_eval.model.cells import PATTERN_KEYS, Cells, CellSpec, banded, build_cells, interval_days
from cara_eval.model.effectiveness import (
    block_data,
    force_structure,
    interval_shape,
    model_coords,
    prior,
    sample_as_configured,
)

OUTCOMES = ("reoffence_count", "harm")
YEAR_DAYS = 365.0

# (estimand, scope, posterior variable, no-effect value for prob_reduction or None), per outcome.
ESTIMANDS = {
    "reoffence_count": [
        ("difference_per100", "pooled", "difference_per100", 0.0),
        ("rate_ratio", "pooled", "rate_ratio", 1.0),
        ("log_rate_ratio", "pooled", "log_rate_ratio", 0.0),
        ("count_cara_per100", "pooled", "with_cara_per100", None),
        ("count_without_cara_per100", "pooled", "without_cara_per100", None),
        ("mu_log_rate_ratio", "pooled", "mu_log_hr", 0.0),
        ("tau", "pooled", "tau", None),
        ("together_log_rr_shift", "pooled", "together_log_hr_shift", 0.0),
        ("overdispersion", "pooled", "overdispersion", None),
        ("difference_per100", "force", "difference_per100_force", 0.0),
        ("rate_ratio", "force", "rate_ratio_force", 1.0),
        ("log_rate_ratio", "force", "log_rate_ratio_force", 0.0),
        ("difference_per100", "relationship", "difference_per100_relationship", 0.0),
        ("rate_ratio", "relationship", "rate_ratio_relationship", 1.0),
        ("log_rate_ratio", "relationship", "log_rate_ratio_relationship", 0.0),
        ("difference_per100", "new_force", "new_force_difference_per100", 0.0),
        ("rate_ratio", "new_force", "new_force_rate_ratio", 1.0),
    ],
    "harm": [
        ("difference_per100", "pooled", "difference_per100", 0.0),
        ("ratio", "pooled", "ratio", 1.0),
        ("harm_cara_per100", "pooled", "with_cara_per100", None),
        ("harm_without_cara_per100", "pooled", "without_cara_per100", None),
        ("any_risk_difference_per100", "pooled", "any_risk_difference_per100", 0.0),
        ("size_ratio", "pooled", "size_ratio", 1.0),
        ("any_mu_log_hr", "pooled", "any_mu_log_hr", 0.0),
        ("size_mu_log_ratio", "pooled", "size_mu_log_hr", 0.0),
        ("any_tau", "pooled", "any_tau", None),
        ("size_tau", "pooled", "size_tau", None),
        ("size_sigma", "pooled", "size_sigma", None),
        ("difference_per100", "force", "difference_per100_force", 0.0),
        ("ratio", "force", "ratio_force", 1.0),
        ("difference_per100", "relationship", "difference_per100_relationship", 0.0),
        ("ratio", "relationship", "ratio_relationship", 1.0),
        ("difference_per100", "new_force", "new_force_difference_per100", 0.0),
        ("ratio", "new_force", "new_force_ratio", 1.0),
    ],
}
# Truth-file measures and the estimand rows that estimate them.
_SHARED = ["intercept_mean", "interval_log_ratio", "force_intercept_sd", "mu_log_hr", "tau",
           "together_log_hr_shift", "trend_sd", "trend_drift", "beta"]
HYPERPARAMETERS = {
    "reoffence_count": _SHARED + ["overdispersion"],
    "harm": [f"any_{name}" for name in _SHARED] + [f"size_{name}" for name in _SHARED if name != "interval_log_ratio"]
    + ["size_sigma"],
}


def estimand_variables(outcome: str) -> list[str]:
    return list(dict.fromkeys(variable for _, _, variable, _ in ESTIMANDS[outcome]))


def gated_variables(outcome: str) -> list[str]:
    """Variables the convergence gate judges: hyperparameters and estimands."""
    return HYPERPARAMETERS[outcome] + estimand_variables(outcome)


def excluded_forces(cases: pd.DataFrame) -> list[str]:
    """Forces that send only a 12-month flag: no counts or harm, so no part in the secondary outcomes."""
    flag = cases["outcome_source"] == "flag"
    events_forces = set(cases.loc[~flag, "force"].astype(str))
    return sorted(set(cases.loc[flag, "force"].astype(str)) - events_forces)


def observed_table(cases: pd.DataFrame, outcome: str) -> pd.DataFrame:
    """Per force and arm: cases, whether the force is in the outcome's fit, and the observed total (NaN for flags).

    Columns `force, arm, n_cases, included, observed_total` (reoffences, or harm-weight days, within follow-up).
    """
    excluded = set(excluded_forces(cases))
    table = (
        cases.assign(force=cases["force"].astype(str), value=cases[outcome].astype(float))
        .groupby(["force", "arm"], sort=True)
        .agg(n_cases=("value", "size"), observed_total=("value", lambda v: v.sum(min_count=1)))
        .reset_index()
    )
    table.insert(3, "included", ~table["force"].isin(excluded))
    return table


@dataclass
class OutcomeCells:
    """Cells of one secondary outcome: `base` (coordinates, hazard and ATT cells) plus the outcome's own."""

    outcome: str
    base: Cells
    counts: pd.DataFrame  # reoffence_count: pattern keys, n, count, days_<interval>
    sizes: pd.DataFrame  # harm: pattern keys, n, sum_log, sum_log_sq (positive harm, full window)
    excluded_forces: list[str]


def outcome_cells(cases: pd.DataFrame, spec: CellSpec, outcome: str, window: int = int(YEAR_DAYS),
                  aggregate: bool = True) -> OutcomeCells:
    """Aggregate the events-based forces' cases into the cells of `outcome` (see the module docstring).

    `aggregate=False` keeps every case its own cell: the row-level likelihood the cells must agree with.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}, not {outcome!r}")
    events = cases[cases["outcome_source"] == "events"]
    if events.empty:
        raise ValueError(f"{outcome} needs dated reoffences, but every force sends only a flag")
    base = build_cells(events, spec)
    events = events[events["force"].astype(str).isin(base.forces)]
    keys = banded(events, spec, base.terms.supplied_fields)
    counts = sizes = pd.DataFrame()
    if outcome == "reoffence_count":
        exposure = interval_days(events["followup_days"].to_numpy(dtype=float), spec)
        rows = keys.assign(n=1, count=events["reoffence_count"].to_numpy(dtype=float))
        for j, label in enumerate(spec.interval_labels):
            rows[f"days_{label}"] = exposure[:, j]
        at_risk = events["followup_days"].to_numpy() > 0  # no follow-up yet: nothing to count
        counts = _cells_of(rows.loc[at_risk], aggregate)
    else:
        harm = events["harm"].to_numpy(dtype=float)
        positive = (harm > 0) & (events["followup_days"].to_numpy() >= window)
        log_harm = np.log(harm[positive])
        rows = keys.loc[positive].assign(n=1, sum_log=log_harm, sum_log_sq=log_harm**2)
        sizes = _cells_of(rows, aggregate)
    return OutcomeCells(outcome, base, counts, sizes, excluded_forces(cases))


def _cells_of(rows: pd.DataFrame, aggregate: bool) -> pd.DataFrame:
    """Sum the statistics of cases sharing a pattern (or keep the rows as they are)."""
    if not aggregate:
        return rows.reset_index(drop=True)
    return rows.groupby(PATTERN_KEYS, observed=True, sort=True).sum().reset_index()


def lognormal_cell_loglik(n, sum_log, sum_log_sq, mu, sigma):
    """Exact lognormal log-likelihood of a cell's positive values from its sufficient statistics."""
    squares = sum_log_sq - 2 * mu * sum_log + n * mu**2
    return -sum_log - n * pt.log(sigma) - 0.5 * n * np.log(2 * np.pi) - squares / (2 * sigma**2)


def _shape_weighted_days(table: pd.DataFrame, spec: CellSpec, shape):
    days = table[[f"days_{label}" for label in spec.interval_labels]].to_numpy()
    return (pt.as_tensor(days) * pt.exp(shape)).sum(axis=1)


def _standardise(with_cara, without_cara, weight, cells: Cells, table: pd.DataFrame, ratio: str, prefix: str = "",
                 per_group: bool = True):
    """ATT per 100 CARA cases: pooled, and (per_group) by force and by relationship status at index (where the
    together shift is identified, cara_eval.model.terms)."""
    groups = [(None, "", None)]
    if per_group:
        groups.append((np.eye(len(cells.forces))[cells.force_index(table)], "_force", "force"))
    if per_group and cells.terms.together_shift:
        groups.append((np.eye(2)[table["together"].to_numpy().astype(int)], "_relationship", "relationship"))
    for membership, suffix, dims in groups:
        if membership is None:
            total = pt.sum(weight)
            mean_with, mean_without = pt.sum(weight * with_cara) / total, pt.sum(weight * without_cara) / total
        else:
            total = pt.maximum(pt.dot(weight, membership), 1.0)
            mean_with = pt.dot(weight * with_cara, membership) / total
            mean_without = pt.dot(weight * without_cara, membership) / total
        pm.Deterministic(f"{prefix}difference_per100{suffix}", 100 * (mean_with - mean_without), dims=dims)
        pm.Deterministic(f"{prefix}{ratio}{suffix}", mean_with / mean_without, dims=dims)
        if ratio == "rate_ratio" and not prefix:
            pm.Deterministic(f"log_rate_ratio{suffix}", pt.log(mean_with / mean_without), dims=dims)
        if membership is None and not prefix:
            pm.Deterministic("with_cara_per100", 100 * mean_with)
            pm.Deterministic("without_cara_per100", 100 * mean_without)


def build_count_model(cells: OutcomeCells, priors: dict, centred: dict | None = None) -> pm.Model:
    """Negative binomial model of reoffence counts (module docstring), partial pooling, with ATT estimands."""
    base, spec, table = cells.base, cells.base.spec, cells.counts
    coords = {**model_coords(base), "count_cell": np.arange(len(table))}
    with pm.Model(coords=coords) as model:
        shape = interval_shape("interval_log_ratio", priors, base)
        terms = force_structure(base, priors, centred)
        overdispersion = prior("overdispersion", priors)
        block = block_data("count", table, base, "count_cell")
        cara = pm.Data("count_cara", table["cara"].to_numpy().astype(float), dims="count_cell")
        exposure = _shape_weighted_days(table, spec, shape)
        log_mean = terms.log_rate_untreated(block) + cara * terms.cara_log_effect(block) + pt.log(exposure)
        pm.NegativeBinomial("count", mu=pt.exp(log_mean), alpha=exposure / (YEAR_DAYS * overdispersion),
                            observed=table["count"].to_numpy(), dims="count_cell")

        standard = base.standard
        std_block = block_data("standard", standard, base, "standard_cell")
        weight = pt.as_tensor(standard["n_cara"].to_numpy().astype(float))
        year_exposure = pt.dot(pt.as_tensor(spec.interval_lengths), pt.exp(shape))
        without_cara = pt.exp(terms.log_rate_untreated(std_block)) * year_exposure
        _standardise(without_cara * pt.exp(terms.cara_log_effect(std_block)), without_cara, weight, base, standard,
                     "rate_ratio")
        new_force_log_hr = terms.new_force_log_hr()
        _standardise(without_cara * pt.exp(terms.cara_log_effect(std_block, new_force_log_hr)), without_cara, weight,
                     base, standard, "rate_ratio", prefix="new_force_", per_group=False)
    return model


def build_harm_model(cells: OutcomeCells, priors: dict, centred: dict | None = None) -> pm.Model:
    """Hurdle model of harm: censor-aware Pr(any) x lognormal size when positive, with ATT estimands.

    `centred`: {"any": ..., "size": ...}, each as config `model.centred`, for the two parts' terms (their
    geometry differs: the size part sees only positive cases with a whole year observed).
    """
    centred = centred or {}
    base, spec = cells.base, cells.base.spec
    hazard, sizes = base.hazard, cells.sizes
    coords = {**model_coords(base), "hazard_cell": np.arange(len(hazard)), "size_cell": np.arange(len(sizes))}
    with pm.Model(coords=coords) as model:
        shape = interval_shape("any_interval_log_ratio", priors, base)
        any_terms = force_structure(base, priors, centred.get("any"), prefix="any_")
        size_terms = force_structure(base, priors, centred.get("size"), prefix="size_")
        sigma = prior("size_sigma", priors)

        any_block = block_data("hazard", hazard, base, "hazard_cell")
        cara = pm.Data("hazard_cara", hazard["cara"].to_numpy().astype(float), dims="hazard_cell")
        interval = pd.Categorical(hazard["interval"], categories=spec.interval_labels).codes.astype(np.int64)
        eta = (any_terms.log_rate_untreated(any_block) + cara * any_terms.cara_log_effect(any_block)
               + shape[interval] + np.log(hazard["exposure"].to_numpy()))
        pm.Poisson("first_events", mu=pt.exp(eta), observed=hazard["events"].to_numpy(), dims="hazard_cell")

        size_block = block_data("size", sizes, base, "size_cell")
        size_cara = pm.Data("size_cara", sizes["cara"].to_numpy().astype(float), dims="size_cell")
        size_mu = size_terms.log_rate_untreated(size_block) + size_cara * size_terms.cara_log_effect(size_block)
        pm.Potential("size_loglik", lognormal_cell_loglik(
            sizes["n"].to_numpy(dtype=float), sizes["sum_log"].to_numpy(), sizes["sum_log_sq"].to_numpy(), size_mu, sigma
        ).sum())

        standard = base.standard
        std_block = block_data("standard", standard, base, "standard_cell")
        weight = pt.as_tensor(standard["n_cara"].to_numpy().astype(float))
        year_hazard = (pt.exp(any_terms.log_rate_untreated(std_block))
                       * pt.dot(pt.as_tensor(spec.interval_lengths), pt.exp(shape)))
        size_without = size_terms.log_rate_untreated(std_block)

        def expected_harm(any_effect, size_effect):
            """Expected harm per case over the year: Pr(any) x lognormal mean of the size."""
            return -pt.expm1(-year_hazard * pt.exp(any_effect)) * pt.exp(size_without + size_effect + sigma**2 / 2)

        without_cara = expected_harm(0.0, 0.0)
        with_cara = expected_harm(any_terms.cara_log_effect(std_block), size_terms.cara_log_effect(std_block))
        _standardise(with_cara, without_cara, weight, base, standard, "ratio")
        total = pt.sum(weight)
        risk_with = pt.sum(weight * -pt.expm1(-year_hazard * pt.exp(any_terms.cara_log_effect(std_block)))) / total
        risk_without = pt.sum(weight * -pt.expm1(-year_hazard)) / total
        pm.Deterministic("any_risk_difference_per100", 100 * (risk_with - risk_without))
        size_effect = pt.exp(size_terms.cara_log_effect(std_block))
        pm.Deterministic("size_ratio", pt.sum(weight * pt.exp(size_without) * size_effect)
                         / pt.sum(weight * pt.exp(size_without)))

        any_new = any_terms.new_force_log_hr("new_force_any_z")
        size_new = size_terms.new_force_log_hr("new_force_size_z")
        new_with = expected_harm(any_terms.cara_log_effect(std_block, any_new),
                                 size_terms.cara_log_effect(std_block, size_new))
        _standardise(new_with, without_cara, weight, base, standard, "ratio", prefix="new_force_", per_group=False)
    return model


def outcome_priors(model_priors: dict, outcome_config: dict) -> dict:
    """The primary's priors with the secondary outcomes' own laid over them (size scale, dispersion)."""
    return {**model_priors, **outcome_config["priors"]}


def fit_outcome(cases: pd.DataFrame, outcome: str, model_config: dict, outcome_config: dict, seed: int,
                cores: int = 1):
    """Cells, model and posterior of one secondary outcome on one dataset (config `model` + `secondary_outcomes`)."""
    settings = {**model_config, **outcome_config.get("fit", {})}
    cells = outcome_cells(cases, CellSpec.from_config(model_config["cells"]), outcome)
    priors = outcome_priors(model_config["priors"], outcome_config)
    if outcome == "reoffence_count":
        model = build_count_model(cells, priors, settings["centred"])
    else:
        model = build_harm_model(cells, priors, outcome_config["harm_centred"])
    idata = sample_as_configured(model, settings, seed, cores)
    return cells, model, idata


