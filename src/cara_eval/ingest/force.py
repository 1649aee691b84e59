"""Ingest one force: read its extract through its mapping, quarantine bad rows, pseudonymise, apply
eligibility, compute outcomes, and account for every row read.

Structural problems (missing file, sheet or column, empty or undecodable extract) raise StructuralError
naming force, file and column: the rule fails. Row-level problems send the row to quarantine with the
file, the row number a spreadsheet user sees (header = row 1), field, raw value and reason.
"""

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pyarrow.parquet as pq

from cara_eval.common.schema import (
    BOOLEAN_FIELDS,
    CARA_PROCESS_FIELDS,
    CASE_FIELDS,
    CASES_SCHEMA,
    CATEGORIES,
    OFFENDER_AGE_RANGE,
    REOFFENCE_TYPES,
    REOFFENCES_SCHEMA,
)
from cara_eval.ingest.eligibility import REASONS as INELIGIBLE_REASONS
from cara_eval.ingest.eligibility import ineligibility_reasons
from cara_eval.ingest.mapping import NAME_FIELDS, REQUIRED_CASE_FIELDS, REQUIRED_REOFFENCE_FIELDS
from cara_eval.ingest.outcomes import event_outcomes, flag_outcomes, followup_days
from cara_eval.ingest.parsing import clean_text, parse_booleans, parse_codes, parse_dates, parse_numbers, whole_years
from cara_eval.ingest.pseudonymise import pseudonymise

log = logging.getLogger(__name__)

QUARANTINE_REASONS = [
    "duplicate_row",
    "duplicate_crime_ref",
    "missing_required",
    "unparseable_date",
    "unparseable_number",
    "unknown_code",
    "impossible_date",
    "out_of_range",
]
QUARANTINE_COLUMNS = ["file", "row", "field", "value", "reason"]
ACCOUNTING_COLUMNS = (
    ["force", "rows_read", "clean", "ineligible", "quarantined"]
    + [f"ineligible:{r}" for r in INELIGIBLE_REASONS]
    + [f"quarantined:{r}" for r in QUARANTINE_REASONS]
)
DATE_FIELDS = ["index_date", "disposal_date", "offender_dob", "offence_date"]
NUMBER_FIELDS = ["age", "prior_da_incidents", "prior_da_convictions"]
EARLIEST_INDEX_DATE = pd.Timestamp("1990-01-01")
HEADER_ROWS = 1


class StructuralError(RuntimeError):
    """The extract cannot be read as its mapping describes; nothing row-level can fix it."""


@dataclass
class IngestResult:
    """Everything one force's ingest produces; only `cases` and `accounting` may reach results/."""

    cases: pd.DataFrame
    accounting: pd.DataFrame
    quarantine: pd.DataFrame
    reoffence_rows_read: int


def read_table(table, folder, force, section):
    """The mapped columns of one extract file, renamed to raw field names, all rows in file order."""
    path = Path(folder) / table["file"]
    where = f"force {force}, file {path}"
    if not path.is_file():
        raise StructuralError(f"{where}: file not found (mapping key {section}.file)")
    columns = {field: column.strip() for field, column in table["columns"].items() if column}
    wanted = set(columns.values())
    try:
        if table["format"] == "csv":
            frame = pd.read_csv(
                path,
                sep=table.get("delimiter") or ",",
                encoding=table.get("encoding") or "utf-8",
                dtype=str,
                keep_default_na=False,
                usecols=lambda name: name.strip() in wanted,
            )
        elif table["format"] == "excel":
            frame = _read_excel(path, table.get("sheet"), where, section)
        else:
            frame = pd.read_parquet(path, columns=[c for c in pq.read_schema(path).names if c.strip() in wanted])
    except UnicodeDecodeError as error:
        raise StructuralError(
            f"{where}: cannot be decoded as {table.get('encoding') or 'utf-8'} ({error.reason} at byte "
            f"{error.start}); set {section}.encoding in the mapping (e.g. cp1252)"
        ) from error
    except (pd.errors.EmptyDataError, pd.errors.ParserError, OSError, ValueError) as error:
        raise StructuralError(f"{where}: cannot be read as {table['format']}: {error}") from error
    frame.columns = [str(name).strip() for name in frame.columns]
    absent = [f"{field} -> column '{column}'" for field, column in columns.items() if column not in frame.columns]
    if absent:
        raise StructuralError(f"{where}: mapped column(s) absent from the file: {', '.join(absent)} ({section}.columns)")
    if frame.empty:
        raise StructuralError(f"{where}: the extract has no data rows")
    return pd.DataFrame({field: frame[column] for field, column in columns.items()}).reset_index(drop=True)


def _read_excel(path, sheet, where, section):
    """One sheet as objects: text as text, date cells as dates (the date parser takes them as they are)."""
    try:
        frame = pd.read_excel(path, sheet_name=sheet if sheet is not None else 0, dtype=object)
    except ValueError as error:
        if "not found" not in str(error):
            raise
        sheets = openpyxl.load_workbook(path, read_only=True).sheetnames
        raise StructuralError(f"{where}: sheet '{sheet}' not found ({section}.sheet); sheets: {sheets}") from error
    return frame.apply(lambda column: column.map(_excel_cell))


def _excel_cell(value):
    """A cell as text; whole numbers stored as floats (3.0) read as the code a user sees (3)."""
    if isinstance(value, float):
        if np.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
    if value is None or isinstance(value, dt.date):  # datetime is a date too
        return value
    return str(value)


class _Quarantine:
    """Row-level problems of one file, in the order found; the first per row is its accounting reason."""

    def __init__(self, raw, file_name):
        self.raw = raw
        self.file_name = file_name
        self.parts = []

    def add(self, mask, field, reason):
        mask = pd.Series(mask, index=self.raw.index).fillna(False).astype(bool)
        if not mask.any():
            return
        values = self.raw.loc[mask, field].astype("string") if field else pd.Series("", index=mask[mask].index)
        self.parts.append(
            pd.DataFrame(
                {
                    "file": self.file_name,
                    "row": mask[mask].index + HEADER_ROWS + 1,
                    "field": field or "",
                    "value": values.to_numpy(),
                    "reason": reason,
                }
            )
        )

    def table(self):
        if not self.parts:
            return pd.DataFrame(columns=QUARANTINE_COLUMNS)
        problems = pd.concat(self.parts, ignore_index=True)[QUARANTINE_COLUMNS]
        return problems.sort_values("row", kind="stable", ignore_index=True)

    def rows(self):
        """Row labels (0-based) with at least one problem."""
        return pd.Index(self.table()["row"].unique() - HEADER_ROWS - 1)


def _parser(field, table, offence_lookup, extract_date):
    """The parser of one raw field, as (function of a raw Series -> (values, bad), reason for bad values)."""
    codes = (table.get("codes") or {}).get(field)
    if field in DATE_FIELDS:
        date_format = (table.get("date_formats") or {}).get(field, "iso")
        return (lambda raw: parse_dates(raw, date_format, latest=extract_date)), "unparseable_date"
    if field in NUMBER_FIELDS:
        return parse_numbers, "unparseable_number"
    if field in BOOLEAN_FIELDS + ["reoffended_12m", "da_related"]:
        return (lambda raw: parse_booleans(raw, table.get("boolean"))), "unknown_code"
    if field == "offence_type":
        return (lambda raw: parse_codes(raw, {**offence_lookup, **(codes or {})}, REOFFENCE_TYPES)), "unknown_code"
    if field in CATEGORIES:
        return (lambda raw: parse_codes(raw, codes, CATEGORIES[field])), "unknown_code"
    return (lambda raw: (clean_text(raw), pd.Series(False, index=raw.index))), None


def _parse_field(raw, field, table, offence_lookup, extract_date):
    """Parse one raw field; returns (values, bad mask, reason for bad values).

    The parser sees each distinct raw value once: a million rows hold a few thousand distinct dates and
    a handful of codes, so this is what keeps ingest of a national extract within a minute.
    """
    parse, reason = _parser(field, table, offence_lookup, extract_date)
    if reason is None:  # identifiers: nearly all distinct, nothing to gain
        return *parse(raw), reason
    codes, distinct = pd.factorize(raw)
    values, bad = parse(pd.Series(distinct))
    missing = pd.Series([None], dtype=values.dtype)
    values = pd.concat([values.reset_index(drop=True), missing], ignore_index=True).iloc[codes]
    bad = np.append(bad.to_numpy(dtype=bool), False)[codes]
    return values.set_axis(raw.index), pd.Series(bad, index=raw.index), reason


def _parse_table(raw, table, offence_lookup, extract_date, quarantine, required):
    """Every mapped field parsed (names are not); problems recorded in `quarantine`.

    A required field is missing when it is blank or coded as unknown, but not when its value was
    unreadable (that row is already quarantined for the value).
    """
    quarantine.add(raw.duplicated(keep="first"), None, "duplicate_row")
    parsed, unreadable = {}, {}
    for field in raw.columns.difference(NAME_FIELDS, sort=False):
        values, bad, reason = _parse_field(raw[field], field, table, offence_lookup, extract_date)
        quarantine.add(bad, field, reason)
        parsed[field], unreadable[field] = values, bad
    parsed = pd.DataFrame(parsed, index=raw.index)
    for field in required:
        quarantine.add(parsed[field].isna() & ~unreadable[field], field, "missing_required")
    return parsed


def _check_cases(parsed, design, exact_duplicates, quarantine):
    """Impossible dates and values, and a crime reference used by two different rows."""
    index_date, extract_date = parsed["index_date"], design["extract_date"]
    quarantine.add((index_date < EARLIEST_INDEX_DATE) | (index_date > extract_date), "index_date", "impossible_date")
    if "disposal_date" in parsed:
        disposal = parsed["disposal_date"]
        quarantine.add((disposal < index_date) | (disposal > extract_date), "disposal_date", "impossible_date")
    low, high = OFFENDER_AGE_RANGE
    if "offender_dob" in parsed:
        age_from_dob = whole_years(parsed["offender_dob"], index_date)
        quarantine.add((age_from_dob < low) | (age_from_dob > high), "offender_dob", "impossible_date")
    if "age" in parsed:
        quarantine.add((parsed["age"] < low) | (parsed["age"] > high), "age", "out_of_range")
    for field in ("prior_da_incidents", "prior_da_convictions"):
        if field in parsed:
            quarantine.add(parsed[field] < 0, field, "out_of_range")
    reused_ref = parsed["crime_ref"].notna() & parsed["crime_ref"].duplicated(keep="first") & ~exact_duplicates
    quarantine.add(reused_ref, "crime_ref", "duplicate_crime_ref")


def _column(parsed, field, dtype):
    """A parsed field, or an all-missing column when the force does not supply it."""
    if field in parsed:
        return parsed[field].astype(dtype)
    return pd.Series(None, index=parsed.index, dtype=dtype)


def _text(values):
    """Canonical text columns are plain object columns (None for missing), as CASES_SCHEMA expects."""
    return values.astype(object).where(values.notna(), None)


def _canonical_cases(parsed, mapping, key):
    """Canonical columns for parsed, valid rows: ids pseudonymised, DOB turned into age, names gone."""
    force, design = mapping["force"], mapping["design"]
    out = pd.DataFrame(index=parsed.index)
    out["case_id"] = pseudonymise(parsed["crime_ref"], key, "case", force)
    out["offender_pid"] = pseudonymise(parsed["offender_id"], key, "offender", force)
    victim_ids = _column(parsed, "victim_id", "string")
    out["victim_pid"] = pseudonymise(victim_ids, key, "victim", force)
    out["force"] = force
    out["arm"] = _text(parsed["arm"])
    is_comparison = parsed["arm"] == "comparison"
    historical = parsed["index_date"] < design["cara_start"]
    out["comparison_type"] = _text(
        pd.Series(np.where(historical, "historical", "contemporaneous"), index=parsed.index).where(is_comparison)
    )
    out["index_date"] = parsed["index_date"]
    out["disposal_date"] = _column(parsed, "disposal_date", "datetime64[ns]")
    out["period"] = parsed["index_date"].dt.year.astype("int64")
    out["offence_type"] = _text(parsed["offence_type"])
    out["dash_risk"] = _text(_column(parsed, "dash_risk", "string"))
    supplied_age = np.floor(_column(parsed, "age", float))
    if "offender_dob" in parsed:
        out["age"] = whole_years(parsed["offender_dob"], parsed["index_date"]).fillna(supplied_age)
    else:
        out["age"] = supplied_age
    for field in ("sex", "ethnicity"):
        out[field] = _text(_column(parsed, field, "string"))
    out["prior_da_incidents"] = _column(parsed, "prior_da_incidents", float)
    for field in ("victim_sex", "relationship"):
        out[field] = _text(_column(parsed, field, "string"))
    for field in BOOLEAN_FIELDS:
        out[field] = _column(parsed, field, "boolean")
    for field in CARA_PROCESS_FIELDS:
        out[field] = out[field].mask(is_comparison)
    return out


def _ingest_reoffences(mapping, folder, offence_lookup, key):
    """Later offences with pseudonymised offender ids, and the quarantine of their bad rows."""
    force, table = mapping["force"], mapping["reoffences"]
    extract_date = mapping["design"]["extract_date"]
    raw = read_table(table, folder, force, "reoffences")
    quarantine = _Quarantine(raw, table["file"])
    required = REQUIRED_REOFFENCE_FIELDS + (["da_related"] if "da_related" in raw else [])
    parsed = _parse_table(raw, table, offence_lookup, extract_date, quarantine, required)
    quarantine.add(parsed["offence_date"] > extract_date, "offence_date", "impossible_date")
    clean = parsed.drop(index=quarantine.rows())
    reoffences = pd.DataFrame(
        {
            "offender_pid": pseudonymise(clean["offender_id"], key, "offender", force),
            "offence_date": clean["offence_date"],
            "offence_type": _text(clean["offence_type"]),
            # A table without a DA flag is taken to list DA offences only.
            "da_related": clean["da_related"] if "da_related" in clean else pd.Series(True, index=clean.index),
        }
    ).astype({"da_related": "boolean"})
    return REOFFENCES_SCHEMA.validate(reoffences), quarantine.table(), len(raw)


def _accounting(force, rows_read, n_clean, reasons, quarantine):
    """One accounting row; raises if any row read is not clean, ineligible or quarantined exactly once."""
    quarantined = quarantine.table().drop_duplicates("row")["reason"].value_counts()
    ineligible = reasons.value_counts()
    row = {
        "force": force,
        "rows_read": rows_read,
        "clean": n_clean,
        "ineligible": int(reasons.notna().sum()),
        "quarantined": int(quarantined.sum()),
    }
    row.update({f"ineligible:{r}": int(ineligible.get(r, 0)) for r in INELIGIBLE_REASONS})
    row.update({f"quarantined:{r}": int(quarantined.get(r, 0)) for r in QUARANTINE_REASONS})
    if row["rows_read"] != row["clean"] + row["ineligible"] + row["quarantined"]:
        raise RuntimeError(f"force {force}: row accounting does not add up: {row}")
    return pd.DataFrame([row], columns=ACCOUNTING_COLUMNS)


def ingest_force(mapping, raw_dir, offence_lookup, harm_weights, key, eligibility, followup_window=365):
    """Ingest one force's extract (``mapping`` from load_mapping); nothing is written.

    ``key`` is the pseudonymisation key (``resolve_key``); ``eligibility`` the config section.
    """
    force, design = mapping["force"], mapping["design"]
    folder = Path(raw_dir) / force
    raw = read_table(mapping["cases"], folder, force, "cases")
    quarantine = _Quarantine(raw, mapping["cases"]["file"])
    required = REQUIRED_CASE_FIELDS + ([] if mapping["reoffences"] else ["reoffended_12m"])
    parsed = _parse_table(raw, mapping["cases"], offence_lookup, design["extract_date"], quarantine, required)
    _check_cases(parsed, design, raw.duplicated(keep="first"), quarantine)
    clean = parsed.drop(index=quarantine.rows())
    cases = _canonical_cases(clean, mapping, key)
    reasons = ineligibility_reasons(
        cases.assign(prior_da_convictions=_column(clean, "prior_da_convictions", float)), eligibility
    )
    eligible = cases[reasons.isna()].copy()
    eligible["followup_days"] = followup_days(eligible["index_date"], design["extract_date"], followup_window)
    quarantine_table = quarantine.table()
    reoffence_rows = 0
    if mapping["reoffences"]:
        reoffences, reoffence_quarantine, reoffence_rows = _ingest_reoffences(mapping, folder, offence_lookup, key)
        outcomes = event_outcomes(eligible, reoffences, harm_weights)
        quarantine_table = pd.concat([quarantine_table, reoffence_quarantine], ignore_index=True)
    else:
        outcomes = flag_outcomes(eligible, clean.loc[eligible.index, "reoffended_12m"])
    eligible = pd.concat([eligible.drop(columns="followup_days"), outcomes], axis=1)[CASE_FIELDS]
    eligible = CASES_SCHEMA.validate(eligible.reset_index(drop=True))
    accounting = _accounting(force, len(raw), len(eligible), reasons, quarantine)
    log.info(
        "force %s: %d rows read, %d clean, %d ineligible, %d quarantined; %d later-offence rows read",
        force, len(raw), len(eligible), accounting.at[0, "ineligible"], accounting.at[0, "quarantined"], reoffence_rows,
    )
    return IngestResult(eligible, accounting, quarantine_table, reoffence_rows)


def write_result(result, cases_path, accounting_path, quarantine_path):
    """Pseudonymised cases and counts to results/; raw quarantined values only to the restricted path."""
    result.cases.to_parquet(cases_path, index=False)
    result.accounting.to_csv(accounting_path, index=False)
    Path(quarantine_path).parent.mkdir(parents=True, exist_ok=True)
    result.quarantine.to_csv(quarantine_path, index=False)


def combine_forces(case_paths, accounting_paths):
    """All forces' clean cases in one validated table, and their row accounting in another."""
    cases = pd.concat([pd.read_parquet(p) for p in case_paths], ignore_index=True)
    accounting = pd.concat([pd.read_csv(p) for p in accounting_paths], ignore_index=True)
    return CASES_SCHEMA.validate(cases), accounting[ACCOUNTING_COLUMNS]
