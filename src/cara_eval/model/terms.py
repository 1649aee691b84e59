"""Which terms of the effectiveness model the data can identify, decided once, before any sampling.

Why: a term the data cannot inform is either left to its prior (a ridge or a funnel the sampler cannot cross:
divergences, low ESS, a failed gate) or a zero-sized variable that breaks the checks. Forces send very
different shapes (randomised trials, one calendar year, flag-only outcomes, covariates nobody records), so
every model (primary, secondary outcomes, sensitivity) builds only the terms decided here, and every
dropped term is listed with its reason (`results/model/<outcome>/terms.csv`, the fit's log, the report).

Rules (`identify_terms`):

* a force enters with both CARA and comparison cases (without comparisons its effect is its level; without
  CARA cases it has no effect on the treated). No such force, or no reoffence at all: the run stops
  (`NotIdentifiedError`).
* the calendar trend needs at least two calendar periods with cases; its drift (the straight-line part) and
  the scale of its random-walk steps around it (trend_sd) need at least two steps, else the one step gets a
  fixed normal prior with the scale of trend_sd's prior.
* force slopes (deviations from the shared trend) need the trend and at least two forces.
* the follow-up interval shape needs events with varying exposure: dated reoffences, or flag-only cases
  whose observed follow-up splits differently over the intervals. Complete follow-up with flags only:
  constant hazard over the year (the 12-month risk is all the data say).
* a covariate column enters only where its field is recorded somewhere (it is imputed only then) and is
  not constant over the cases; the together shift only where together_at_index is recorded and CARA cases
  are both together and separated (it also decides whether the by-relationship estimands exist).
* the hierarchy over forces: with at least MIN_FORCES_FOR_HIERARCHY (3) forces the between-force SDs (tau of
  the CARA effects, force_intercept_sd of the levels) are estimated. With two forces a between-force SD
  cannot be learnt from two values (its posterior is its prior, and the funnel it makes fails the gate), so
  both are fixed at the scale of their configured priors: force effects are still partially pooled, by a
  stated amount, and a new force's effect is drawn with that fixed tau. With one force there is nothing to
  pool: its level and effect are the overall ones (intercept_mean, mu_log_hr); the new-force prediction
  uses the fixed tau.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MIN_FORCES_FOR_HIERARCHY = 3
TERM_COLUMNS = ["term", "included", "reason"]
# Case fields behind the design columns (CellSpec.covariate_fields).
COVARIATE_FIELDS = ("age", "prior_da_incidents", "sex", "together_at_index", "dash_risk")


class NotIdentifiedError(ValueError):
    """The data cannot answer the question at all (e.g. no force with both arms): stop before sampling."""


@dataclass(frozen=True)
class Terms:
    """The identification decision of one dataset: what each model builds, and the table that says why."""

    table: pd.DataFrame  # term, included (bool), reason
    forces: list[str]  # forces in the fit
    covariates: list[str]  # design columns in the fit (a subset of CellSpec.covariates, same order)
    supplied_fields: list[str]  # covariate fields recorded by some force; the others get a reference placeholder
    trend: bool
    trend_sd: bool  # False: the trend's one step has a fixed-scale prior
    force_slopes: bool
    interval_shape: bool
    together_shift: bool
    hierarchy: str  # estimated | fixed (two forces) | single_force

    def dropped(self) -> pd.DataFrame:
        return self.table[~self.table["included"]]


def _row(term: str, included: bool, reason: str) -> dict:
    return {"term": term, "included": bool(included), "reason": reason}


def force_rows(cases: pd.DataFrame) -> tuple[list[str], list[dict]]:
    """Forces with both arms, and one row per force saying whether it enters and why."""
    arms = cases.groupby(cases["force"].astype(str), observed=True)["arm"].agg(lambda a: set(a))
    kept, rows = [], []
    for force, present in arms.items():
        if "comparison" not in present:
            rows.append(_row(f"force:{force}", False, "no comparison cases: its CARA effect cannot be told apart "
                             "from its own level"))
        elif "cara" not in present:
            rows.append(_row(f"force:{force}", False, "no CARA cases: no effect on the treated to estimate"))
        else:
            kept.append(force)
            rows.append(_row(f"force:{force}", True, "CARA and comparison cases"))
    if not kept:
        raise NotIdentifiedError(
            "no force has both CARA and comparison cases, so the CARA effect cannot be estimated: "
            + "; ".join(f"{r['term'].removeprefix('force:')}: {r['reason']}" for r in rows)
        )
    return kept, rows


def interval_shape_identified(cases: pd.DataFrame, interval_breaks) -> tuple[bool, str]:
    """Whether events with varying exposure tell the intervals' hazards apart (see the module docstring);
    `cases` hold at least one reoffence (identify_terms checks)."""
    if len(interval_breaks) < 3:
        return False, "one follow-up interval configured"
    dated = cases["outcome_source"] == "events"
    if cases.loc[dated, "event_observed"].astype(bool).any():
        return True, "dated reoffences: events and exposure per interval"
    flagged = cases.loc[~dated]
    starts = np.asarray(interval_breaks[:-1], dtype=float)
    lengths = np.diff(np.asarray(interval_breaks, dtype=float))
    followup = np.unique(flagged["followup_days"].to_numpy(dtype=float))
    days = np.clip(followup[:, None] - starts[None, :], 0.0, lengths[None, :])
    days = days[days.sum(axis=1) > 0]
    splits = np.unique(np.round(days / days.sum(axis=1, keepdims=True), 9), axis=0)
    if len(splits) > 1:
        return True, "flag-only cases with follow-up of different lengths"
    return False, ("flags only, every case followed up over the same part of the window: the data give one "
                   "risk, not its shape over follow-up (constant hazard assumed)")


def covariate_rows(cases: pd.DataFrame, spec) -> tuple[list[str], list[str], list[dict]]:
    """Supplied covariate fields, included design columns, and one row per design column."""
    supplied = [f for f in COVARIATE_FIELDS if f in cases.columns and cases[f].notna().any()]
    columns = spec.case_design(cases)
    included, rows = [], []
    for field, name in zip(spec.covariate_fields, spec.covariates):
        if field not in supplied:
            rows.append(_row(f"covariate:{name}", False, f"{field} is not recorded by any force"))
            continue
        values = columns[name][cases[field].notna().to_numpy()]
        if values.min() == values.max():
            rows.append(_row(f"covariate:{name}", False, f"constant in every case ({'all' if values.min() else 'none'} "
                             f"{name})"))
            continue
        included.append(name)
        rows.append(_row(f"covariate:{name}", True, f"varies over cases ({values.mean():.1%} {name})"))
    return supplied, included, rows


def identify_terms(cases: pd.DataFrame, spec) -> Terms:
    """The terms the cases can identify (module docstring); raises NotIdentifiedError when nothing can be fitted."""
    forces, rows = force_rows(cases)
    cases = cases[cases["force"].astype(str).isin(forces)]
    if not cases["any_reoffence"].astype(bool).any():
        raise NotIdentifiedError("no case reoffended within its follow-up in any force with both arms: there is no "
                                 "risk to compare, so the CARA effect cannot be estimated")

    n_forces = len(forces)
    hierarchy = ("estimated" if n_forces >= MIN_FORCES_FOR_HIERARCHY else "fixed" if n_forces == 2
                 else "single_force")
    hierarchy_reason = {
        "estimated": f"{n_forces} forces: between-force SDs estimated",
        "fixed": f"2 forces (fewer than {MIN_FORCES_FOR_HIERARCHY}): between-force SD fixed at its prior's scale",
        "single_force": "1 force: nothing to pool; new force uses tau fixed at its prior's scale",
    }[hierarchy]
    rows += [_row("tau", hierarchy == "estimated", hierarchy_reason),
             _row("force_intercept_sd", hierarchy == "estimated", hierarchy_reason)]

    periods = sorted(cases["period"].astype(int).unique())
    trend = len(periods) >= 2
    trend_sd = len(periods) >= 3
    rows.append(_row("trend", trend, f"{len(periods)} calendar periods with cases ({periods[0]}-{periods[-1]})"
                     if trend else f"one calendar period with cases ({periods[0]}): no trend to estimate"))
    rows.append(_row("trend_sd", trend_sd, f"{len(periods) - 1} random-walk steps" if trend_sd else
                     "fewer than two trend steps: the step's scale is fixed at trend_sd's prior scale"))
    rows.append(_row("trend_drift", trend_sd, "straight-line part of the trend; the steps sum to zero around it"
                     if trend_sd else "fewer than two trend steps: the one step is the trend"))
    force_slopes = trend and n_forces >= 2
    rows.append(_row("force_slope", force_slopes, "force deviations from the shared trend" if force_slopes else
                     ("no trend" if not trend else "one force: its trend is the trend")))

    shape, shape_reason = interval_shape_identified(cases, spec.interval_breaks)
    rows.append(_row("interval_shape", shape, shape_reason))

    supplied, covariates, covariate_table = covariate_rows(cases, spec)
    rows += covariate_table
    cara = cases["arm"] == "cara"
    together_values = set(cases.loc[cara, "together_at_index"].dropna().astype(bool))
    together = "together_at_index" in supplied and together_values == {False, True}
    rows.append(_row("together_log_hr_shift", together, "CARA cases together and separated at index" if together else
                     ("together_at_index is not recorded by any force" if "together_at_index" not in supplied
                      else "CARA cases all together or all separated at index")))
    return Terms(
        table=pd.DataFrame(rows, columns=TERM_COLUMNS),
        forces=sorted(forces),
        covariates=covariates,
        supplied_fields=supplied,
        trend=trend,
        trend_sd=trend_sd,
        force_slopes=force_slopes,
        interval_shape=shape,
        together_shift=together,
        hierarchy=hierarchy,
    )
