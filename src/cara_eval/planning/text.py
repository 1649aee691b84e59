"""Months until conclusive in words, for the national report and one force's report."""

from __future__ import annotations

import pandas as pd

from cara_eval.planning.precision import NATIONAL

DEFINITION = (
    "Months until conclusive: 0 (\"now\") if the 90% interval of the risk difference already excludes zero; otherwise the "
    "first month of further data, at the force's current monthly numbers of CARA and comparison cases and its "
    "follow-up, at which the probability that the 90% interval will exclude zero (assurance) reaches {target:.0%}; "
    "\"more than {max_months}\" if no month up to {max_months} reaches it."
)


def months_label(row: pd.Series) -> str:
    """"now", "7 months" or "more than 36 months" for one row of the conclusive table."""
    if row["conclusive_now"]:
        return "now"
    if pd.isna(row["months_to_conclusive"]):
        return f"more than {int(row['max_months'])} months"
    months = int(row["months_to_conclusive"])
    return f"{months} month" if months == 1 else f"{months} months"


def months_to_conclusive_markdown(conclusive: pd.DataFrame, target: float, force: str | None = None,
                                  name: str | None = None) -> str:
    """One scope's answer in a sentence or two: national (force None) or one force, `name` its display name."""
    row = conclusive[conclusive["force"] == (force or NATIONAL)].iloc[0]
    who = "The national estimate" if force is None else f"{name or force}'s own estimate"
    if row["conclusive_now"]:
        return (f"{who} is conclusive now: its 90% interval ({row['current_q05']:.1f} to {row['current_q95']:.1f} "
                "per 100 CARA cases) already excludes zero.")
    interval = f"its 90% interval, {row['current_q05']:.1f} to {row['current_q95']:.1f} per 100, includes zero"
    if pd.isna(row["months_to_conclusive"]):
        return (f"{who} is not conclusive yet: {interval}. At current numbers it is unlikely to be within "
                f"{int(row['max_months'])} months: the probability that the interval will then exclude zero is "
                f"{row['assurance_at_max']:.0%} (target {target:.0%}).")
    return (f"{who} is not conclusive yet: {interval}. At current numbers, after about {months_label(row)} more "
            f"data the probability that it will exclude zero reaches {target:.0%}.")
