"""CARA eligibility, applied to every parsed case and recorded with a reason rather than assumed.

A criterion is applied only where the force records the field: a missing DASH level or age does not
exclude a case (completeness is reported by the quality stage instead).
"""

import pandas as pd

REASONS = [
    "offence_type_not_eligible",
    "dash_risk_not_eligible",
    "under_min_age",
    "prior_da_conviction",
    "repeat_offender",
]


def ineligibility_reasons(cases, rules):
    """First reason each case is ineligible (in REASONS order), <NA> for eligible cases.

    ``cases`` needs offence_type, dash_risk, age, prior_da_convictions, offender_pid, index_date;
    ``rules`` is the config's ``eligibility`` section. Repeat appearances of one offender are found
    through the pseudonym: with keep_earliest, every case after the offender's earliest is a repeat,
    because a later CARA is not for a first offence.
    """
    failing = {
        "offence_type_not_eligible": ~cases["offence_type"].isin(rules["offence_types"]),
        "dash_risk_not_eligible": cases["dash_risk"].notna() & ~cases["dash_risk"].isin(rules["dash_levels"]),
        "under_min_age": cases["age"] < rules["min_age"],
        "prior_da_conviction": cases["prior_da_convictions"] > rules["max_prior_da_convictions"],
        "repeat_offender": _later_appearances(cases),
    }
    reasons = pd.Series(pd.NA, index=cases.index, dtype="string")
    for reason in reversed(REASONS):
        reasons = reasons.mask(failing[reason].fillna(False).astype(bool), reason)
    return reasons


def _later_appearances(cases):
    """Cases after the offender's earliest one (ties on the index date: first in the file is kept)."""
    order = cases[["offender_pid", "index_date"]].sort_values("index_date", kind="stable")
    return order["offender_pid"].duplicated(keep="first").reindex(cases.index)
