"""Vectorised parsers from raw extract columns to canonical values.

Each parser returns ``(values, bad)``: the parsed Series and a mask of rows whose raw value was present
but could not be read, so the caller can quarantine exactly those rows. Raw columns arrive as text
(csv), mixed cells (excel) or typed columns (parquet); all three are accepted.
"""

import datetime as dt
import re

import pandas as pd
import yaml

MISSING_TOKENS = ["", "na", "n/a", "nan", "null", "none", "#n/a"]
EXCEL_EPOCH = pd.Timestamp("1899-12-30")
DEFAULT_BOOLEAN_CODES = {"true": ["y", "yes", "1", "true"], "false": ["n", "no", "0", "false"]}


def _is_typed(raw):
    return not (pd.api.types.is_object_dtype(raw) or pd.api.types.is_string_dtype(raw))


def clean_text(raw):
    """Raw values as stripped text, with blanks and the usual missing tokens as <NA>."""
    if pd.api.types.is_float_dtype(raw) and (raw.dropna() % 1 == 0).all():
        raw = raw.astype("Int64")
    text = raw.astype("string").str.strip()
    return text.mask(text.str.lower().isin(MISSING_TOKENS))


def normalise_text(values):
    """Lower case, punctuation removed, spaces collapsed: 'Common Assault/Battery ' -> 'common assault battery'."""
    return _on_distinct(values, lambda v: " ".join(re.sub(r"[^0-9a-z]+", " ", v.lower()).split()))


def _on_distinct(text, function):
    """Apply a Python function once per distinct value: extracts repeat the same few codes a million times."""
    codes, uniques = pd.factorize(text)
    mapped = pd.array([function(v) for v in uniques] + [pd.NA], dtype="string")
    return pd.Series(mapped[codes], index=text.index)


def parse_dates(raw, date_format="iso", latest=None):
    """Dates from text in a strftime format, 'iso' or 'excel_serial'; cells that already hold dates pass.

    Two-digit years (%y) that would land after ``latest`` (e.g. the extract date) belong to the previous
    century, so a date of birth '03/05/61' is 1961, not 2061.
    """
    if pd.api.types.is_datetime64_any_dtype(raw):
        return raw.dt.tz_localize(None).astype("datetime64[ns]").dt.normalize(), pd.Series(False, index=raw.index)
    native = raw.map(lambda v: isinstance(v, dt.date)) if pd.api.types.is_object_dtype(raw) else None
    text = clean_text(raw if native is None else raw.mask(native))
    if date_format == "excel_serial":
        serial = pd.to_numeric(text, errors="coerce")
        parsed = EXCEL_EPOCH + pd.to_timedelta(serial.where(serial.between(1, 2958465)).astype(float), unit="D")
    else:
        parsed = pd.to_datetime(text, format="ISO8601" if date_format == "iso" else date_format, errors="coerce")
    parsed = pd.Series(parsed, index=raw.index).astype("datetime64[ns]")
    if native is not None and native.any():
        parsed[native] = pd.to_datetime(raw[native].astype(object))
    if "%y" in date_format and latest is not None:
        too_late = parsed > latest
        parsed[too_late] = parsed[too_late] - pd.DateOffset(years=100)
    return parsed.dt.normalize(), text.notna() & parsed.isna()


def parse_numbers(raw):
    """Numbers as float; text that is not a number is bad."""
    if _is_typed(raw) and not pd.api.types.is_bool_dtype(raw):
        return raw.astype(float), pd.Series(False, index=raw.index)
    text = clean_text(raw)
    numbers = pd.to_numeric(text, errors="coerce").astype(float)
    return numbers, text.notna() & numbers.isna()


def parse_booleans(raw, boolean_codes=None):
    """Booleans through the mapping's codes (compared case-insensitively); unknown codes are bad."""
    if pd.api.types.is_bool_dtype(raw):
        return raw.astype("boolean"), pd.Series(False, index=raw.index)
    codes = boolean_codes or DEFAULT_BOOLEAN_CODES
    lookup = {str(v).strip().lower(): False for v in codes["false"]}
    lookup.update({str(v).strip().lower(): True for v in codes["true"]})
    text = clean_text(raw)
    lowered = text.str.lower()
    known = lowered.isin(list(lookup))
    parsed = pd.Series(pd.NA, index=raw.index, dtype="boolean")
    parsed[known] = lowered[known].map(lookup).astype(bool)
    return parsed, text.notna() & ~known


def parse_codes(raw, codes, allowed):
    """Categories through the mapping's value codes; canonical values themselves are accepted in any case.

    A code mapped to null in the mapping means 'recorded as unknown' and becomes missing, not bad.
    """
    codes = codes or {}
    raw_values = list(allowed) + list(codes)
    lookup = dict(zip(normalise_text(pd.Series(raw_values, dtype="string")), list(allowed) + list(codes.values())))
    text = clean_text(raw)
    normalised = normalise_text(text)
    known = normalised.isin(list(lookup))
    parsed = normalised.map(lookup).astype("string")
    return parsed.where(known), text.notna() & ~known


def load_offence_types(path):
    """Offence-name lookup: normalised free text -> canonical type, from config/offence_types.yaml."""
    with open(path, encoding="utf-8") as handle:
        table = yaml.safe_load(handle)
    names = pd.Series(list(table), dtype="string")
    return dict(zip(normalise_text(names).tolist(), table.values()))


def whole_years(born: pd.Series, at: pd.Series) -> pd.Series:
    """Age in completed years between two date Series (missing where either date is); ingest and synth share it."""
    years = at.dt.year - born.dt.year
    before_birthday = (at.dt.month < born.dt.month) | ((at.dt.month == born.dt.month) & (at.dt.day < born.dt.day))
    return (years - before_birthday).astype(float)
