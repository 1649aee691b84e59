"""The canonical tables: the one owner of field names, dtypes, allowed values and meanings.

Every stage that reads or writes a cases table validates it with ``CASES_SCHEMA``; the data
specification (results/spec/) is generated from it, so the documentation cannot drift from the code.
"""

import pandera.pandas as pa

OFFENCE_TYPES = ["common_assault", "criminal_damage", "harassment", "threatening_behaviour", "domestic_theft"]
# Later offences may be of any type; the extra ones only carry harm weights.
REOFFENCE_TYPES = OFFENCE_TYPES + ["other_violence", "sexual", "stalking", "breach_of_order", "other"]

ARMS = ["cara", "comparison"]
COMPARISON_TYPES = ["historical", "contemporaneous"]
DASH_LEVELS = ["standard", "medium", "high"]
SEXES = ["male", "female"]
ETHNICITIES = ["white", "black", "asian", "mixed", "other"]
RELATIONSHIPS = ["current_partner", "ex_partner", "family"]
OUTCOME_SOURCES = ["events", "flag"]

# Allowed values of every coded raw field, in raw-field names (a mapping's `codes` translate into these).
CATEGORIES = {
    "arm": ARMS,
    "dash_risk": DASH_LEVELS,
    "sex": SEXES,
    "ethnicity": ETHNICITIES,
    "victim_sex": SEXES,
    "relationship": RELATIONSHIPS,
}
BOOLEAN_FIELDS = [
    "together_at_index",
    "workshop1_attended",
    "workshop2_attended",
    "completed",
    "breached",
    "victim_contacted",
    "victim_consulted",
]
CARA_PROCESS_FIELDS = ["workshop1_attended", "workshop2_attended", "completed", "breached"]
OUTCOME_FIELDS = ["any_reoffence", "reoffence_count", "harm", "days_to_first", "event_observed"]
# Canonical fields built by ingest itself rather than read from a column.
DERIVED_FIELDS = ["force", "comparison_type", "period", "followup_days", "outcome_source"]

# Below the age of criminal responsibility or above 110: a recording error, not an offender.
OFFENDER_AGE_RANGE = (10, 110)
# Prior DA incidents or convictions are whole counts; more than this for one offender is a recording
# error (CARA is for first-time, low-risk offenders), not a count to carry into the case mix.
MAX_PRIOR_COUNT = 100


def _category(values, meaning, nullable=True):
    return pa.Column(str, pa.Check.isin(values), nullable=nullable, description=meaning)


def _flag(meaning, nullable=True):
    return pa.Column("boolean", nullable=nullable, description=meaning)


def _disposal_not_before_index(df):
    return df["disposal_date"].isna() | (df["disposal_date"] >= df["index_date"])


def _period_is_index_year(df):
    return df["period"] == df["index_date"].dt.year


def _comparison_type_only_for_comparison(df):
    is_cara = df["arm"] == "cara"
    return (is_cara & df["comparison_type"].isna()) | (~is_cara & df["comparison_type"].notna())


def _flag_outcomes_have_no_counts(df):
    from_flag = df["outcome_source"] == "flag"
    counts_missing = df[["reoffence_count", "harm", "days_to_first"]].isna().all(axis=1)
    return ~from_flag | counts_missing


def _event_outcomes_consistent(df):
    from_events = df["outcome_source"] == "events"
    any_event = df["reoffence_count"] > 0
    consistent = (any_event == df["any_reoffence"]) & (df["days_to_first"].notna() == any_event)
    return ~from_events | consistent


CASES_SCHEMA = pa.DataFrameSchema(
    {
        "case_id": pa.Column(str, unique=True, description="HMAC pseudonym of the crime reference"),
        "offender_pid": pa.Column(str, description="HMAC pseudonym of the offender id (PNC or nominal)"),
        "victim_pid": pa.Column(str, nullable=True, description="HMAC pseudonym of the victim id"),
        "force": pa.Column(str, pa.Check.str_matches(r"^[a-z0-9_]+$"), description="force key"),
        "arm": _category(ARMS, "cara (conditional caution with workshops) or comparison", nullable=False),
        "comparison_type": _category(
            COMPARISON_TYPES,
            "historical (index before the force's CARA start) or contemporaneous; null for CARA cases",
        ),
        "index_date": pa.Column("datetime64[ns]", description="date of the index offence"),
        "disposal_date": pa.Column(
            "datetime64[ns]", nullable=True, description="caution or disposal date (on or after index_date)"
        ),
        "period": pa.Column("int64", pa.Check.in_range(1990, 2100), description="calendar year of index_date"),
        "offence_type": _category(OFFENCE_TYPES, "eligible index offence type", nullable=False),
        "dash_risk": _category(["standard", "medium"], "DASH risk level (high is ineligible)"),
        "age": pa.Column(
            float, pa.Check.in_range(*OFFENDER_AGE_RANGE), nullable=True, description="age in whole years at index"
        ),
        "sex": _category(SEXES, "offender sex"),
        "ethnicity": _category(ETHNICITIES, "offender ethnicity"),
        "prior_da_incidents": pa.Column(
            float,
            pa.Check.in_range(0, MAX_PRIOR_COUNT),
            nullable=True,
            description="count of prior DA incidents (not convictions), a whole number",
        ),
        "victim_sex": _category(SEXES, "victim sex"),
        "relationship": _category(RELATIONSHIPS, "victim's relationship to the offender"),
        "together_at_index": _flag("victim and offender still in a relationship at the index offence"),
        "workshop1_attended": _flag("attended the first CARA workshop; null for comparison cases"),
        "workshop2_attended": _flag("attended the second CARA workshop; null for comparison cases"),
        "completed": _flag("completed the CARA condition; null for comparison cases"),
        "breached": _flag("breached the CARA condition; null for comparison cases"),
        "victim_contacted": _flag("victim contacted about the disposal (process measure, never imputed)"),
        "victim_consulted": _flag("victim consulted on the disposal (process measure, never imputed)"),
        "followup_days": pa.Column(
            "int64",
            pa.Check.in_range(0, 365),
            description="days of follow-up available: min(365, extract_date - index_date)",
        ),
        "outcome_source": _category(
            OUTCOME_SOURCES, "events (later-offences table) or flag (pre-counted 12-month flag)", nullable=False
        ),
        "any_reoffence": _flag("any DA reoffence in (index_date, index_date + followup_days]", nullable=False),
        "reoffence_count": pa.Column(
            float, pa.Check.ge(0), nullable=True, description="number of DA reoffences in the window; null for flag"
        ),
        "harm": pa.Column(
            float, pa.Check.ge(0), nullable=True, description="sum of harm weights (days) of those reoffences"
        ),
        "days_to_first": pa.Column(
            float,
            pa.Check.in_range(1, 365),
            nullable=True,
            description="days from index to the first DA reoffence; null if none or flag",
        ),
        "event_observed": _flag("first DA reoffence observed within follow-up (complement: censored)", nullable=False),
    },
    checks=[
        pa.Check(_disposal_not_before_index, error="disposal_date before index_date"),
        pa.Check(_period_is_index_year, error="period is not the year of index_date"),
        pa.Check(_comparison_type_only_for_comparison, error="comparison_type set for CARA or missing for comparison"),
        pa.Check(_flag_outcomes_have_no_counts, error="flag outcomes must leave count, harm and days_to_first null"),
        pa.Check(_event_outcomes_consistent, error="event outcomes inconsistent"),
    ],
    strict=True,
    ordered=True,
    name="canonical cases",
)

# Later offences after ingest (intermediate: feeds the outcomes, never written to results/).
REOFFENCES_SCHEMA = pa.DataFrameSchema(
    {
        "offender_pid": pa.Column(str, description="HMAC pseudonym of the offender id"),
        "offence_date": pa.Column("datetime64[ns]", description="date of the later offence"),
        "offence_type": _category(REOFFENCE_TYPES, "offence type of the later offence", nullable=False),
        "da_related": _flag("the later offence is domestic-abuse related", nullable=False),
    },
    strict=True,
    name="canonical later offences",
)

CASE_FIELDS = list(CASES_SCHEMA.columns)
