"""Outcome edges: the (index, index + follow-up] window, DA-only, per-case matching, flag-only forces."""

import pandas as pd
import pytest

from cara_eval.ingest.outcomes import DEFAULT_HARM_WEIGHTS, event_outcomes, flag_outcomes, followup_days

INDEX = pd.Timestamp("2021-01-01")


def cases(*rows):
    frame = pd.DataFrame(rows, columns=["offender_pid", "index_date", "followup_days"])
    frame["index_date"] = pd.to_datetime(frame["index_date"])
    return frame


def later(*rows):
    frame = pd.DataFrame(rows, columns=["offender_pid", "offence_date", "offence_type", "da_related"])
    frame["offence_date"] = pd.to_datetime(frame["offence_date"])
    frame["da_related"] = frame["da_related"].astype("boolean")
    return frame


def day(n):
    return INDEX + pd.Timedelta(days=n)


def test_followup_is_capped_at_a_year_and_cut_by_the_extract_date():
    index_dates = pd.Series(pd.to_datetime(["2020-01-01", "2023-12-01", "2024-03-31"]))
    assert followup_days(index_dates, "2024-03-31").tolist() == [365, 121, 0]


def test_day_365_counts_and_day_366_does_not():
    result = event_outcomes(
        cases(("a", INDEX, 365), ("b", INDEX, 365)),
        later(("a", day(365), "harassment", True), ("b", day(366), "harassment", True)),
        DEFAULT_HARM_WEIGHTS,
    )
    assert result["any_reoffence"].tolist() == [True, False]
    assert result["reoffence_count"].tolist() == [1, 0]
    assert result["days_to_first"].iloc[0] == 365 and pd.isna(result["days_to_first"].iloc[1])
    assert result["event_observed"].tolist() == [True, False]


def test_offences_before_or_on_the_index_date_are_ignored():
    result = event_outcomes(
        cases(("a", INDEX, 365)),
        later(("a", day(-30), "common_assault", True), ("a", day(0), "common_assault", True)),
        DEFAULT_HARM_WEIGHTS,
    )
    assert (result["reoffence_count"].iloc[0], result["harm"].iloc[0]) == (0, 0)
    assert not result["any_reoffence"].iloc[0]


def test_short_followup_censors_later_events():
    result = event_outcomes(
        cases(("a", INDEX, 40)),
        later(("a", day(40), "common_assault", True), ("a", day(41), "common_assault", True)),
        DEFAULT_HARM_WEIGHTS,
    )
    assert (result["reoffence_count"].iloc[0], result["days_to_first"].iloc[0]) == (1, 40)


def test_non_da_offences_are_ignored_and_harm_sums_weights():
    result = event_outcomes(
        cases(("a", INDEX, 365)),
        later(("a", day(5), "sexual", False), ("a", day(10), "harassment", True), ("a", day(20), "stalking", True)),
        DEFAULT_HARM_WEIGHTS,
    )
    expected_harm = DEFAULT_HARM_WEIGHTS["harassment"] + DEFAULT_HARM_WEIGHTS["stalking"]
    assert (result["reoffence_count"].iloc[0], result["harm"].iloc[0], result["days_to_first"].iloc[0]) == (
        2, expected_harm, 10)


def test_offender_with_two_cases_gets_only_events_after_each_index():
    result = event_outcomes(
        cases(("a", INDEX, 365), ("a", day(200), 365)),
        later(("a", day(100), "common_assault", True), ("a", day(300), "common_assault", True)),
        DEFAULT_HARM_WEIGHTS,
    )
    assert result["reoffence_count"].tolist() == [2, 1]
    assert result["days_to_first"].tolist() == [100, 100]


def test_an_offence_type_without_weight_is_an_error():
    with pytest.raises(ValueError, match="No harm weight for offence types \\['arson'\\]"):
        event_outcomes(cases(("a", INDEX, 365)), later(("a", day(3), "arson", True)), DEFAULT_HARM_WEIGHTS)


def test_flag_only_outcomes_leave_counts_null():
    result = flag_outcomes(cases(("a", INDEX, 365), ("b", INDEX, 100)), pd.Series([True, False], dtype="boolean"))
    assert result["outcome_source"].eq("flag").all()
    assert result["any_reoffence"].tolist() == [True, False] == result["event_observed"].tolist()
    assert result[["reoffence_count", "harm", "days_to_first"]].isna().all().all()
    assert result["followup_days"].tolist() == [365, 100]
