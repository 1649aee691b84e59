"""Ingest one force: read its extract through its mapping, quarantine bad rows, pseudonymise, apply
eligibility, compute outcomes, and account for every row read.

Structural problems (missing file, sheet or column, empty or undecodable extract) raise StructuralError
naming force, file and column: the rule fails. Row-level problems send the row to quarantine with the
file, the row number a spreadsheet user sees (header = row 1), field, raw value and reason.
"""

import csv
import datetime as dt
import logging
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pyarrow.parquet as pq
import pyarrow.types as arrow_types

from cara_eval.common.schema import (
    BOOLEAN_FIELDS,
    CARA_PROCESS_FIELDS,
    CASE_FIELDS,
    CASES_SCHEMA,
    CATEGORIES,
    MAX_PRIOR_COUNT,
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
    "wrong_field_count",
    "duplicate_row",
    "duplicate_crime_ref",
    "missing_required",
    "unparseable_date",
    "partial_date",
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
COUNT_FIELDS = ["prior_da_incidents", "prior_da_convictions"]
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
    problems: list = dataclass_field(default_factory=list)  # FileProblem: what ./cara validate reports as structural


@dataclass
class RawTable:
    """One extract file as read: mapped columns under raw field names, one row per data row.

    The index is the data row's position in the file (0 = the row below the header), so a row's
    spreadsheet number is ``index + HEADER_ROWS + 1`` even when blank rows are left out.
    ``field_counts`` holds, for csv rows whose number of fields differs from the header's (values
    shifted by an unquoted delimiter, or a cut line), that number; ``header_fields`` the header's.
    """

    frame: pd.DataFrame
    field_counts: pd.Series
    header_fields: int
    blank_rows: int


@dataclass
class FileProblem:
    """A problem with a whole file or column, not one row: ``./cara validate`` reports every one as
    structural; a workflow run stops on the fatal ones (nothing usable would be left) and logs the rest."""

    message: str
    fatal: bool = False


def read_table(table, folder, force, section):
    """The mapped columns of one extract file, renamed to raw field names, all data rows in file order."""
    folder = Path(folder)
    path = folder / table["file"]
    where = f"force {force}, file {path}"
    if not path.is_file():
        raise StructuralError(f"{where}: file not found (mapping key {section}.file)")
    if not path.resolve().is_relative_to(folder.resolve()):
        raise StructuralError(f"{where}: the file links to {path.resolve()}, outside the force's folder {folder}")
    columns = {field: str(column).strip() for field, column in table["columns"].items() if column}
    encoding = table.get("encoding") or "utf-8"
    try:
        if table["format"] == "csv":
            header, records, counts, blank = _read_csv(path, encoding, table.get("delimiter") or ",")
        elif table["format"] == "excel":
            header, records, counts, blank = _read_excel(path, table.get("sheet"), where, section)
        else:
            header, records, counts, blank = _read_parquet(path, set(columns.values()), where)
    except UnicodeDecodeError as error:
        raise StructuralError(
            f"{where}: cannot be decoded as {encoding} ({error.reason} at byte {error.start}); set "
            f"{section}.encoding in the mapping (e.g. cp1252)"
        ) from error
    except StructuralError:
        raise
    except Exception as error:  # noqa: BLE001 - any failure of a file parser on a hostile file is structural
        raise StructuralError(
            f"{where}: cannot be read as {table['format']}: {type(error).__name__}: {error}"
        ) from error
    if not any(str(name).strip() for name in header):
        raise StructuralError(f"{where}: the first row is empty: the header (column names) must be on row 1")
    positions = _column_positions(header, columns, where, section)
    width = len(header)
    frame = records[[positions[field] for field in columns]].set_axis(list(columns), axis=1)
    shifted = counts.ne(width) & ~blank
    frame = frame[~blank]
    if frame.empty:
        raise StructuralError(f"{where}: the extract has no data rows")
    return RawTable(frame, counts[shifted], width, int(blank.sum()))


def _column_positions(header, columns, where, section):
    """Position of each mapped column in the header; a column absent or named twice is structural."""
    names = [str(name).strip() for name in header]
    absent, twice, positions = [], [], {}
    for field, column in columns.items():
        found = [i for i, name in enumerate(names) if name == column]
        if not found:
            absent.append(f"{field} -> column '{column}'")
        elif len(found) > 1:
            twice.append(f"'{column}' ({field}) at columns {', '.join(str(i + 1) for i in found)}")
        else:
            positions[field] = found[0]
    if absent:
        raise StructuralError(f"{where}: mapped column(s) absent from the file: {', '.join(absent)} ({section}.columns)")
    if twice:
        raise StructuralError(
            f"{where}: mapped column name(s) appear more than once in the header (spaces around names are "
            f"ignored), so which to read is unknown: {'; '.join(twice)} ({section}.columns)"
        )
    return positions


def _read_csv(path, encoding, delimiter):
    """Header and records (text) of a csv file; each record keeps its place, blank lines included.

    The csv module, not pandas, so that a row with more or fewer fields than the header is seen (pandas
    would drop extra fields silently) and a blank line keeps its row number.
    """
    with open(path, encoding=encoding, newline="") as handle:
        rows = list(csv.reader(handle, delimiter=delimiter))
    if not rows:
        return [], pd.DataFrame(), pd.Series(dtype="int64"), pd.Series(dtype=bool)
    data = rows[1:]
    header = rows[0]
    if header and header[0].startswith("\ufeff"):  # a byte-order mark before the first column name
        header[0] = header[0][1:]
    width = len(header)
    # Trailing empty fields (a delimiter at the end of a line) shift nothing: not a wrong count.
    counts = [width if len(row) > width and not any(v.strip() for v in row[width:]) else len(row) for row in data]
    blank = [not any(v.strip() for v in row) for row in data]
    fitted = [row[:width] + [""] * (width - len(row)) for row in data]
    records = pd.DataFrame(fitted, columns=range(width), dtype=object) if data else pd.DataFrame(columns=range(width))
    return header, records, pd.Series(counts, dtype="int64"), pd.Series(blank, dtype=bool)


def _read_excel(path, sheet, where, section):
    """One sheet as objects: text as text, date cells as dates (the date parser takes them as they are)."""
    try:
        frame = pd.read_excel(path, sheet_name=sheet if sheet is not None else 0, header=None, dtype=object)
    except ValueError as error:
        if "not found" not in str(error):
            raise
        try:
            sheets = f"; sheets: {openpyxl.load_workbook(path, read_only=True).sheetnames}"
        except Exception:  # noqa: BLE001 - the list of sheets is only a hint
            sheets = ""
        raise StructuralError(f"{where}: sheet '{sheet}' not found ({section}.sheet){sheets}") from error
    except IndexError as error:
        raise StructuralError(f"{where}: sheet number {sheet} not found ({section}.sheet)") from error
    if frame.empty:
        return [], pd.DataFrame(), pd.Series(dtype="int64"), pd.Series(dtype=bool)
    frame = frame.apply(lambda column: column.map(_excel_cell))
    header = ["" if name is None else str(name) for name in frame.iloc[0].tolist()]
    records = frame.iloc[1:].reset_index(drop=True).set_axis(range(frame.shape[1]), axis=1)
    blank = records.apply(lambda column: column.map(lambda v: v is None or (isinstance(v, str) and not v.strip())))
    return header, records, pd.Series(len(header), index=records.index), blank.all(axis=1)


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


# Arrow types a parquet column may have; nested or binary columns are not a field's values.
_PARQUET_TYPES = ("string", "large_string", "integer", "floating", "boolean", "date", "timestamp", "null", "dictionary")


def _read_parquet(path, wanted, where):
    schema = pq.read_schema(path)
    header = list(schema.names)
    picked = [i for i, name in enumerate(header) if name.strip() in wanted]
    for i in picked:
        kind = schema.field(i).type
        if not any(getattr(arrow_types, f"is_{t}")(kind) for t in _PARQUET_TYPES):
            raise StructuralError(f"{where}: column '{header[i]}' has type {kind}, not text, number, boolean or date")
    if len({header[i] for i in picked}) < len(picked):  # a name twice: _column_positions says so
        records = pd.DataFrame(columns=range(len(header)))
    else:
        table = pq.read_table(path, columns=[header[i] for i in picked])
        records = pd.DataFrame({i: table.column(header[i]).to_pandas() for i in picked})
        records = records.reindex(columns=range(len(header)))
    # Parquet has no blank lines; a row of nulls is a row like any other.
    return header, records, pd.Series(len(header), index=records.index), pd.Series(False, index=records.index)


class _Quarantine:
    """Row-level problems of one file, in the order found; the first per row is its accounting reason."""

    def __init__(self, raw, file_name):
        self.raw = raw
        self.file_name = file_name
        self.parts = []

    def add(self, mask, field, reason, values=None):
        """Rows in ``mask`` (any subset of the file's rows) have ``reason`` in ``field``; ``values`` replaces
        the raw value shown (for whole-row problems)."""
        if isinstance(mask, pd.Series):  # masks may cover only the readable rows
            mask = mask.reindex(self.raw.index, fill_value=False)
        else:
            mask = pd.Series(mask, index=self.raw.index)
        mask = mask.astype("boolean").fillna(False).astype(bool)
        if not mask.any():
            return
        if values is not None:
            values = pd.Series(values, index=self.raw.index).loc[mask].astype("string")
        elif field:
            values = self.raw.loc[mask, field].astype("string")
        else:
            values = pd.Series("", index=mask[mask].index)
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
    """Parse one raw field; returns (values, problems): ``problems`` names the reason for each row whose
    value was present but unreadable (<NA> where the value was read or is missing).

    The parser sees each distinct raw value once: a million rows hold a few thousand distinct dates and
    a handful of codes, so this is what keeps ingest of a national extract within a minute.
    """
    parse, reason = _parser(field, table, offence_lookup, extract_date)
    if reason is None:  # identifiers: nearly all distinct, nothing to gain
        values, _ = parse(raw)
        return values, pd.Series(pd.NA, index=raw.index, dtype="string")
    codes, distinct = pd.factorize(raw)
    values, bad = parse(pd.Series(distinct))
    if pd.api.types.is_bool_dtype(bad):
        bad = bad.map({True: reason, False: pd.NA})
    missing = pd.Series([None], dtype=values.dtype)
    values = pd.concat([values.reset_index(drop=True), missing], ignore_index=True).iloc[codes]
    problems = pd.concat([bad.astype("string").reset_index(drop=True), pd.Series([pd.NA], dtype="string")],
                         ignore_index=True).iloc[codes]
    return values.set_axis(raw.index), problems.set_axis(raw.index)


def _parse_table(raw, table, offence_lookup, extract_date, quarantine, required, problems, file_name):
    """Every mapped field parsed (names are not); row problems recorded in `quarantine`, column problems
    (a field with no usable value, a field none of whose values could be read) in `problems`.

    A required field is missing when it is blank or coded as unknown, but not when its value was
    unreadable (that row is already quarantined for the value).
    """
    quarantine.add(raw.duplicated(keep="first"), None, "duplicate_row")
    parsed, unreadable = {}, {}
    columns = table["columns"]
    for name in raw.columns.difference(NAME_FIELDS, sort=False):
        values, reasons = _parse_field(raw[name], name, table, offence_lookup, extract_date)
        for reason in reasons.dropna().unique():
            quarantine.add(reasons == reason, name, reason)
        parsed[name], unreadable[name] = values, reasons.notna()
        where = f"{file_name}, column '{columns[name]}' ({name})"
        n_read, n_bad = int(values.notna().sum()), int(unreadable[name].sum())
        if n_read == 0 and n_bad == 0:
            problems.append(FileProblem(f"{where}: no value in any row (blank or coded as unknown); list the "
                                        "field under not_supplied if the force does not record it"))
        elif n_read == 0:
            problems.append(FileProblem(f"{where}: none of the {n_bad} values present could be read "
                                        f"({', '.join(sorted(reasons.dropna().unique()))}); check the mapping's "
                                        "date format, codes or boolean codes for this field"))
    parsed = pd.DataFrame(parsed, index=raw.index)
    for name in required:
        quarantine.add(parsed[name].isna() & ~unreadable[name], name, "missing_required")
    return parsed


def _read_rows(table, folder, force, section, quarantine_file=None):
    """Read one table; rows with a wrong number of fields go to quarantine unread. Returns (raw, readable,
    quarantine, problems), where ``raw`` holds every data row and ``readable`` those with the right count."""
    spec = read_table(table, folder, force, section)
    raw = spec.frame
    quarantine = _Quarantine(raw, quarantine_file or table["file"])
    problems = []
    shifted = pd.Series(False, index=raw.index)
    shifted[spec.field_counts.index] = True
    if shifted.any():
        counts = spec.field_counts.reindex(raw.index).astype("Int64").astype("string")
        quarantine.add(shifted, None, "wrong_field_count", values=counts + f" fields (header {spec.header_fields})")
        rows = ", ".join(str(r + HEADER_ROWS + 1) for r in spec.field_counts.index[:8])
        problems.append(FileProblem(
            f"{table['file']}: {int(shifted.sum())} row(s) have a different number of fields from the header's "
            f"{spec.header_fields} (rows {rows}{' ...' if shifted.sum() > 8 else ''}): an unquoted "
            f"'{table.get('delimiter') or ','}' inside a value, or a cut line; quote such values in the export"
        ))
    return raw, raw[~shifted], quarantine, problems


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
    for field in COUNT_FIELDS:
        if field in parsed:
            count = parsed[field]
            implausible = (count < 0) | (count > MAX_PRIOR_COUNT) | (count.notna() & (count % 1 != 0))
            quarantine.add(implausible, field, "out_of_range")
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
    """Later offences with pseudonymised offender ids, the quarantine of their bad rows, and file problems."""
    force, table = mapping["force"], mapping["reoffences"]
    extract_date = mapping["design"]["extract_date"]
    raw, readable, quarantine, problems = _read_rows(table, folder, force, "reoffences")
    required = REQUIRED_REOFFENCE_FIELDS + (["da_related"] if "da_related" in raw else [])
    parsed = _parse_table(readable, table, offence_lookup, extract_date, quarantine, required, problems, table["file"])
    quarantine.add(parsed["offence_date"] > extract_date, "offence_date", "impossible_date")
    clean = parsed.drop(index=quarantine.rows(), errors="ignore")
    if clean.empty:
        # Every case would show no reoffence: a wrong outcome, not a missing one.
        problems.append(FileProblem(f"{table['file']}: every one of the {len(raw)} later-offence rows is "
                                    "quarantined, so no outcome could be counted", fatal=True))
    reoffences = pd.DataFrame(
        {
            "offender_pid": pseudonymise(clean["offender_id"], key, "offender", force),
            "offence_date": clean["offence_date"],
            "offence_type": _text(clean["offence_type"]),
            # A table without a DA flag is taken to list DA offences only.
            "da_related": clean["da_related"] if "da_related" in clean else pd.Series(True, index=clean.index),
        }
    ).astype({"da_related": "boolean"})
    return REOFFENCES_SCHEMA.validate(reoffences), quarantine.table(), len(raw), problems


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


def ingest_force(mapping, raw_dir, offence_lookup, harm_weights, key, eligibility, followup_window=365, strict=True):
    """Ingest one force's extract (``mapping`` from load_mapping); nothing is written.

    ``key`` is the pseudonymisation key (``resolve_key``); ``eligibility`` the config section. File and
    column problems are in ``result.problems``; with ``strict`` (a workflow run) a fatal one (no clean
    case, no readable later offence) raises StructuralError and the others are logged as warnings.
    """
    force, design = mapping["force"], mapping["design"]
    folder = Path(raw_dir) / force
    file_name = mapping["cases"]["file"]
    raw, readable, quarantine, problems = _read_rows(mapping["cases"], folder, force, "cases")
    required = REQUIRED_CASE_FIELDS + ([] if mapping["reoffences"] else ["reoffended_12m"])
    parsed = _parse_table(readable, mapping["cases"], offence_lookup, design["extract_date"], quarantine, required,
                          problems, file_name)
    _check_cases(parsed, design, readable.duplicated(keep="first"), quarantine)
    clean = parsed.drop(index=quarantine.rows(), errors="ignore")
    cases = _canonical_cases(clean, mapping, key)
    reasons = ineligibility_reasons(
        cases.assign(prior_da_convictions=_column(clean, "prior_da_convictions", float)), eligibility
    )
    eligible = cases[reasons.isna()].copy()
    eligible["followup_days"] = followup_days(eligible["index_date"], design["extract_date"], followup_window)
    quarantine_table = quarantine.table()
    reoffence_rows = 0
    if mapping["reoffences"]:
        reoffences, reoffence_quarantine, reoffence_rows, reoffence_problems = _ingest_reoffences(
            mapping, folder, offence_lookup, key
        )
        problems += reoffence_problems
        outcomes = event_outcomes(eligible, reoffences, harm_weights)
        quarantine_table = pd.concat([quarantine_table, reoffence_quarantine], ignore_index=True)
    else:
        outcomes = flag_outcomes(eligible, clean.loc[eligible.index, "reoffended_12m"])
    eligible = pd.concat([eligible.drop(columns="followup_days"), outcomes], axis=1)[CASE_FIELDS]
    eligible = CASES_SCHEMA.validate(eligible.reset_index(drop=True))
    accounting = _accounting(force, len(raw), len(eligible), reasons, quarantine)
    row = accounting.iloc[0]
    if eligible.empty:
        problems.append(FileProblem(
            f"{file_name}: no clean case among the {len(raw)} rows read ({row['quarantined']} quarantined, "
            f"{row['ineligible']} ineligible): {_top_reasons(row)}", fatal=True))
    log.info(
        "force %s: %d rows read, %d clean, %d ineligible, %d quarantined; %d later-offence rows read",
        force, len(raw), len(eligible), row["ineligible"], row["quarantined"], reoffence_rows,
    )
    result = IngestResult(eligible, accounting, quarantine_table, reoffence_rows, problems)
    if strict:
        _raise_or_log(result, force, folder)
    return result


def _top_reasons(accounting_row, n=3):
    counts = accounting_row[[c for c in ACCOUNTING_COLUMNS if ":" in c]]
    counts = counts[counts > 0].sort_values(ascending=False).head(n)
    return ", ".join(f"{reason} {count}" for reason, count in counts.items()) or "none"


def _raise_or_log(result, force, folder):
    for problem in result.problems:
        if not problem.fatal:
            log.warning("force %s: %s", force, problem.message)
    fatal = [problem.message for problem in result.problems if problem.fatal]
    if fatal:
        raise StructuralError(f"force {force}, folder {folder}: {'; '.join(fatal)} (./cara validate {force} lists "
                              "every problem)")


# Characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(frame):
    """Text cells that a spreadsheet would run as a formula, prefixed with ' so they show as text."""
    safe = frame.copy()
    for name in safe.columns:
        if pd.api.types.is_object_dtype(safe[name]) or pd.api.types.is_string_dtype(safe[name]):
            text = safe[name].astype("string")
            risky = text.str.startswith(FORMULA_PREFIXES).fillna(False).astype(bool)
            safe[name] = safe[name].astype(object).mask(risky, "'" + text[risky].astype(object))
    return safe


def write_result(result, cases_path, accounting_path, quarantine_path):
    """Pseudonymised cases and counts to results/; raw quarantined values only to the restricted path,
    escaped so that opening the file in a spreadsheet runs no formula. Every text cell is quoted: pandas
    leaves a lone carriage return unquoted, and a spreadsheet would start a new row (and a formula) there.
    """
    result.cases.to_parquet(cases_path, index=False)
    result.accounting.to_csv(accounting_path, index=False)
    Path(quarantine_path).parent.mkdir(parents=True, exist_ok=True)
    spreadsheet_safe(result.quarantine).to_csv(quarantine_path, index=False, quoting=csv.QUOTE_NONNUMERIC)


def combine_forces(case_paths, accounting_paths):
    """All forces' clean cases in one validated table, and their row accounting in another."""
    cases = pd.concat([pd.read_parquet(p) for p in case_paths], ignore_index=True)
    accounting = pd.concat([pd.read_csv(p) for p in accounting_paths], ignore_index=True)
    return CASES_SCHEMA.validate(cases), accounting[ACCOUNTING_COLUMNS]
