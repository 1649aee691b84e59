"""Vectorised parsers from raw extract columns to canonical values.

Each parser returns ``(values, bad)``: the parsed Series and a mask of rows whose raw value was present
but could not be read (for dates, the reason itself: ``unparseable_date`` or ``partial_date``), so the
caller can quarantine exactly those rows. Raw columns arrive as text
(csv), mixed cells (excel) or typed columns (parquet); all three are accepted.
"""

import datetime as dt
import re
import warnings

import numpy as np
import pandas as pd
import yaml

MISSING_TOKENS = ["", "na", "n/a", "nan", "null", "none", "#n/a"]
EXCEL_EPOCH = pd.Timestamp("1899-12-30")
# Largest serial pandas can add to the epoch (a timedelta of 292 years, so 2192); Excel's limit (9999) overflows.
EXCEL_MAX_SERIAL = pd.Timedelta.max.days
DEFAULT_BOOLEAN_CODES = {"true": ["y", "yes", "1", "true"], "false": ["n", "no", "0", "false"]}


def clean_text(raw):
    """Raw values as stripped text, with blanks and the usual missing tokens as <NA>."""
    if pd.api.types.is_float_dtype(raw) and (raw.dropna() % 1 == 0).all():
        raw = raw.astype("Int64")
    text = raw.astype("string").str.strip()
    return text.mask(text.str.lower().isin(MISSING_TOKENS))


def normalise_text(values):
    """Lower case, punctuation removed, spaces collapsed: 'Common Assault/Battery ' -> 'common assault battery'."""
    return _on_distinct(values, normalise_code)


def normalise_code(value):
    """One code as compared: lower case, punctuation removed, spaces collapsed."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", str(value).lower()).split())


def _on_distinct(text, function):
    """Apply a Python function once per distinct value: extracts repeat the same few codes a million times."""
    codes, uniques = pd.factorize(text)
    mapped = pd.array([function(v) for v in uniques] + [pd.NA], dtype="string")
    return pd.Series(mapped[codes], index=text.index)


# ISO 8601 as forces export it: a full calendar date, optionally a time and a UTC offset. The date is
# taken as written (the wall-clock date of the record, as for a typed timestamp with a time zone); the
# offset is never used to move the date.
_ISO_FULL = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2}|\d{8})"
    r"(?P<time>[T ]\d{2}(?::?\d{2}(?::?\d{2}(?:[.,]\d+)?)?)?)?"
    r"(?P<zone>\s?(?:Z|[+-]\d{2}(?::?\d{2})?))?"
)
# A year, or a year and month, alone: a partial date, never read as the 1st of January or of the month.
_ISO_PARTIAL = re.compile(r"\d{4}(?:-?\d{2})?")
PARTIAL_DATE = "partial_date"


def _iso_dates(text):
    """ISO dates as (dates, partial mask); time and offset ignored, partial dates NaT."""
    parts = text.str.extract(_ISO_FULL.pattern.join(["^", "$"]))
    date_text = parts["date"].str.replace("-", "", regex=False)
    clock = parts["time"].fillna("").str.strip().str.lstrip("T").str.replace(":", "", regex=False)
    # Validate the time part too (25:99 is no time), then keep the calendar date as written.
    seconds = clock.str.split(r"[.,]", n=1, regex=True).str[0].str.pad(6, side="right", fillchar="0")
    stamp = (date_text + seconds.where(clock.ne(""), "000000")).where(date_text.notna())
    parsed = pd.to_datetime(stamp, format="%Y%m%d%H%M%S", errors="coerce")
    partial = parts["date"].isna() & text.str.fullmatch(_ISO_PARTIAL.pattern).fillna(False).astype(bool)
    return parsed, partial


def _strftime_dates(text, date_format):
    """Dates in a strftime format; values carrying their own offset (%z) keep their wall-clock date."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas warns before it gives up on mixed offsets
            parsed = pd.to_datetime(text, format=date_format, errors="coerce")
        if pd.api.types.is_datetime64_any_dtype(parsed):
            return _naive(parsed)
    except (ValueError, TypeError, OverflowError):
        pass  # mixed offsets or an unusual value: one at a time below
    return text.map(lambda value: _one_date(value, date_format)).astype("datetime64[ns]")


def _one_date(value, date_format):
    if pd.isna(value):
        return pd.NaT
    try:
        stamp = pd.to_datetime(value, format=date_format)
    except (ValueError, TypeError, OverflowError):
        return pd.NaT
    return stamp.tz_localize(None) if stamp.tzinfo is not None else stamp


def _naive(values):
    """Typed timestamps without their time zone: the wall-clock date as recorded."""
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_localize(None)
    return values.astype("datetime64[ns]")


def parse_dates(raw, date_format="iso", latest=None):
    """Dates from text in a strftime format, 'iso' or 'excel_serial'; cells that already hold dates pass.

    Two-digit years (%y) that would land after ``latest`` (e.g. the extract date) belong to the previous
    century, so a date of birth '03/05/61' is 1961, not 2061. Returns ``(dates, bad)`` where ``bad`` is
    a text Series of reasons (``unparseable_date``, or ``partial_date`` for an ISO year or year-month
    alone), <NA> where the value was read or missing. Times of day and UTC offsets are dropped: the date
    is the calendar date as written.
    """
    no_problem = pd.Series(pd.NA, index=raw.index, dtype="string")
    if pd.api.types.is_datetime64_any_dtype(raw):
        return _naive(raw).dt.normalize(), no_problem
    native = raw.map(lambda v: isinstance(v, dt.date)) if pd.api.types.is_object_dtype(raw) else None
    text = clean_text(raw if native is None else raw.mask(native))
    partial = pd.Series(False, index=raw.index)
    if date_format == "excel_serial":
        serial = pd.to_numeric(text, errors="coerce")
        parsed = EXCEL_EPOCH + pd.to_timedelta(serial.where(serial.between(1, EXCEL_MAX_SERIAL)).astype(float), unit="D")
    elif date_format == "iso":
        parsed, partial = _iso_dates(text)
    else:
        parsed = _strftime_dates(text, date_format)
    parsed = pd.Series(parsed, index=raw.index).astype("datetime64[ns]")
    if native is not None and native.any():
        cells = [_native_date(value) for value in raw[native]]
        parsed[native] = pd.Series(cells, index=raw.index[native], dtype="datetime64[ns]")
    if "%y" in date_format and latest is not None:
        too_late = parsed > latest
        parsed[too_late] = parsed[too_late] - pd.DateOffset(years=100)
    present = text.notna() | (native if native is not None else False)
    problems = no_problem.mask(present & parsed.isna(), "unparseable_date").mask(partial, PARTIAL_DATE)
    return parsed.dt.normalize(), problems


def _native_date(value):
    """A date cell (Excel) as a naive timestamp; out-of-range years become NaT."""
    try:
        stamp = pd.Timestamp(value)
        return (stamp.tz_localize(None) if stamp.tzinfo is not None else stamp).as_unit("ns")
    except (ValueError, OverflowError):  # OutOfBoundsDatetime is a ValueError
        return pd.NaT


def parse_numbers(raw):
    """Numbers as float; text that is not a number, and infinite or NaN numbers, are bad."""
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        numbers = raw.astype(float)
        return numbers.where(np.isfinite(numbers)), pd.Series(np.isinf(numbers), index=raw.index)
    text = clean_text(raw)
    numbers = pd.to_numeric(text, errors="coerce").astype(float)
    numbers = numbers.where(np.isfinite(numbers))
    return numbers, text.notna() & numbers.isna()


# strptime directives, and the ones that fix each part of a full calendar date.
_DIRECTIVES = set("aAwdbBmyYHIpMSfzZjUWcxXGuV%")
_DATE_PARTS = {"year": set("yYG"), "month": set("bBm"), "day": set("dj")}


def date_format_problem(date_format):
    """Why a mapping's date format cannot be used (text), or None.

    'iso' and 'excel_serial' are always fine; a strftime format must use only known directives and fix
    a full date (year, month and day, or year and day of year): a partial date is never completed.
    """
    if date_format in ("iso", "excel_serial"):
        return None
    directives = re.findall(r"%(.?)", date_format)
    unknown = sorted({d for d in directives if d not in _DIRECTIVES})
    if unknown:
        return f"'{date_format}' uses unknown directive(s) {', '.join('%' + d for d in unknown)}"
    used = set(directives)
    missing = [part for part, options in _DATE_PARTS.items() if not used & options]
    if "j" in used:  # day of the year fixes month and day
        missing = [part for part in missing if part == "year"]
    if missing:
        return (f"'{date_format}' does not fix the {' and '.join(missing)}: dates must be full dates "
                "(a year or month alone is never read as the 1st)")
    try:
        pd.to_datetime(pd.Series(["not a date"]), format=date_format, errors="coerce")
    except ValueError as error:
        return f"'{date_format}' is not a usable date format: {error}"
    return None


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
