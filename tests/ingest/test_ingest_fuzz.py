"""Hostile and careless extracts and mappings, generated: a seeded mutator over the synthetic formats.

Every case takes one force's small synthetic extract (csv utf-8 and cp1252, semicolons, an Excel
workbook with two sheets, parquet), applies one to three mutations (MUTATION_CLASSES, below), and runs
the real ingest, writes results/ and the quarantine as the workflow does, then the quality tables.
Each case must end in a result or in a MappingError / StructuralError (a clear error naming the file);
for a result: rows read = clean + ineligible + quarantined, no raw identifier anywhere under results/,
no infinite number in any results table, no formula-leading cell in the quarantine csv.

CARA_FUZZ_CASES (default 1000) and CARA_FUZZ_SEED change the run; a failure prints the case number,
force and mutations, and `run_case(n)` replays one case.
"""

import csv
import io
import os
import random
import shutil
import traceback
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from cara_eval.common.schema import CATEGORIES, REOFFENCE_TYPES
from cara_eval.ingest.force import (
    ACCOUNTING_COLUMNS,
    FORMULA_PREFIXES,
    StructuralError,
    ingest_force,
    write_result,
)
from cara_eval.ingest.mapping import MappingError, _MappingLoader, load_mapping
from cara_eval.ingest.outcomes import load_harm_weights
from cara_eval.ingest.parsing import load_offence_types
from cara_eval.quality import profile as quality
from cara_eval.synth.population import simulate_population
from cara_eval.synth.raw import write_raw_extracts

REPO = Path(__file__).resolve().parents[2]
CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
N_CASES = int(os.environ.get("CARA_FUZZ_CASES", "1000"))
SEED = int(os.environ.get("CARA_FUZZ_SEED", "16"))
N_BATCHES = 10
KEY = b"fuzz-key-" + b"k" * 32
ID_FIELDS = ["crime_ref", "offender_id", "victim_id", "offender_name", "victim_name"]
DATE_FIELDS = ["index_date", "disposal_date", "offender_dob", "offence_date"]
NUMBER_FIELDS = ["age", "prior_da_incidents", "prior_da_convictions"]


# --- the synthetic extracts every case starts from -------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Small extracts of the nine forces plus one parquet force, written once."""
    root = tmp_path_factory.mktemp("fuzz_corpus")
    population = simulate_population(300, None, SEED, n_forces=10, pseudonyms=False)
    write_raw_extracts(population, root / "raw", REPO / "config" / "forces", SEED, root / "forces")
    return root


@dataclass
class Table:
    """One mapped table of the extract as a grid: header and rows of cells, in the file's own format."""

    section: str
    header: list
    rows: list
    sheet: str | None = None
    file_format: str = "csv"
    file: str = ""
    encoding: str = "utf-8"
    delimiter: str = ","
    columns: dict | None = None  # the original mapping's columns (None: identity), whatever mutations do to it


@dataclass
class Case:
    number: int
    force: str
    mapping: dict  # as written in YAML (before load_mapping normalises it)
    folder: Path
    tables: dict = field(default_factory=dict)  # section -> Table
    byte_mutations: list = field(default_factory=list)  # (file, function) applied after the grids are written
    done: list = field(default_factory=list)  # descriptions of what was mutated
    identifiers: set = field(default_factory=set)


def _read_mapping(path):
    return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_MappingLoader)


def _columns(table_spec):
    columns = dict(table_spec.get("columns") or {})
    if table_spec.get("identity"):
        return None  # every field under its own name
    return columns


def _load_tables(case):
    for section in ("cases", "reoffences"):
        spec = case.mapping.get(section)
        if not spec:
            continue
        columns = _columns(spec)
        path = case.folder / spec["file"]
        if spec["format"] == "csv":
            with open(path, encoding=spec.get("encoding") or "utf-8", newline="") as handle:
                rows = list(csv.reader(handle, delimiter=spec.get("delimiter") or ","))
            case.tables[section] = Table(section, rows[0], rows[1:], None, "csv", spec["file"],
                                         spec.get("encoding") or "utf-8", spec.get("delimiter") or ",", columns)
        elif spec["format"] == "excel":
            sheet = openpyxl.load_workbook(path)[spec["sheet"]]
            rows = [list(row) for row in sheet.iter_rows(values_only=True)]
            case.tables[section] = Table(section, [str(v) for v in rows[0]], rows[1:], spec["sheet"], "excel",
                                         spec["file"], columns=columns)
        else:
            frame = pd.read_parquet(path)
            rows = frame.astype(object).where(frame.notna(), None).values.tolist()
            case.tables[section] = Table(section, list(frame.columns), rows, None, "parquet", spec["file"],
                                         columns=columns)


def _write_tables(case):
    """Each grid back into its file, in the format, encoding and delimiter the file had (the mapping
    may have been mutated to say otherwise)."""
    for table in case.tables.values():
        path = case.folder / table.file
        if table.file_format == "csv":
            buffer = io.StringIO(newline="")
            writer = csv.writer(buffer, delimiter=table.delimiter, lineterminator="\r\n")
            writer.writerow(table.header)
            writer.writerows(table.rows)
            path.write_bytes(buffer.getvalue().encode(table.encoding, errors="replace"))
        elif table.file_format == "excel":
            workbook = openpyxl.load_workbook(path)  # both tables may share one workbook
            if table.sheet in workbook.sheetnames:
                del workbook[table.sheet]
            sheet = workbook.create_sheet(table.sheet)
            for row in [table.header, *table.rows]:
                sheet.append([_excel_value(v) for v in row])
            workbook.save(path)
        else:
            width = len(table.header)  # a parquet row always has every column
            rows = [(list(row) + [None] * width)[:width] for row in table.rows]
            arrays = []
            for k in range(width):
                column = pd.Series([row[k] for row in rows], dtype=object)
                if column.dropna().map(type).nunique() > 1:  # mixed cells become text, as a careless export gives
                    column = column.map(lambda v: None if v is None else str(v))
                arrays.append(pa.array(column.tolist(), from_pandas=True))
            pq.write_table(pa.Table.from_arrays(arrays, names=[str(n) for n in table.header]), path)


def _excel_value(value):
    if isinstance(value, str):
        return "".join(ch for ch in value if ch >= " " or ch in "\t\n\r")[:32000]  # what a cell can hold
    return value


def _collect_identifiers(case):
    """Raw identifying values of the extract (ids and names), to be searched for under results/."""
    for table in case.tables.values():
        columns = table.columns
        names = ID_FIELDS if columns is None else [columns.get(f) for f in ID_FIELDS]
        positions = [i for i, name in enumerate(table.header) if name is not None and str(name).strip() in
                     {str(n).strip() for n in names if n}]
        for row in table.rows:
            for i in positions:
                if i < len(row) and row[i] is not None:
                    value = str(row[i]).strip()
                    if len(value) >= 6 and value.lower() not in VOCABULARY:
                        case.identifiers.add(value)


VOCABULARY = {v.lower() for values in CATEGORIES.values() for v in values} | {t.lower() for t in REOFFENCE_TYPES}


# --- mutations -------------------------------------------------------------------------------------

HOSTILE_TEXT = [
    "=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(1+1)", "\t=1", "\r=1", "=HYPERLINK(\"http://x\",\"y\")",
    "x" * 5000, "line\nbreak", 'quote"inside', "comma, inside", "semi;colon", "\u202eRTL", "emoji \U0001f600",
    "NULL", "None", "nan", "#N/A", "   ", "", "0", "-0", "Ｙ", "é", "\x00nul", "\x1b[31m", "'; DROP TABLE cases;--",
]
DATES = [
    "2022-05-19T23:59:59+05:00", "2022-05-19T23:59:59Z", "2022-05-19 10:00", "2022", "2022-05", "202205",
    "31/02/2021", "2021-02-30", "0000-00-00", "9999-12-31", "1899-12-31", "1066-10-14", "44000", "44000.5", "-1",
    "1e400", "2958465", "19/05/22", "05/19/2022", "2022-05-19T25:61", "19.05.2022", "May 19 2022", "20220519",
    "2022-W20", "tomorrow", "", " ", "N/A",
]
NUMBERS = ["inf", "-inf", "Infinity", "nan", "NaN", "1e9", "1e308", "1e-300", "2.5", "-1", "-0.0", "1,000", "0x1f",
           "+3", " 3 ", "3.0", "9" * 400, "١٢", "½", "3e", "", "N/A", "7"]
CODES = ["", " ", "Unknown", "null", "N/A", "?", "Y", "N", "Yes", "no", "TRUE", "1", "0", "2", "3", "high", "HIGH",
         "Standard ", " medium", "cara", "CARA ", "comparison", "male", "F", "Ex-Partner", "ex partner", "other",
         "Ｙ", "yes\u200b"]


def _mapped(case, section):
    """Column names in the file of each mapped raw field of one table."""
    table = case.tables[section]
    columns = table.columns
    names = [str(n).strip() for n in table.header]
    if columns is None:
        return {n: n for n in names}
    return {f: str(c).strip() for f, c in columns.items() if c and str(c).strip() in names}


def _position(table, column):
    names = [str(n).strip() for n in table.header]
    return names.index(column) if column in names else None


def _pick_table(case, rng):
    sections = list(case.tables)
    return case.tables["cases"] if len(sections) == 1 or rng.random() < 0.7 else case.tables[rng.choice(sections)]


def _set_cells(case, rng, fields, values, label):
    table = _pick_table(case, rng)
    mapped = _mapped(case, table.section)
    candidates = [f for f in fields if f in mapped] or list(mapped)
    if not table.rows or not candidates:
        return f"{label}: nothing to change"
    name = rng.choice(candidates)
    i = _position(table, mapped[name])
    rows = rng.sample(range(len(table.rows)), k=min(len(table.rows), rng.choice([1, 1, 2, 5, len(table.rows)])))
    value = rng.choice(values)
    for r in rows:
        if i < len(table.rows[r]):
            table.rows[r][i] = value if rng.random() < 0.8 else rng.choice(values)
    return f"{label}: {table.section}.{name} in {len(rows)} row(s), e.g. {value!r:.40}"


def mutate_dates(case, rng):
    return _set_cells(case, rng, DATE_FIELDS, DATES, "dates")


def mutate_numbers(case, rng):
    return _set_cells(case, rng, NUMBER_FIELDS, NUMBERS, "numbers")


def mutate_codes(case, rng):
    coded = list(CATEGORIES) + ["offence_type", "da_related", "reoffended_12m", "together_at_index",
                                "workshop1_attended", "completed", "breached", "victim_contacted"]
    return _set_cells(case, rng, coded, CODES, "codes")


def mutate_hostile_text(case, rng):
    fields = rng.choice([ID_FIELDS, DATE_FIELDS, NUMBER_FIELDS, list(CATEGORIES), ["offence_type"]])
    return _set_cells(case, rng, fields, HOSTILE_TEXT, "hostile text")


def mutate_identifiers(case, rng):
    table = case.tables["cases"]
    mapped = _mapped(case, "cases")
    if not table.rows:
        return "identifiers: no rows"
    name = rng.choice([f for f in ("crime_ref", "offender_id", "victim_id") if f in mapped] or list(mapped))
    i = _position(table, mapped[name])
    a, b = rng.randrange(len(table.rows)), rng.randrange(len(table.rows))
    how = rng.choice(["blank", "copy", "pad", "missing token", "formula"])
    value = {"blank": "", "copy": table.rows[b][i], "missing token": rng.choice(["nan", "NULL", "#N/A"]),
             "formula": "=1+1", "pad": f"  {table.rows[a][i]}  "}[how]
    table.rows[a][i] = value
    return f"identifiers: {name} of row {a + 2} -> {how}"


def mutate_rows(case, rng):
    table = _pick_table(case, rng)
    how = rng.choice(["duplicate", "delete", "blank", "shuffle", "garbage", "header only", "extra field", "short"])
    width = len(table.header)
    if how == "duplicate" and table.rows:
        table.rows.insert(rng.randrange(len(table.rows) + 1), list(rng.choice(table.rows)))
    elif how == "delete" and table.rows:
        del table.rows[rng.randrange(len(table.rows))]
    elif how == "blank":
        for _ in range(rng.choice([1, 3])):
            table.rows.insert(rng.randrange(len(table.rows) + 1), [None if table.sheet else ""] * width)
    elif how == "shuffle":
        rng.shuffle(table.rows)
    elif how == "garbage":
        table.rows.insert(rng.randrange(len(table.rows) + 1), [rng.choice(HOSTILE_TEXT) for _ in range(width)])
    elif how == "header only":
        table.rows.clear()
    elif how == "extra field" and table.rows:
        row = table.rows[rng.randrange(len(table.rows))]
        row.insert(rng.randrange(len(row) + 1), "shifted")
    elif how == "short" and table.rows:
        row = table.rows[rng.randrange(len(table.rows))]
        del row[rng.randrange(1, max(2, len(row))):]
    return f"rows: {table.section} {how}"


def mutate_columns(case, rng):
    table = _pick_table(case, rng)
    mapped = _mapped(case, table.section)
    if not mapped:
        return "columns: none mapped"
    name = rng.choice(sorted(mapped))
    i = _position(table, mapped[name])
    how = rng.choice(["blank", "drop", "duplicate", "padded duplicate", "upper case", "swap", "junk", "reorder"])
    if how == "blank":
        for row in table.rows:
            if i < len(row):
                row[i] = None if table.sheet else ""
    elif how == "drop":
        del table.header[i]
        for row in table.rows:
            del row[i:i + 1]
    elif how in ("duplicate", "padded duplicate"):
        table.header.append(f" {table.header[i]} " if how == "padded duplicate" else table.header[i])
        for row in table.rows:
            row.append(row[i] if i < len(row) else None)
    elif how == "upper case":
        table.header[i] = str(table.header[i]).upper() + ("_" if str(table.header[i]).isupper() else "")
    elif how == "swap":
        j = _position(table, mapped[rng.choice(sorted(mapped))])
        for row in table.rows:
            if max(i, j) < len(row):
                row[i], row[j] = row[j], row[i]
    elif how == "junk":
        table.header.insert(i, "Junk")
        for row in table.rows:
            row.insert(i, rng.choice(HOSTILE_TEXT))
    elif how == "reorder":
        order = list(range(len(table.header)))
        rng.shuffle(order)
        table.header = [table.header[k] for k in order]
        table.rows = [[row[k] if k < len(row) else None for k in order] for row in table.rows]
    return f"columns: {table.section}.{name} {how}"


def _csv_text_edit(case, rng, section):
    table = case.tables[section]
    delimiter = table.delimiter
    how = rng.choice(["unquoted delimiter", "unclosed quote", "cut line", "bom", "lf", "wrong encoding", "nul",
                      "truncate", "empty", "binary"])

    def edit(path):
        data = path.read_bytes()
        encoding = table.encoding
        lines = data.split(b"\r\n")
        k = rng.randrange(1, max(2, len(lines) - 1))
        if how == "unquoted delimiter" and len(lines) > 2:
            cut = rng.randrange(len(lines[k]) + 1)
            lines[k] = lines[k][:cut] + delimiter.encode() + lines[k][cut:]
        elif how == "unclosed quote" and len(lines) > 2:
            lines[k] = lines[k] + b'"'
        elif how == "cut line" and len(lines) > 2:
            lines[k] = lines[k][: rng.randrange(len(lines[k]) + 1)]
        elif how == "bom":
            lines[0] = "\ufeff".encode(encoding, errors="replace") + lines[0]
        elif how == "lf":
            return path.write_bytes(b"\n".join(lines))
        elif how == "wrong encoding":
            other = "cp1252" if encoding.lower().replace("-", "") == "utf8" else "utf-8"
            lines[k] = lines[k] + "Zoë £ Siân".encode(other)
        elif how == "nul":
            lines[k] = lines[k] + b"\x00"
        elif how == "truncate":
            return path.write_bytes(data[: rng.randrange(len(data) + 1)])
        elif how == "empty":
            return path.write_bytes(b"")
        elif how == "binary":
            return path.write_bytes(bytes(random.Random(case.number).randrange(256) for _ in range(2000)))
        path.write_bytes(b"\r\n".join(lines))

    return edit, how


def mutate_file_bytes(case, rng):
    section = rng.choice(list(case.tables))
    if case.tables[section].file_format == "csv":
        edit, how = _csv_text_edit(case, rng, section)
    else:
        how = rng.choice(["truncate", "zip of text", "csv text", "empty", "garbage tail"])

        def edit(path, how=how):
            data = path.read_bytes()
            if how == "truncate":
                path.write_bytes(data[: rng.randrange(len(data))])
            elif how == "zip of text":
                buffer = io.BytesIO()
                with zipfile.ZipFile(buffer, "w") as archive:
                    archive.writestr("notes.txt", "not a workbook")
                path.write_bytes(buffer.getvalue())
            elif how == "csv text":
                path.write_bytes(b"a,b,c\n1,2,3\n")
            elif how == "empty":
                path.write_bytes(b"")
            else:
                path.write_bytes(data + b"\x00garbage" * 10)
    case.byte_mutations.append((case.folder / case.tables[section].file, edit))
    return f"file bytes: {case.tables[section].file} {how}"


def mutate_mapping(case, rng):
    section = rng.choice([s for s in case.tables if case.mapping.get(s)])
    spec = case.mapping[section]
    how = rng.choice([
        "absolute file", "parent file", "sub-folder file", "unknown encoding", "other encoding", "delimiter",
        "bad directive", "partial format", "format for a non-date", "wrong format", "non-canonical code",
        "codes for a non-coded field", "colliding codes", "boolean overlap", "not_supplied required",
        "not_supplied optional", "absent column", "two fields one column", "ids into a category", "missing sheet",
        "sheet number", "extract before start", "not a date", "no reoffences", "identity", "code to null",
    ])
    columns = spec.get("columns") or {}
    if how == "absolute file":
        spec["file"] = str((case.folder / spec["file"]).resolve())
    elif how == "parent file":
        spec["file"] = f"../{case.force}/{spec['file']}"
    elif how == "sub-folder file":
        spec["file"] = f"sub/{spec['file']}"
    elif how == "unknown encoding":
        spec["encoding"] = rng.choice(["utf-99", "rot13", "base64", ""])
    elif how == "other encoding":
        spec["encoding"] = rng.choice(["utf-16", "latin-1", "ascii", "cp1252", "utf-8"])
    elif how == "delimiter":
        spec["delimiter"] = rng.choice([";", "\t", "|", '"', " "])
    elif how in ("bad directive", "partial format", "format for a non-date", "wrong format"):
        formats = spec.setdefault("date_formats", {}) or {}
        spec["date_formats"] = formats
        target = rng.choice([f for f in DATE_FIELDS if columns.get(f)] or ["index_date"])
        if how == "format for a non-date":
            formats[rng.choice(["arm", "sex", "age"] if section == "cases" else ["offence_type"])] = "%d/%m/%Y"
        else:
            formats[target] = {"bad directive": "%Q/%m/%Y", "partial format": rng.choice(["%Y", "%Y-%m", "%m/%Y"]),
                               "wrong format": rng.choice(["%m/%d/%Y", "iso", "excel_serial", "%d/%m/%y"])}[how]
    elif how in ("non-canonical code", "codes for a non-coded field", "colliding codes", "code to null"):
        codes = spec.setdefault("codes", {}) or {}
        spec["codes"] = codes
        if how == "non-canonical code":
            codes.setdefault("arm" if section == "cases" else "offence_type", {})["Simple Caution"] = "comparisonn"
        elif how == "codes for a non-coded field":
            codes["index_date" if section == "cases" else "offence_date"] = {"x": "y"}
        elif how == "colliding codes":
            field_codes = codes.setdefault("offence_type", {})
            field_codes.update({"Assault": "common_assault", "ASSAULT": "harassment"})
        else:
            codes.setdefault("offence_type", {})[rng.choice(["Common Assault", "Harassment", "Battery"])] = None
    elif how == "boolean overlap":
        spec["boolean"] = {True: ["Y", "Yes", "1"], False: ["N", "yes", "0"]}
    elif how.startswith("not_supplied"):
        options = ["crime_ref", "index_date", "arm"] if how.endswith("required") else ["sex", "dash_risk", "age"]
        spec["not_supplied"] = list(spec.get("not_supplied") or []) + [rng.choice(options)]
        if section == "reoffences":
            spec["not_supplied"] = ["offence_date"]
    elif how == "absent column" and columns:
        columns[rng.choice(sorted(f for f in columns if columns[f]) or ["x"])] = "No Such Column"
    elif how == "two fields one column" and columns.get("offender_id"):
        columns["victim_id"] = columns["offender_id"]
    elif how == "ids into a category" and columns.get("crime_ref") and section == "cases":
        columns["sex"] = columns["crime_ref"]
    elif how == "missing sheet":
        spec["sheet"] = "No Such Sheet"
    elif how == "sheet number":
        spec["sheet"] = rng.choice([0, 5])
    elif how == "extract before start":
        case.mapping["design"]["extract_date"] = "2010-01-01"
    elif how == "not a date":
        case.mapping["design"]["cara_start"] = rng.choice(["soon", "2019-13-01", 20190401])
    elif how == "no reoffences":
        case.mapping["reoffences"] = None
    elif how == "identity":
        spec["identity"] = True
    return f"mapping: {section} {how}"


MUTATION_CLASSES = {
    "dates": mutate_dates,
    "numbers": mutate_numbers,
    "codes": mutate_codes,
    "hostile_text": mutate_hostile_text,
    "identifiers": mutate_identifiers,
    "rows": mutate_rows,
    "columns": mutate_columns,
    "file_bytes": mutate_file_bytes,
    "mapping": mutate_mapping,
}


# --- one case --------------------------------------------------------------------------------------


@dataclass
class Outcome:
    case: Case
    classes: list
    result: object = None
    error: str | None = None  # the documented error's message
    failure: str | None = None  # anything else: the test fails


def build_case(number, corpus, workdir):
    rng = random.Random(f"{SEED}:{number}")
    forces = sorted(p.stem for p in (corpus / "forces").glob("*.yaml"))
    force = forces[number % len(forces)]
    folder = workdir / "raw" / force
    shutil.rmtree(workdir, ignore_errors=True)
    shutil.copytree(corpus / "raw" / force, folder)
    (workdir / "forces").mkdir(parents=True)
    case = Case(number, force, _read_mapping(corpus / "forces" / f"{force}.yaml"), folder)
    _load_tables(case)
    _collect_identifiers(case)
    names = list(MUTATION_CLASSES)
    classes = [names[number % len(names)]] + rng.sample(names, k=rng.choice([0, 1, 2]))
    for name in classes:
        case.done.append(MUTATION_CLASSES[name](case, rng))
    _collect_identifiers(case)
    _write_tables(case)
    for path, edit in case.byte_mutations:
        if path.exists():
            edit(path)
    (workdir / "forces" / f"{force}.yaml").write_text(yaml.safe_dump(case.mapping, sort_keys=False), encoding="utf-8")
    return case, classes


def run_case(number, corpus, workdir):
    """Build and ingest one case; the outcome says how it ended (failure set = the test must fail)."""
    case, classes = build_case(number, corpus, workdir)
    outcome = Outcome(case, classes)
    try:
        mapping = load_mapping(workdir / "forces" / f"{case.force}.yaml")
        outcome.result = ingest_force(
            mapping, workdir / "raw", OFFENCES, HARM_WEIGHTS, KEY, CONFIG["eligibility"],
            CONFIG["outcomes"]["followup_days"],
        )
    except (MappingError, StructuralError) as error:
        outcome.error = str(error)
        if not str(error).strip():
            outcome.failure = f"{type(error).__name__} without a message"
        return outcome
    except Exception:  # noqa: BLE001 - exactly what the test is looking for
        outcome.failure = traceback.format_exc(limit=-6)
        return outcome
    try:
        _check_result(outcome, workdir)
    except AssertionError as error:
        outcome.failure = f"{error}"
    except Exception:  # noqa: BLE001
        outcome.failure = traceback.format_exc(limit=-6)
    return outcome


OFFENCES = load_offence_types(REPO / "config" / "offence_types.yaml")
HARM_WEIGHTS = load_harm_weights(REPO / "config" / "harm_weights.csv")


def _check_result(outcome, workdir):
    result, force = outcome.result, outcome.case.force
    row = result.accounting.iloc[0]
    assert row["rows_read"] == row["clean"] + row["ineligible"] + row["quarantined"], f"accounting: {dict(row)}"
    reasons = [c for c in ACCOUNTING_COLUMNS if ":" in c]
    assert row[[c for c in reasons if c.startswith("quarantined:")]].sum() == row["quarantined"]
    assert row[[c for c in reasons if c.startswith("ineligible:")]].sum() == row["ineligible"]
    assert len(result.cases) == row["clean"] > 0
    results = workdir / "results"
    (results / "ingest").mkdir(parents=True, exist_ok=True)
    quarantine = workdir / "restricted" / "quarantine" / f"{force}.csv"
    write_result(result, results / "ingest" / f"{force}.parquet", results / "ingest" / f"{force}.accounting.csv",
                 quarantine)
    with open(quarantine, encoding="utf-8", newline="") as handle:
        cells = [cell for line in csv.reader(handle) for cell in line]
    risky = [cell for cell in cells if cell.startswith(FORMULA_PREFIXES)]
    assert not risky, f"formula-leading cells in the quarantine csv: {risky[:3]}"
    check_results_folder(results, outcome.case.identifiers)


def check_results_folder(results, identifiers):
    """No raw identifier in any cell (or, for id-like values, inside any cell); no infinite number."""
    id_like = [value for value in identifiers if any(ch.isdigit() for ch in value) and len(value) >= 8]
    for path in sorted(results.rglob("*")):
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif path.suffix == ".csv":
            frame = pd.read_csv(path, dtype=object, keep_default_na=False)
            numeric = pd.read_csv(path)
            values = numeric.select_dtypes("number").to_numpy(dtype=float)
            assert not np.isinf(values).any(), f"{path.name}: infinite number"
            text = path.read_text(encoding="utf-8")
            assert "inf" not in {c.strip().lower().lstrip("+-") for c in frame.to_numpy().ravel()}, f"{path.name}: inf"
            leaked = [value for value in id_like if value in text]
            assert not leaked, f"{path.name}: raw identifier(s) {leaked[:3]}"
        else:
            continue
        numbers = frame.select_dtypes("number").to_numpy(dtype=float)
        assert not np.isinf(numbers).any(), f"{path.name}: infinite number"
        strings = {str(v).strip() for column in frame.columns for v in frame[column].dropna()
                   if isinstance(v, str)} | {str(c).strip() for c in frame.columns}
        leaked = sorted(strings & identifiers) + [v for v in id_like if any(v in s for s in strings)]
        assert not leaked, f"{path.name}: raw identifier(s) {leaked[:3]}"


def _quality_tables(outcomes, results, mapping_paths):
    """The quality stage's tables over every ingested case of a batch, each case as its own force."""
    frames, accounting, designs = [], [], {}
    for outcome in outcomes:
        key = f"case_{outcome.case.number}"
        frames.append(outcome.result.cases.assign(force=key))
        accounting.append(outcome.result.accounting.assign(force=key))
        designs[key] = quality.ForceDesign(pd.Timestamp("2019-04-01"), frozenset(mapping_paths.get(outcome.case.number, ())))
    cases = pd.concat(frames, ignore_index=True)
    folder = results / "quality"
    folder.mkdir(parents=True, exist_ok=True)
    quality.completeness(cases, designs).to_csv(folder / "completeness.csv", index=False)
    quality.reasons(pd.concat(accounting, ignore_index=True)).to_csv(folder / "reasons.csv", index=False)
    quality.followup_coverage(cases, 365).to_csv(folder / "followup_coverage.csv", index=False)
    quality.cohort_sizes(cases).to_csv(folder / "cohort_sizes.csv", index=False)
    quality.case_mix(cases).to_csv(folder / "case_mix.csv", index=False)
    quality.process_measures(cases, designs).to_csv(folder / "process_measures.csv", index=False)


def _describe(outcome):
    case = outcome.case
    return (f"case {case.number} (force {case.force}, CARA_FUZZ_SEED={SEED}): {'; '.join(case.done)}\n"
            f"{outcome.failure}")


BATCH_TALLY = {}


@pytest.mark.parametrize("batch", range(N_BATCHES))
def test_mutated_extracts_end_in_a_result_or_a_clear_error(batch, corpus, tmp_path):
    numbers = range(batch * N_CASES // N_BATCHES, (batch + 1) * N_CASES // N_BATCHES)
    outcomes, failures = [], []
    for number in numbers:
        outcome = run_case(number, corpus, tmp_path / "case")
        outcomes.append(outcome)
        if outcome.failure:
            failures.append(_describe(outcome))
    ingested = [o for o in outcomes if o.result is not None and not o.failure]
    not_supplied = {o.case.number: (o.case.mapping["cases"].get("not_supplied") or []) for o in ingested}
    identifiers = set().union(*(o.case.identifiers for o in ingested)) if ingested else set()
    results = tmp_path / "quality_results"
    try:
        _quality_tables(ingested, results, not_supplied)
        check_results_folder(results, identifiers)
    except Exception:  # noqa: BLE001 - find the case: one at a time
        for outcome in ingested:
            try:
                shutil.rmtree(results, ignore_errors=True)
                _quality_tables([outcome], results, not_supplied)
                check_results_folder(results, outcome.case.identifiers)
            except Exception:  # noqa: BLE001
                outcome.failure = "quality stage: " + traceback.format_exc(limit=-6)
                failures.append(_describe(outcome))
    BATCH_TALLY[batch] = outcomes
    assert not failures, f"{len(failures)} of {len(outcomes)} cases failed:\n\n" + "\n\n".join(failures[:5])


def test_every_mutation_class_ran_and_both_outcomes_occurred():
    """The batches above ran the promised number of cases, every class often, with results and errors."""
    outcomes = [o for batch in BATCH_TALLY.values() for o in batch]
    if len(BATCH_TALLY) < N_BATCHES:
        pytest.skip("runs after the batches (run the whole file)")
    assert len(outcomes) == N_CASES
    counts = pd.Series([name for o in outcomes for name in set(o.classes)]).value_counts()
    assert set(counts.index) == set(MUTATION_CLASSES) and counts.min() >= N_CASES // len(MUTATION_CLASSES)
    ingested = sum(o.result is not None for o in outcomes)
    assert 0.2 * N_CASES < ingested < 0.95 * N_CASES, f"{ingested} of {N_CASES} cases ingested"
    assert {o.case.force for o in outcomes} >= {"norfolk", "force_10", "west_yorkshire", "leicestershire"}


def test_readme_records_the_case_count_and_the_mutation_classes():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"{1000:,} generated cases" in readme
    for name in MUTATION_CLASSES:
        assert f"`{name}`" in readme, name
