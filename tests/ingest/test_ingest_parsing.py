"""Field parsers and eligibility rules on small Series: the edges the fixtures do not reach."""

import datetime as dt

import pandas as pd

from cara_eval.ingest.eligibility import ineligibility_reasons
from cara_eval.ingest.parsing import normalise_text, parse_booleans, parse_codes, parse_dates, parse_numbers

RULES = {
    "offence_types": ["common_assault", "harassment"], "dash_levels": ["standard", "medium"],
    "min_age": 18, "max_prior_da_convictions": 0, "repeat_offender_rule": "keep_earliest"}


def test_two_digit_years_after_the_extract_date_are_last_century():
    parsed, bad = parse_dates(pd.Series(["03/05/61", "03/05/05", "03/05/25", ""]), "%d/%m/%y", latest=pd.Timestamp("2024-03-31"))
    assert parsed.dt.year.tolist()[:3] == [1961, 2005, 1925]
    assert pd.isna(parsed[3]) and bad.isna().all()


def test_iso_excel_serial_and_date_cells():
    iso, bad_iso = parse_dates(pd.Series(["2020-02-29", "2020-02-30", "29/02/2020"]), "iso")
    assert iso[0] == pd.Timestamp("2020-02-29") and bad_iso.fillna("").tolist() == ["", "unparseable_date", "unparseable_date"]
    serial, bad_serial = parse_dates(pd.Series(["43891", "43891.75", "soon"]), "excel_serial")
    assert serial[:2].tolist() == [pd.Timestamp("2020-03-01")] * 2 and bad_serial.notna().tolist() == [False, False, True]
    cells, bad_cells = parse_dates(pd.Series([dt.datetime(2021, 1, 2, 13, 5), "05/01/2021"], dtype=object), "%d/%m/%Y")
    assert cells.tolist() == [pd.Timestamp("2021-01-02"), pd.Timestamp("2021-01-05")] and bad_cells.isna().all()


def test_codes_match_case_and_punctuation_insensitively_and_null_codes_mean_unknown():
    raw = pd.Series(["Current Partner", "EX-PARTNER", "Partner", "Not known", "cousin", " "])
    parsed, bad = parse_codes(raw, {"partner": "current_partner", "Not known": None}, ["current_partner", "ex_partner", "family"])
    assert parsed.tolist()[:3] == ["current_partner", "ex_partner", "current_partner"]
    assert parsed[3:].isna().all()
    assert bad.tolist() == [False, False, False, False, True, False]


def test_booleans_through_mapping_codes_or_defaults():
    parsed, bad = parse_booleans(pd.Series(["Yes", "no", "N/A", "perhaps"]), {"true": ["Yes"], "false": ["No"]})
    assert parsed.tolist()[:2] == [True, False] and pd.isna(parsed[2]) and bad.tolist() == [False, False, False, True]
    default, _ = parse_booleans(pd.Series(["1", "0", "Y"]))
    assert default.tolist() == [True, False, True]


def test_numbers_and_offence_name_normalisation():
    numbers, bad = parse_numbers(pd.Series(["3", " 2.0 ", "two", ""]))
    assert numbers[:2].tolist() == [3.0, 2.0] and bad.tolist() == [False, False, True, False]
    assert normalise_text(pd.Series(["  Common   Assault/Battery. ", "S.4 Public-Order"])).tolist() == [
        "common assault battery", "s 4 public order"]


def test_eligibility_is_applied_where_recorded_and_repeats_keep_the_earliest():
    cases = pd.DataFrame({
        "offender_pid": ["a", "b", "c", "d", "a", "e", "f"],
        "index_date": pd.to_datetime(["2020-05-01", "2020-01-01", "2020-01-01", "2020-01-01", "2019-01-01",
                                      "2020-01-01", "2020-01-01"]),
        "offence_type": ["common_assault", "criminal_damage", "harassment", "harassment", "harassment",
                         "harassment", "common_assault"],
        "dash_risk": ["standard", "standard", "high", None, "medium", None, None],
        "age": [30, 40, 17.0, None, 30, 30, 30],
        "prior_da_convictions": [0, 0, 0, None, 0, 2, None],
    })
    reasons = ineligibility_reasons(cases, RULES).fillna("eligible")
    assert reasons.tolist() == [
        "repeat_offender",  # a's 2019 case came first, even though it is later in the file
        "offence_type_not_eligible",
        "dash_risk_not_eligible",  # high risk wins over under-age: reasons in a fixed order
        "eligible", "eligible", "prior_da_conviction", "eligible",
    ]
