"""Check one force's extract against its mapping before it is sent: ``./cara validate``.

Runs the real ingest (same parsing, quarantine and eligibility rules) and prints a summary; writes
nothing. Pseudonyms are made with a throwaway key, so no pseudonymisation key is needed to validate.
Exit status: 0 readable (row-level problems are listed, not fatal), 1 structural problem: the file or
mapping cannot be read, or it reads but no case is clean, a mapped column has no value in any row,
none of a field's values could be read, or rows have a different number of fields from the header.
"""

import argparse
import secrets
import sys
from pathlib import Path

import pandas as pd
import yaml

from cara_eval.common.schema import CARA_PROCESS_FIELDS
from cara_eval.ingest.force import StructuralError, ingest_force
from cara_eval.ingest.mapping import CASE_RAW_FIELDS, MappingError, load_mapping, supplied_fields
from cara_eval.ingest.outcomes import load_harm_weights
from cara_eval.ingest.parsing import load_offence_types

EXAMPLE_ROWS = 8


def _parse_args(argv):
    parser = argparse.ArgumentParser(prog="cara validate", description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("force", nargs="?", help="force key: uses <mappings_dir>/<force>.yaml from the config")
    target.add_argument("--mapping", type=Path, help="mapping file, e.g. config/forces/dorset.yaml")
    parser.add_argument("--raw-dir", type=Path, help="folder holding <force>/<files> (default: raw_dir in config)")
    parser.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    return parser.parse_args(argv)


def _not_supplied(mapping):
    """Raw fields the force does not supply, leaving out alternatives it covers another way."""
    supplied = supplied_fields(mapping)
    alternatives = {"age": "offender_dob", "offender_dob": "age"}
    missing = [f for f in CASE_RAW_FIELDS if f not in supplied and alternatives.get(f) not in supplied]
    return [f for f in missing if not (f == "reoffended_12m" and mapping["reoffences"])]


def _missing_shares(cases):
    """Share missing of fields that can be missing by accident: CARA process fields among CARA cases only,
    and never the fields that are null by design (comparison_type, event counts of flag forces)."""
    by_design = ["comparison_type", "reoffence_count", "harm", "days_to_first", *CARA_PROCESS_FIELDS]
    shares = cases.drop(columns=by_design).isna().mean()
    shares = pd.concat([shares, cases.loc[cases["arm"] == "cara", CARA_PROCESS_FIELDS].isna().mean()])
    return shares[shares > 0].sort_values(ascending=False)


def _blank_fields(shares, mapping):
    """Fields the mapping reads from a column that is blank in every clean case: sent empty, or the wrong
    column. Undeclared, they look like data; the model leaves a field no force records out."""
    return [field for field, share in shares.items() if share == 1 and field in supplied_fields(mapping)]


def summarise(result, mapping):
    """The readable summary printed for a force analyst (counts, reasons, row numbers; no values)."""
    accounting = result.accounting.iloc[0]
    lines = [
        f"Force: {mapping['display_name']} ({mapping['force']}), mapping {mapping['path']}",
        f"Rows read: {accounting['rows_read']}",
        f"  clean (eligible): {accounting['clean']}",
    ]
    for category in ("ineligible", "quarantined"):
        lines.append(f"  {category}: {accounting[category]}")
        for column, count in accounting.items():
            if column.startswith(f"{category}:") and count:
                lines.append(f"    {column.split(':', 1)[1]}: {count}")
    problems = result.quarantine
    if len(problems):
        lines.append("Row-level problems (file, field, reason: spreadsheet rows):")
        for (file, field, reason), group in problems.groupby(["file", "field", "reason"], sort=False):
            rows = ", ".join(str(r) for r in group["row"].head(EXAMPLE_ROWS))
            more = f" and {len(group) - EXAMPLE_ROWS} more" if len(group) > EXAMPLE_ROWS else ""
            lines.append(f"  {file}, {field or '(whole row)'}, {reason}: rows {rows}{more}")
    if mapping["reoffences"]:
        lines.append(f"Later-offence rows read: {result.reoffence_rows_read}")
    lines.append(f"Fields not supplied: {', '.join(_not_supplied(mapping)) or 'none'}")
    cases = result.cases
    shares = _missing_shares(cases)
    lines.append(
        "Fields partly missing in clean cases: "
        + (", ".join(f"{field} {share:.1%}" for field, share in shares[shares < 1].items()) or "none")
    )
    blank = _blank_fields(shares, mapping)
    if blank:
        lines.append(f"Fields blank in every clean case (mapped to a column, but empty): {', '.join(blank)}; "
                     "check the column, or declare them in cases.not_supplied")
    if len(cases):
        lines.append(f"Index dates: {cases['index_date'].min():%Y-%m-%d} to {cases['index_date'].max():%Y-%m-%d}")
        lines.append("Clean cases by arm: " + ", ".join(f"{k} {v}" for k, v in cases["arm"].value_counts().items()))
    return "\n".join(lines)


def main(argv=None):
    args = _parse_args(argv)
    config = yaml.safe_load(args.config.read_text(encoding="utf-8"))
    mapping_path = args.mapping or Path(config["mappings_dir"]) / f"{args.force}.yaml"
    try:
        mapping = load_mapping(mapping_path)
        result = ingest_force(
            mapping,
            args.raw_dir or config["raw_dir"],
            load_offence_types(config["offence_types"]),
            load_harm_weights(config["harm_weights"]),
            secrets.token_bytes(32),
            config["eligibility"],
            config["outcomes"]["followup_days"],
            strict=False,
        )
    except (MappingError, StructuralError) as error:
        print(f"STRUCTURAL PROBLEM: {error}", file=sys.stderr)
        return 1
    print(summarise(result, mapping))
    for problem in result.problems:
        print(f"STRUCTURAL PROBLEM: force {mapping['force']}: {problem.message}", file=sys.stderr)
    return 1 if result.problems else 0


if __name__ == "__main__":
    sys.exit(main())
