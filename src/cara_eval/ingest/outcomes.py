"""Outcomes per case from later offences (or a force's pre-counted flag): pure functions, no I/O but the weights.

The window is (index_date, index_date + followup_days]: an offence on the index date is the index
offence itself, and follow-up is cut short by the extract date.
"""

from pathlib import Path

import numpy as np
import pandas as pd

# Illustrative harm weights (days of imprisonment, CCHI-like) for tests and runs without
# config/harm_weights.csv; not a published table.
DEFAULT_HARM_WEIGHTS = pd.Series(
    {
        "common_assault": 2.0,
        "criminal_damage": 1.0,
        "harassment": 15.0,
        "threatening_behaviour": 10.0,
        "domestic_theft": 1.0,
        "other_violence": 90.0,
        "sexual": 365.0,
        "stalking": 30.0,
        "breach_of_order": 10.0,
        "other": 1.0,
    },
    name="weight_days",
)

OUTCOME_COLUMNS = ["followup_days", "outcome_source", "any_reoffence", "reoffence_count", "harm", "days_to_first", "event_observed"]


def load_harm_weights(path=None):
    """Harm weight per offence type from a CSV (offence_type, weight_days, source); the default table if None."""
    if path is None:
        return DEFAULT_HARM_WEIGHTS
    table = pd.read_csv(Path(path))
    return table.set_index("offence_type")["weight_days"].astype(float)


def followup_days(index_dates, extract_date, window=365):
    """Days of follow-up available: min(window, extract_date - index_date), never negative."""
    available = (pd.Timestamp(extract_date) - index_dates).dt.days
    return available.clip(lower=0, upper=window).astype("int64")


def event_outcomes(cases, reoffences, harm_weights):
    """Outcomes of each case from a table of later offences, matched through the pseudonymised offender id.

    ``cases``: offender_pid, index_date, followup_days (index as the result's). ``reoffences``:
    offender_pid, offence_date, offence_type, da_related. Only DA offences after the case's own index date
    count, so an offender with two cases never has the first case's events counted twice.
    """
    da = reoffences.loc[reoffences["da_related"].astype(bool), ["offender_pid", "offence_date", "offence_type"]]
    unweighted = sorted(set(da["offence_type"]) - set(harm_weights.index))
    if unweighted:
        raise ValueError(f"No harm weight for offence types {unweighted}; add them to the harm weights table.")
    keyed = cases[["offender_pid", "index_date", "followup_days"]].rename_axis("case_row").reset_index()
    pairs = keyed.merge(da, on="offender_pid", how="inner")
    days = (pairs["offence_date"] - pairs["index_date"]).dt.days
    in_window = pairs[(days > 0) & (days <= pairs["followup_days"])]
    summary = (
        in_window.assign(days=days, weight=in_window["offence_type"].map(harm_weights))
        .groupby("case_row")
        .agg(reoffence_count=("days", "size"), harm=("weight", "sum"), days_to_first=("days", "min"))
    )
    result = pd.DataFrame(index=cases.index)
    result["followup_days"] = cases["followup_days"]
    result["outcome_source"] = "events"
    counts = summary.reindex(keyed["case_row"]).set_axis(cases.index)
    result["reoffence_count"] = counts["reoffence_count"].fillna(0).astype(float)
    result["harm"] = counts["harm"].fillna(0).astype(float)
    result["days_to_first"] = counts["days_to_first"].astype(float)
    result["any_reoffence"] = (result["reoffence_count"] > 0).astype("boolean")
    result["event_observed"] = result["any_reoffence"]
    return result[OUTCOME_COLUMNS]


def flag_outcomes(cases, flags):
    """Outcomes from a pre-counted 12-month flag: only any_reoffence is known; counts, harm and time stay null."""
    result = pd.DataFrame(index=cases.index)
    result["followup_days"] = cases["followup_days"]
    result["outcome_source"] = "flag"
    result["any_reoffence"] = flags.astype("boolean")
    result["reoffence_count"] = np.nan
    result["harm"] = np.nan
    result["days_to_first"] = np.nan
    result["event_observed"] = result["any_reoffence"]
    return result[OUTCOME_COLUMNS]
