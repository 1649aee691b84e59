"""Coarsen canonical cases into cells with sufficient statistics, so model cost grows with cells, not cases.

Two likelihood blocks share one piecewise-exponential hazard:

* ``hazard`` cells (forces with dated reoffences, ``outcome_source == events``): one row per
  (force, period, arm, covariate pattern, interval) with ``events`` (first reoffences in the interval) and
  ``exposure`` (days at risk in the interval, up to the first event or censoring). Poisson with a
  log-exposure offset is exact for a piecewise-constant hazard.
* ``binomial`` cells (forces that send only a 12-month flag): one row per (force, period, arm, covariate
  pattern, follow-up length) with ``n`` cases and ``k`` reoffenders; ``days_<interval>`` gives the days each
  interval is observed, so P(reoffence) = 1 - exp(-sum_j h_j * days_j).

``standard`` holds the CARA case counts per (force, period, covariate pattern): the ATT weights.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cara_eval.model.terms import Terms, identify_terms

PATTERN_KEYS = ["force", "period", "cara", "together", "age_band", "prior_band", "sex", "dash_risk"]


@dataclass(frozen=True)
class CellSpec:
    """Declared coarsening: follow-up intervals and covariate bands (from config ``model.cells``)."""

    interval_breaks: tuple[int, ...] = (0, 90, 365)
    age_breaks: tuple[int, ...] = (18, 30, 45)
    prior_da_cap: int = 2

    @classmethod
    def from_config(cls, cells_config: dict) -> CellSpec:
        return cls(
            interval_breaks=tuple(cells_config["interval_breaks"]),
            age_breaks=tuple(cells_config["age_breaks"]),
            prior_da_cap=int(cells_config["prior_da_cap"]),
        )

    @property
    def interval_labels(self) -> list[str]:
        b = self.interval_breaks
        return [f"{b[j]}-{b[j + 1]}" for j in range(len(b) - 1)]

    @property
    def interval_lengths(self) -> np.ndarray:
        return np.diff(np.asarray(self.interval_breaks, dtype=float))

    @property
    def age_labels(self) -> list[str]:
        b = self.age_breaks
        return [f"age_{b[j]}_{b[j + 1] - 1}" for j in range(len(b) - 1)] + [f"age_{b[-1]}_plus"]

    @property
    def prior_labels(self) -> list[str]:
        return [f"prior_{k}" for k in range(self.prior_da_cap)] + [f"prior_{self.prior_da_cap}_plus"]

    @property
    def covariates(self) -> list[str]:
        """Every possible design-matrix column; references: each factor's first band, `male`, DASH `standard`."""
        return self.age_labels[1:] + self.prior_labels[1:] + ["female", "together", "dash_medium"]

    @property
    def covariate_fields(self) -> list[str]:
        """The case field each design column comes from (same order as `covariates`)."""
        return (["age"] * (len(self.age_labels) - 1) + ["prior_da_incidents"] * (len(self.prior_labels) - 1)
                + ["sex", "together_at_index", "dash_risk"])

    def age_bands(self, age: np.ndarray) -> np.ndarray:
        return np.asarray(self.age_labels)[np.searchsorted(np.asarray(self.age_breaks[1:]), age, side="right")]

    def prior_bands(self, prior_da_incidents: np.ndarray) -> np.ndarray:
        return np.asarray(self.prior_labels)[np.minimum(prior_da_incidents.astype(int), self.prior_da_cap)]

    def case_design(self, cases: pd.DataFrame) -> dict[str, np.ndarray]:
        """Every design column (0/1) of the cases by name; a missing value or field falls in the reference level."""
        cases = cases.assign(**{f: value for f, value in PLACEHOLDERS.items() if f not in cases.columns})
        cases = cases[list(PLACEHOLDERS)].fillna(PLACEHOLDERS)
        keys = pd.DataFrame({
            "age_band": self.age_bands(cases["age"].to_numpy()),
            "prior_band": self.prior_bands(cases["prior_da_incidents"].to_numpy()),
            "sex": cases["sex"].to_numpy(),
            "together": cases["together_at_index"].to_numpy(dtype=bool),
            "dash_risk": cases["dash_risk"].to_numpy(),
        })
        return dict(zip(self.covariates, _design(keys, self, self.covariates).T))


@dataclass
class Cells:
    """Tidy cells of one dataset plus the coordinates the model is indexed by."""

    hazard: pd.DataFrame
    binomial: pd.DataFrame
    standard: pd.DataFrame
    forces: list[str]
    periods: list[int]
    spec: CellSpec
    terms: Terms  # what the model builds (cara_eval.model.terms)
    case_counts: pd.DataFrame  # force, arm, n_cases, observed_events: the posterior predictive check's data
    case_counts_by_period: pd.Series
    covariate_centre: np.ndarray  # case-level mean of each design column: centred columns decorrelate intercepts
    force_mean_period: np.ndarray  # each force's mean calendar year: its slope pivots there, apart from its level

    @property
    def covariates(self) -> list[str]:
        return self.terms.covariates

    def design(self, table: pd.DataFrame) -> np.ndarray:
        """Covariate matrix (rows x included covariates) of a cell table."""
        return _design(table, self.spec, self.covariates)

    @property
    def period_weights(self) -> np.ndarray:
        """Share of cases in each calendar year: the trend is zero on this average, where it is best identified."""
        counts = self.case_counts_by_period.reindex(self.periods, fill_value=0).to_numpy(dtype=float)
        return counts / counts.sum()

    def force_index(self, table: pd.DataFrame) -> np.ndarray:
        return pd.Categorical(table["force"], categories=self.forces).codes.astype(np.int64)

    def period_index(self, table: pd.DataFrame) -> np.ndarray:
        return (table["period"].to_numpy() - self.periods[0]).astype(np.int64)


def _design(table: pd.DataFrame, spec: CellSpec, covariates: list[str]) -> np.ndarray:
    """Dummy columns of the banded covariates named in `covariates` (references as in `CellSpec.covariates`)."""
    values = {label: table["age_band"].to_numpy() == label for label in spec.age_labels[1:]}
    values |= {label: table["prior_band"].to_numpy() == label for label in spec.prior_labels[1:]}
    values["female"] = table["sex"].to_numpy() == "female"
    values["together"] = table["together"].to_numpy().astype(bool)
    values["dash_medium"] = table["dash_risk"].to_numpy() == "medium"
    if not len(table) or not covariates:
        return np.zeros((len(table), len(covariates)))
    return np.column_stack([values[name] for name in covariates]).astype(float)


# Reference value of a covariate field no force records: constant, so it adds nothing and its column is left out.
PLACEHOLDERS = {"age": 18.0, "prior_da_incidents": 0.0, "sex": "male", "together_at_index": False, "dash_risk": "standard"}


def banded(cases: pd.DataFrame, spec: CellSpec, supplied_fields) -> pd.DataFrame:
    """Case-level pattern keys; raises when a supplied covariate is still missing (impute first).

    Fields not in `supplied_fields` (recorded by no force) take a reference placeholder.
    """
    cases = cases.assign(**{f: value for f, value in PLACEHOLDERS.items() if f not in supplied_fields})
    missing = {c: int(cases[c].isna().sum()) for c in PLACEHOLDERS if cases[c].isna().any()}
    if missing:
        raise ValueError(f"covariates must be filled before coarsening; missing values: {missing}")
    return pd.DataFrame(
        {
            "force": cases["force"].astype(str).to_numpy(),
            "period": cases["period"].astype(int).to_numpy(),
            "cara": (cases["arm"] == "cara").astype(int).to_numpy(),
            "together": cases["together_at_index"].astype(bool).to_numpy(),
            "age_band": spec.age_bands(cases["age"].to_numpy()),
            "prior_band": spec.prior_bands(cases["prior_da_incidents"].to_numpy()),
            "sex": cases["sex"].astype(str).to_numpy(),
            "dash_risk": cases["dash_risk"].astype(str).to_numpy(),
        },
        index=cases.index,
    )


def time_at_risk(cases: pd.DataFrame, outcome: str = "any_reoffence") -> tuple[np.ndarray, np.ndarray]:
    """Days at risk (to first event or censoring, capped at follow-up) and whether it ended in an event.

    A same-day reoffence (day 0) counts half a day at risk so that the log-exposure offset stays finite.
    """
    event = cases["event_observed"].astype(bool).to_numpy()
    followup = cases["followup_days"].to_numpy(dtype=float)
    first = cases["days_to_first"].to_numpy(dtype=float)
    days = np.where(event, np.minimum(first, followup), followup)
    return np.maximum(days, 0.5), event


def interval_days(days: np.ndarray, spec: CellSpec) -> np.ndarray:
    """Days spent in each follow-up interval (cases x intervals) given total days at risk."""
    starts = np.asarray(spec.interval_breaks[:-1], dtype=float)
    return np.clip(days[:, None] - starts[None, :], 0.0, spec.interval_lengths[None, :])


def build_cells(cases: pd.DataFrame, spec: CellSpec, outcome: str = "any_reoffence", terms: Terms | None = None) -> Cells:
    """Aggregate canonical cases into hazard, binomial and standardisation cells.

    `terms`: the identification decision to index by (default: decided from these cases, and the forces it
    leaves out are dropped); pass a fit's own to build cells of other cases (a held-out force) like its cells.
    """
    if outcome != "any_reoffence":
        raise NotImplementedError(f"cells for outcome '{outcome}' are not defined yet")
    if terms is None:
        terms = identify_terms(cases, spec)
        cases = cases[cases["force"].astype(str).isin(terms.forces)]
    keys = banded(cases, spec, terms.supplied_fields)
    flag = (cases["outcome_source"] == "flag").to_numpy()
    labels = spec.interval_labels

    days, event = time_at_risk(cases.loc[~flag])
    in_interval = interval_days(days, spec)
    starts, ends = np.asarray(spec.interval_breaks[:-1]), np.asarray(spec.interval_breaks[1:])
    event_interval = event[:, None] & (days[:, None] > starts[None, :]) & (days[:, None] <= ends[None, :])
    long = []
    for j, label in enumerate(labels):
        part = keys.loc[~flag].assign(interval=label, exposure=in_interval[:, j], events=event_interval[:, j])
        long.append(part[part["exposure"] > 0])
    hazard = (
        pd.concat(long, ignore_index=True)
        .groupby(PATTERN_KEYS + ["interval"], observed=True, sort=True)
        .agg(events=("events", "sum"), exposure=("exposure", "sum"))
        .reset_index()
    )

    flagged = keys.loc[flag].assign(
        followup_days=cases.loc[flag, "followup_days"].astype(int).to_numpy(),
        k=cases.loc[flag, "any_reoffence"].astype(bool).astype(int).to_numpy(),
    )
    binomial = (
        flagged.groupby(PATTERN_KEYS + ["followup_days"], observed=True, sort=True)
        .agg(n=("k", "size"), k=("k", "sum"))
        .reset_index()
    )
    observed = interval_days(binomial["followup_days"].to_numpy(dtype=float), spec)
    for j, label in enumerate(labels):
        binomial[f"days_{label}"] = observed[:, j]

    standard = (
        keys[keys["cara"] == 1]
        .groupby([k for k in PATTERN_KEYS if k != "cara"], observed=True, sort=True)
        .size()
        .rename("n_cara")
        .reset_index()
    )
    periods = list(range(int(keys["period"].min()), int(keys["period"].max()) + 1))
    covariate_centre = _design(keys, spec, terms.covariates).mean(axis=0)
    case_counts = (
        pd.DataFrame({"force": keys["force"], "arm": np.where(keys["cara"] == 1, "cara", "comparison"),
                      "event": cases["any_reoffence"].astype(bool).to_numpy()})
        .groupby(["force", "arm"], sort=True)
        .agg(n_cases=("event", "size"), observed_events=("event", "sum"))
        .reset_index()
    )
    return Cells(
        hazard=hazard,
        binomial=binomial,
        standard=standard,
        forces=sorted(keys["force"].unique()),
        periods=periods,
        spec=spec,
        terms=terms,
        case_counts=case_counts,
        case_counts_by_period=keys["period"].value_counts(),
        covariate_centre=covariate_centre,
        force_mean_period=keys.groupby("force")["period"].mean().sort_index().to_numpy(dtype=float),
    )


def row_level_cells(cases: pd.DataFrame, spec: CellSpec) -> Cells:
    """Every case its own Bernoulli cell (n = 1, observed days per interval): the naive, uncoarsened baseline.

    Uses the same hazard and censoring (P(event within follow-up) = 1 - exp(-H(follow-up))), so it fits the
    same model; it exists to measure what coarsening buys.
    """
    cells = build_cells(cases, spec)
    cases = cases[cases["force"].astype(str).isin(cells.forces)]
    keys = banded(cases, spec, cells.terms.supplied_fields)
    observed = interval_days(cases["followup_days"].to_numpy(dtype=float), spec)
    rows = keys.assign(
        followup_days=cases["followup_days"].astype(int).to_numpy(),
        n=1,
        k=cases["any_reoffence"].astype(bool).astype(int).to_numpy(),
    ).reset_index(drop=True)
    for j, label in enumerate(spec.interval_labels):
        rows[f"days_{label}"] = observed[:, j]
    empty_hazard = cells.hazard.iloc[0:0]
    return dataclasses.replace(cells, hazard=empty_hazard, binomial=rows)
