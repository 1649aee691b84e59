"""Cases and events each force would add with more months of data, at its current rate and follow-up.

Why: the information on a force's CARA effect grows with its events in each arm, not with its cases. Three
sources add events: cases still inside their follow-up window (their window matures), new cases at the force's
current monthly rate (each followed up for as long as the added months allow), and nothing else: a force whose
comparison arm ended (historical controls) adds no comparison events, so its precision levels off.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DAYS_PER_MONTH = 365.25 / 12
RATE_WINDOW_DAYS = 365  # "current" monthly rate: cases indexed in the last year of each force's data
ARMS = ("cara", "comparison")


def daily_hazard(cases: pd.DataFrame, window_days: int) -> float:
    """Constant daily hazard of a first reoffence within the window: events over days at risk.

    A flag-only force has no event dates: an event counts half its follow-up at risk (its expected share when
    the hazard is small)."""
    followup = np.minimum(cases["followup_days"].to_numpy(dtype=float), window_days)
    event = cases["any_reoffence"].astype(bool).to_numpy()
    first = cases["days_to_first"].to_numpy(dtype=float)
    at_risk = np.where(event, np.where(np.isnan(first), followup / 2, np.minimum(first, followup)), followup)
    exposure = at_risk.sum()
    return float(event.sum() / exposure) if exposure > 0 else 0.0


def monthly_rate(cases: pd.DataFrame, last_index: pd.Timestamp) -> float:
    """Cases per month indexed in the year up to the force's last index date."""
    recent = cases["index_date"] > last_index - pd.Timedelta(days=RATE_WINDOW_DAYS)
    return float(recent.sum()) * DAYS_PER_MONTH / RATE_WINDOW_DAYS


def _added_events(cases: pd.DataFrame, hazard: float, rate: float, months: np.ndarray, window_days: int):
    """Expected events added after each number of months: maturing windows of open cases plus new cases."""
    followup = np.minimum(cases["followup_days"].to_numpy(dtype=float), window_days)
    open_cases = followup[~cases["any_reoffence"].astype(bool).to_numpy() & (followup < window_days)]
    added = []
    for m in months:
        longer = np.minimum(open_cases + m * DAYS_PER_MONTH, window_days) - open_cases
        maturing = np.sum(-np.expm1(-hazard * longer))
        enrolled_followup = np.minimum((m - np.arange(int(m)) - 0.5) * DAYS_PER_MONTH, window_days)
        new_cases = rate * np.sum(-np.expm1(-hazard * enrolled_followup))
        added.append(maturing + new_cases)
    return np.asarray(added)


def project_accrual(cases: pd.DataFrame, months: np.ndarray, window_days: int) -> pd.DataFrame:
    """Per force, arm and number of added months: cases added and expected events (current + added).

    Columns: force, arm, months_added, n_cases, cases_added, events. Every force gets both arms (zero rows for
    an arm it never had)."""
    months = np.asarray(months, dtype=int)
    rows = []
    for force, force_cases in cases.groupby(cases["force"].astype(str), sort=True):
        last_index = force_cases["index_date"].max()
        for arm in ARMS:
            arm_cases = force_cases[force_cases["arm"] == arm]
            rate = monthly_rate(arm_cases, last_index)
            hazard = daily_hazard(arm_cases, window_days) if len(arm_cases) else 0.0
            added = _added_events(arm_cases, hazard, rate, months, window_days)
            events = float(arm_cases["any_reoffence"].astype(bool).sum())
            rows.append(pd.DataFrame({
                "force": force, "arm": arm, "months_added": months, "n_cases": len(arm_cases),
                "cases_added": rate * months, "events": events + added,
            }))
    return pd.concat(rows, ignore_index=True)
