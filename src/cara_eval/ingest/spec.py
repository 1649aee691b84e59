"""The data specification sent to forces, generated from CASES_SCHEMA and the mapping files.

Generated, not written by hand, so it always says what ingest actually checks and which forces
actually supply each field.
"""

import pandas as pd

from cara_eval.common.schema import CASES_SCHEMA, DERIVED_FIELDS
from cara_eval.ingest.mapping import supplied_fields

# Raw fields each canonical field is built from; a force supplies the field if it maps any of them.
RAW_SOURCES = {
    "case_id": ["crime_ref"],
    "offender_pid": ["offender_id"],
    "victim_pid": ["victim_id"],
    "age": ["offender_dob", "age"],
    "any_reoffence": ["reoffences table", "reoffended_12m"],
    "event_observed": ["reoffences table", "reoffended_12m"],
    "reoffence_count": ["reoffences table"],
    "harm": ["reoffences table"],
    "days_to_first": ["reoffences table"],
}
SPEC_COLUMNS = ["field", "dtype", "allowed_values", "meaning", "forces_supplying"]


def _allowed_values(column):
    """Allowed values or range of one schema column, as text."""
    parts = ["true, false"] if str(column.dtype) == "boolean" else []
    for check in column.checks:
        stats = check.statistics
        if check.name == "isin":
            parts.append(", ".join(stats["allowed_values"]))
        elif check.name == "in_range":
            parts.append(f"{stats['min_value']} to {stats['max_value']}")
        elif check.name == "greater_than_or_equal_to":
            parts.append(f">= {stats['min_value']}")
        elif check.name == "str_matches":
            parts.append(f"matches {stats['pattern']}")
    return "; ".join(parts)


def _forces_supplying(field, mappings):
    if field in DERIVED_FIELDS:
        return "all (derived on ingest)"
    sources = RAW_SOURCES.get(field, [field])
    forces = []
    for mapping in mappings:
        supplied = supplied_fields(mapping) | ({"reoffences table"} if mapping["reoffences"] else set())
        if supplied & set(sources):
            forces.append(mapping["force"])
    return ", ".join(sorted(forces))


def build_data_specification(mappings):
    """One row per canonical field: field, dtype, allowed_values, meaning, forces_supplying."""
    rows = []
    for name, column in CASES_SCHEMA.columns.items():
        dtype = "string" if str(column.dtype) == "str" else str(column.dtype)
        rows.append(
            {
                "field": name,
                "dtype": dtype + (", nullable" if column.nullable else ""),
                "allowed_values": _allowed_values(column),
                "meaning": column.description,
                "forces_supplying": _forces_supplying(name, mappings),
            }
        )
    return pd.DataFrame(rows, columns=SPEC_COLUMNS)


def specification_markdown(spec):
    """The specification as a Markdown table for force analysts."""
    lines = [
        "# Data specification: canonical cases table",
        "",
        "Generated from `cara_eval.common.schema.CASES_SCHEMA` and `config/forces/*.yaml`; do not edit by hand.",
        "",
        "| " + " | ".join(SPEC_COLUMNS) + " |",
        "|" + "---|" * len(SPEC_COLUMNS),
    ]
    for row in spec.itertuples(index=False):
        cells = [str(value).replace("|", "\\|") for value in row]
        lines.append("| " + " | ".join(f"`{cells[0]}`" if i == 0 else c for i, c in enumerate(cells)) + " |")
    return "\n".join(lines) + "\n"
