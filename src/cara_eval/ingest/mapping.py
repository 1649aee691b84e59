"""Force mapping files (config/forces/<force>.yaml): load, check against the documented format, normalise.

The format is documented in docs/contracts.md. Errors name the mapping file and the offending key, so a
force analyst can fix a mapping without reading code.
"""

import codecs
import re
from pathlib import Path

import jsonschema
import pandas as pd
import yaml

from cara_eval.common.schema import BOOLEAN_FIELDS, CATEGORIES, REOFFENCE_TYPES
from cara_eval.ingest.parsing import date_format_problem, normalise_code

CASE_RAW_FIELDS = [
    "crime_ref",
    "offender_id",
    "offender_name",
    "offender_dob",
    "victim_id",
    "victim_name",
    "index_date",
    "disposal_date",
    "arm",
    "offence_type",
    "dash_risk",
    "age",
    "sex",
    "ethnicity",
    "prior_da_incidents",
    "prior_da_convictions",
    "victim_sex",
    "relationship",
    *BOOLEAN_FIELDS,
    "reoffended_12m",
]
REOFFENCE_RAW_FIELDS = ["offender_id", "offence_date", "offence_type", "da_related", "crime_ref"]
REQUIRED_CASE_FIELDS = ["crime_ref", "offender_id", "index_date", "arm", "offence_type"]
REQUIRED_REOFFENCE_FIELDS = ["offender_id", "offence_date", "offence_type"]
# Identifying raw fields: read only to pseudonymise (ids) or derive age (dob), or dropped (names).
NAME_FIELDS = ["offender_name", "victim_name"]


class MappingError(ValueError):
    """A mapping file does not follow the documented format."""


class _MappingLoader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false are booleans, so codes such as Yes, No, Y, N, On stay text."""


_MappingLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_MappingLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _table_schema(fields):
    nullable_text = {"type": ["string", "null"]}
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["file", "format"],
        "properties": {
            "file": {"type": "string", "minLength": 1},
            "format": {"enum": ["csv", "excel", "parquet"]},
            "encoding": {"type": "string"},
            "delimiter": {"type": "string", "minLength": 1, "maxLength": 1},
            "sheet": {"type": ["string", "integer", "null"]},
            "identity": {"type": "boolean"},
            "columns": {
                "type": ["object", "null"],
                "additionalProperties": False,
                "properties": {field: nullable_text for field in fields},
            },
            "codes": {
                "type": ["object", "null"],
                "propertyNames": {"enum": fields},
                "additionalProperties": {"type": "object", "additionalProperties": nullable_text},
            },
            "boolean": {
                "type": ["object", "null"],
                "additionalProperties": False,
                "required": ["true", "false"],
                "properties": {
                    "true": {"type": "array", "items": {"type": "string"}},
                    "false": {"type": "array", "items": {"type": "string"}},
                },
            },
            "date_formats": {
                "type": ["object", "null"],
                "propertyNames": {"enum": fields},
                "additionalProperties": {"type": "string", "minLength": 1},
            },
            "not_supplied": {"type": ["array", "null"], "items": {"enum": fields}},
        },
    }


MAPPING_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["force", "synthetic", "design", "cases"],
    "properties": {
        "force": {"type": "string", "pattern": "^[a-z0-9_]+$"},
        "display_name": {"type": "string"},
        "synthetic": {"type": "boolean"},
        "design": {
            "type": "object",
            "additionalProperties": False,
            "required": ["cara_start", "extract_date", "comparison"],
            "properties": {
                "cara_start": {},
                "extract_date": {},
                "comparison": {"enum": ["historical", "contemporaneous", "both"]},
            },
        },
        "cases": _table_schema(CASE_RAW_FIELDS),
        "reoffences": {"oneOf": [{"type": "null"}, _table_schema(REOFFENCE_RAW_FIELDS)]},
    },
}


def _as_text(value):
    """Codes written unquoted in YAML (1, 2) are still codes as the file shows them."""
    return value if value is None or isinstance(value, str) else str(value)


def _textify_codes(table):
    """Make every raw code a string before validation, so `1: standard` and `"1": standard` agree."""
    if isinstance(table.get("codes"), dict):
        table["codes"] = {
            field: {_as_text(raw): value for raw, value in (codes or {}).items()}
            for field, codes in table["codes"].items()
        }
    if isinstance(table.get("boolean"), dict):
        table["boolean"] = {
            str(key).lower(): [_as_text(v) for v in (values or [])] for key, values in table["boolean"].items()
        }


# Under `identity: true` these are mapped only when named explicitly (they exclude each other or a table).
_OPTIONAL_IDENTITY = {"reoffended_12m", "offender_dob", "offender_name", "victim_name"}


def _complete_columns(table, fields, has_reoffences_table):
    """Every raw field gets a column name or None; `identity: true` maps each supplied field to itself."""
    not_supplied = set(table.get("not_supplied") or [])
    columns = dict.fromkeys(fields)
    if table.get("identity"):
        columns.update({f: f for f in fields if f not in not_supplied and f not in _OPTIONAL_IDENTITY})
        if not has_reoffences_table and "reoffended_12m" in fields:
            columns["reoffended_12m"] = "reoffended_12m"
    columns.update(table.get("columns") or {})
    # A field declared never recorded is not read, even if a column is named for it.
    columns.update(dict.fromkeys(not_supplied & set(fields)))
    return columns


def _fail(path, key, message):
    raise MappingError(f"mapping {path}: key '{key}': {message}")


# Raw fields read as dates, booleans or codes (the only ones `date_formats`, `boolean` and `codes` apply to).
DATE_RAW_FIELDS = {"index_date", "disposal_date", "offender_dob", "offence_date"}
CODED_RAW_FIELDS = {**CATEGORIES, "offence_type": REOFFENCE_TYPES}
# Characters the csv reader cannot take as a field delimiter.
_BAD_DELIMITERS = {'"', "\r", "\n"}


def _check_file(path, section, table):
    """The extract must be a file directly in data/raw/<force>/: no folder, no absolute path, no `..`.

    Only that folder's files are inputs of the force's ingest job (a change there reruns it), and only
    that folder is meant to hold the force's personal data.
    """
    name = table["file"]
    if name != name.strip() or name in (".", "..") or any(sep in name for sep in ("/", "\\")) or ":" in name:
        _fail(path, f"{section}.file", f"'{name}' must be a plain file name inside the force's raw folder "
              "(<raw_dir>/<force>/), without folders, '..' or an absolute path")


def _check_encoding(path, section, table):
    encoding = table.get("encoding")
    if encoding is None:
        return
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        _fail(path, f"{section}.encoding", f"unknown text encoding '{encoding}' (e.g. utf-8, cp1252, latin-1)")
    if not getattr(codec, "_is_text_encoding", True):
        _fail(path, f"{section}.encoding", f"'{encoding}' is not a text encoding")


def _check_delimiter(path, section, table):
    if table.get("delimiter") in _BAD_DELIMITERS:
        _fail(path, f"{section}.delimiter", f"{table['delimiter']!r} cannot separate fields")


def _check_date_formats(path, section, table):
    for field, date_format in (table.get("date_formats") or {}).items():
        if field not in DATE_RAW_FIELDS:
            _fail(path, f"{section}.date_formats.{field}", f"'{field}' is not a date field")
        problem = date_format_problem(date_format)
        if problem:
            _fail(path, f"{section}.date_formats.{field}", problem)


def _check_codes(path, section, table):
    """Codes translate into canonical values only, and never two ways at once."""
    for field, codes in (table.get("codes") or {}).items():
        if field not in CODED_RAW_FIELDS:
            hint = " (booleans use the `boolean` key)" if field in BOOLEAN_FIELDS + ["reoffended_12m", "da_related"] else ""
            _fail(path, f"{section}.codes.{field}", f"'{field}' is not a coded field{hint}")
        allowed = CODED_RAW_FIELDS[field]
        seen = {}
        for raw_code, value in (codes or {}).items():
            if value is not None and value not in allowed:
                _fail(path, f"{section}.codes.{field}", f"code '{raw_code}' maps to '{value}', which is not one "
                      f"of the canonical values {allowed} (or null for 'recorded as unknown')")
            key = normalise_code(raw_code)
            if key in seen and seen[key][1] != value:
                _fail(path, f"{section}.codes.{field}", f"codes '{seen[key][0]}' and '{raw_code}' are the same code "
                      f"(case and punctuation are ignored) but map to '{seen[key][1]}' and '{value}'")
            seen[key] = (raw_code, value)
    boolean = table.get("boolean") or {}
    true_codes = {str(v).strip().lower() for v in boolean.get("true") or []}
    both = sorted(true_codes & {str(v).strip().lower() for v in boolean.get("false") or []})
    if both:
        _fail(path, f"{section}.boolean", f"code(s) {both} are listed as both true and false")


def load_mapping(path):
    """Read, validate and normalise one mapping file; raises MappingError naming the file and key."""
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_MappingLoader)
    except (OSError, yaml.YAMLError) as error:
        raise MappingError(f"mapping {path}: cannot be read as YAML: {error}") from error
    if not isinstance(raw, dict):
        raise MappingError(f"mapping {path}: expected a YAML mapping at the top level")
    for section in ("cases", "reoffences"):
        if isinstance(raw.get(section), dict):
            _textify_codes(raw[section])
    errors = sorted(jsonschema.Draft202012Validator(MAPPING_SCHEMA).iter_errors(raw), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        _fail(path, ".".join(str(p) for p in first.absolute_path) or "(top level)", first.message)
    if raw["force"] != path.stem:
        _fail(path, "force", f"'{raw['force']}' must equal the file name stem '{path.stem}'")
    for section in ("cases", "reoffences"):
        if raw.get(section):
            for check in (_check_file, _check_encoding, _check_delimiter, _check_date_formats, _check_codes):
                check(path, section, raw[section])
    for key in ("cara_start", "extract_date"):
        try:
            raw["design"][key] = pd.Timestamp(raw["design"][key])
        except (TypeError, ValueError) as error:
            _fail(path, f"design.{key}", f"not a date: {error}")

    has_reoffences_table = bool(raw.get("reoffences"))
    raw["cases"]["columns"] = _complete_columns(raw["cases"], CASE_RAW_FIELDS, has_reoffences_table)
    required = list(REQUIRED_CASE_FIELDS)
    if has_reoffences_table:
        raw["reoffences"]["columns"] = _complete_columns(raw["reoffences"], REOFFENCE_RAW_FIELDS, True)
        for field in REQUIRED_REOFFENCE_FIELDS:
            if not raw["reoffences"]["columns"][field]:
                _fail(path, f"reoffences.columns.{field}", "is required")
    else:
        raw["reoffences"] = None
        required.append("reoffended_12m")
    for field in required:
        if not raw["cases"]["columns"][field]:
            hint = " (no reoffences table, so the pre-counted flag is needed)" if field == "reoffended_12m" else ""
            _fail(path, f"cases.columns.{field}", f"is required{hint}")
    raw.setdefault("display_name", raw["force"])
    raw["path"] = str(path)
    return raw


def supplied_fields(mapping):
    """Raw case fields this force supplies: mapped to a column (fields in `not_supplied` never are)."""
    return {field for field, column in mapping["cases"]["columns"].items() if column}
