"""Hostile and careless extracts and mappings, one by one (issue 16): each ends in a quarantined row with
a reason, or in a clear error naming the file (and row, field or key); none in a traceback or a silently
wrong value. tests/ingest/test_ingest_fuzz.py generates many more such cases."""

import csv
import io
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cara_eval.ingest.force import StructuralError, ingest_force, write_result
from cara_eval.ingest.mapping import MappingError, _MappingLoader, load_mapping
from cara_eval.ingest.outcomes import load_harm_weights
from cara_eval.ingest.parsing import load_offence_types, parse_dates, parse_numbers
from cara_eval.ingest.validate import main as validate

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "ingest"
CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
OFFENCES = load_offence_types(FIXTURES / "offence_types.yaml")


def alpha(tmp_path):
    """The alpha fixture copied to tmp_path/raw, and its mapping as written (YAML 1.2: Y/N stay codes)."""
    shutil.copytree(FIXTURES / "raw" / "alpha", tmp_path / "raw" / "alpha")
    return yaml.load((FIXTURES / "forces" / "alpha.yaml").read_text(), Loader=_MappingLoader)


def mapping_file(tmp_path, mapping):
    (tmp_path / "forces").mkdir(exist_ok=True)
    path = tmp_path / "forces" / f"{mapping['force']}.yaml"
    path.write_text(yaml.safe_dump(mapping, sort_keys=False))
    return path


def ingest(tmp_path, mapping, strict=True):
    return ingest_force(load_mapping(mapping_file(tmp_path, mapping)), tmp_path / "raw", OFFENCES, load_harm_weights(),
                        b"a-test-key-of-enough-length", CONFIG["eligibility"], strict=strict)


def cases_csv(tmp_path):
    return tmp_path / "raw" / "alpha" / "alpha_cases.csv"


def edit_rows(tmp_path, edit):
    """Rewrite alpha's cases file through ``edit(header, rows)`` (lists of text)."""
    with open(cases_csv(tmp_path), encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    header, data = rows[0], rows[1:]
    edit(header, data)
    with open(cases_csv(tmp_path), "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([header, *data])


def set_cell(column, crime_ref, value):
    def edit(header, rows):
        for row in rows:
            if row[0] == crime_ref:
                row[header.index(column)] = value
    return edit


def problems(result, file="alpha_cases.csv"):
    rows = result.quarantine[result.quarantine["file"] == file]
    return set(rows[["row", "field", "reason"]].itertuples(index=False, name=None))


# --- dates and numbers -------------------------------------------------------------------------------


def test_iso_dates_with_time_zone_keep_the_written_date_and_partial_dates_are_quarantined(tmp_path):
    values = pd.Series(["2022-05-19T23:59:59+05:00", "2022-05-19T10:00Z", "2022", "2022-05", "2022-05-19", ""])
    dates, bad = parse_dates(values, "iso")
    assert dates[:2].tolist() == [pd.Timestamp("2022-05-19")] * 2 and dates[4] == pd.Timestamp("2022-05-19")
    assert bad.fillna("").tolist() == ["", "", "partial_date", "partial_date", "", ""]
    mixed, bad_mixed = parse_dates(pd.Series(["19/05/2022 +0100", "19/05/2022 -0500"]), "%d/%m/%Y %z")
    assert mixed.tolist() == [pd.Timestamp("2022-05-19")] * 2 and bad_mixed.isna().all()

    mapping = alpha(tmp_path)
    mapping["cases"]["date_formats"]["index_date"] = "iso"

    def to_iso(header, rows):
        i = header.index("Offence Date")
        for row in rows:
            parsed = pd.to_datetime(row[i], format="%d/%m/%Y", errors="coerce")
            row[i] = row[i] if pd.isna(parsed) else f"{parsed:%Y-%m-%d}"
        rows[0][i] = "2020-06-05T23:59:59+05:00"  # CR001, row 2
        rows[4][i] = "2021"  # CR004, row 6
        rows[5][i] = "2021-07"  # row 7

    edit_rows(tmp_path, to_iso)
    result = ingest(tmp_path, mapping)
    assert {(6, "index_date", "partial_date"), (7, "index_date", "partial_date")} <= problems(result)
    assert result.accounting.at[0, "quarantined:partial_date"] == 2
    assert pd.Timestamp("2020-06-05") in set(result.cases["index_date"])


def test_infinite_huge_and_fractional_counts_are_quarantined(tmp_path):
    numbers, bad = parse_numbers(pd.Series(["inf", "-inf", "nan", "1e999", "2"]))
    assert bad.tolist() == [True, True, False, True, False] and numbers.isna().tolist() == [True] * 4 + [False]
    mapping = alpha(tmp_path)
    for crime_ref, value in [("CR002", "inf"), ("CR003", "1e9"), ("CR014", "2.5")]:
        edit_rows(tmp_path, set_cell("Prior DA", crime_ref, value))
    result = ingest(tmp_path, mapping)
    found = {(field, reason) for _, field, reason in problems(result) if field == "prior_da_incidents"}
    assert found == {("prior_da_incidents", "unparseable_number"), ("prior_da_incidents", "out_of_range")}
    assert len(result.quarantine.query("field == 'prior_da_incidents'")) == 3
    assert result.cases["prior_da_incidents"].dropna().map(float.is_integer).all()


# --- rows and columns --------------------------------------------------------------------------------


def test_blank_lines_keep_spreadsheet_row_numbers(tmp_path):
    mapping = alpha(tmp_path)
    before = problems(ingest(tmp_path, mapping))
    lines = cases_csv(tmp_path).read_text(encoding="utf-8").split("\n")
    cases_csv(tmp_path).write_text("\n".join(lines[:2] + ["", ""] + lines[2:]), encoding="utf-8")
    after = ingest(tmp_path, mapping)
    assert problems(after) == {(row + 2 if row > 2 else row, field, reason) for row, field, reason in before}
    assert after.accounting.at[0, "rows_read"] == 15


def test_unquoted_delimiter_quarantines_the_row_and_is_a_file_problem(tmp_path):
    mapping = alpha(tmp_path)
    text = cases_csv(tmp_path).read_text(encoding="utf-8").replace("John Doe,14/03/85", "Doe, John,14/03/85", 1)
    cases_csv(tmp_path).write_text(text, encoding="utf-8")
    result = ingest(tmp_path, mapping)
    shifted = result.quarantine.query("reason == 'wrong_field_count'")
    assert shifted[["row", "value"]].values.tolist() == [[2, "25 fields (header 24)"]]
    assert result.accounting.at[0, "quarantined:wrong_field_count"] == 1
    assert any("different number of fields" in p.message and "rows 2" in p.message for p in result.problems)


@pytest.mark.parametrize("extra", ["Nominal", " Nominal "])
def test_a_mapped_column_named_twice_is_structural(tmp_path, extra):
    mapping = alpha(tmp_path)

    def add(header, rows):
        header.append(extra)
        for row in rows:
            row.append("N999")

    edit_rows(tmp_path, add)
    with pytest.raises(StructuralError, match=r"alpha_cases\.csv: mapped column name\(s\) appear more than once.*"
                                              r"'Nominal' \(offender_id\) at columns 2, 25"):
        ingest(tmp_path, mapping)


def test_truncated_workbook_and_zip_that_is_no_workbook_are_structural(tmp_path):
    mapping = alpha(tmp_path)
    frame = pd.read_csv(cases_csv(tmp_path), dtype=str)
    in_csv = problems(ingest(tmp_path, mapping))
    workbook = tmp_path / "raw" / "alpha" / "alpha.xlsx"
    blank_row = pd.DataFrame([[None] * frame.shape[1]], columns=frame.columns)
    pd.concat([frame.iloc[:1], blank_row, frame.iloc[1:]]).to_excel(workbook, index=False)
    mapping["cases"].update(file="alpha.xlsx", format="excel", sheet=None)
    result = ingest(tmp_path, mapping)
    assert result.accounting.at[0, "rows_read"] == 15  # the blank sheet row is no case, and keeps row numbers:
    assert problems(result, "alpha.xlsx") == {(row + 1 if row > 2 else row, f, r) for row, f, r in in_csv}
    workbook.write_bytes(workbook.read_bytes()[:2000])
    with pytest.raises(StructuralError, match=r"alpha\.xlsx: cannot be read as excel"):
        ingest(tmp_path, mapping)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes.txt", "not a workbook")
    workbook.write_bytes(buffer.getvalue())
    with pytest.raises(StructuralError, match=r"alpha\.xlsx: cannot be read as excel"):
        ingest(tmp_path, mapping)


# --- whole-file problems: a workflow run stops, validate exits 1 ---------------------------------------


def analyst_config(tmp_path):
    config = dict(CONFIG, offence_types=str(FIXTURES / "offence_types.yaml"))
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def validate_alpha(tmp_path, mapping, capsys):
    status = validate(["--mapping", str(mapping_file(tmp_path, mapping)), "--raw-dir", str(tmp_path / "raw"),
                       "--config", analyst_config(tmp_path)])
    out, err = capsys.readouterr()
    return status, out, err


def test_every_row_quarantined_stops_the_run_and_fails_validate(tmp_path, capsys):
    mapping = alpha(tmp_path)
    mapping["cases"]["date_formats"]["index_date"] = "%m-%d-%Y"  # a wrong format: no date can be read
    with pytest.raises(StructuralError, match=r"force alpha.*alpha_cases\.csv: no clean case among the 15 rows"):
        ingest(tmp_path, mapping)
    status, out, err = validate_alpha(tmp_path, mapping, capsys)
    assert status == 1 and "Rows read: 15" in out and "clean (eligible): 0" in out
    assert "no clean case" in err and "column 'Offence Date' (index_date): none of the 15 values" in err


def test_a_blank_column_and_shifted_rows_fail_validate(tmp_path, capsys):
    mapping = alpha(tmp_path)
    assert validate_alpha(tmp_path, mapping, capsys)[0] == 0

    def blank(header, rows):
        for row in rows:
            row[header.index("Ethnicity")] = ""

    edit_rows(tmp_path, blank)
    status, _, err = validate_alpha(tmp_path, mapping, capsys)
    assert status == 1 and "column 'Ethnicity' (ethnicity): no value in any row" in err
    assert ingest(tmp_path, mapping).cases["ethnicity"].isna().all()  # a run goes on (the quality profile shows it)
    text = cases_csv(tmp_path).read_text(encoding="utf-8").replace("Jane Doe", "Doe, Jane", 1)
    cases_csv(tmp_path).write_text(text, encoding="utf-8")
    status, _, err = validate_alpha(tmp_path, mapping, capsys)
    assert status == 1 and "1 row(s) have a different number of fields" in err


def test_every_later_offence_quarantined_stops_the_run(tmp_path):
    mapping = alpha(tmp_path)
    mapping["reoffences"]["date_formats"]["offence_date"] = "%Y.%m.%d"
    with pytest.raises(StructuralError, match=r"alpha_reoffences\.csv: every one of the \d+ later-offence rows"):
        ingest(tmp_path, mapping)


# --- mappings ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "key", "message"),
    [
        (lambda m: m["cases"]["codes"]["arm"].update({"Simple Caution": "comparisonn"}), "cases.codes.arm",
         "maps to 'comparisonn', which is not one of the canonical values"),
        (lambda m: m["cases"]["codes"].update({"together_at_index": {"Y": "yes"}}), "cases.codes.together_at_index",
         "not a coded field (booleans use the `boolean` key)"),
        (lambda m: m["cases"]["codes"]["arm"].update({"cara": "comparison"}), "cases.codes.arm",
         "'CARA' and 'cara' are the same code"),
        (lambda m: m["cases"].update(boolean={True: ["Y", "1"], False: ["N", "y"]}), "cases.boolean",
         "listed as both true and false"),
        (lambda m: m["cases"]["date_formats"].update(index_date="%d/%Q/%Y"), "cases.date_formats.index_date",
         "unknown directive"),
        (lambda m: m["cases"]["date_formats"].update(index_date="%Y-%m"), "cases.date_formats.index_date",
         "does not fix the day"),
        (lambda m: m["cases"]["date_formats"].update(arm="%d/%m/%Y"), "cases.date_formats.arm", "not a date field"),
        (lambda m: m["cases"].update(encoding="utf-99"), "cases.encoding", "unknown text encoding 'utf-99'"),
        (lambda m: m["cases"].update(encoding="base64"), "cases.encoding", "not a text encoding"),
        (lambda m: m["cases"].update(file="/etc/passwd"), "cases.file", "must be a plain file name"),
        (lambda m: m["cases"].update(file="../beta/beta_cases.csv"), "cases.file", "must be a plain file name"),
        (lambda m: m["reoffences"].update(file="sub/alpha_reoffences.csv"), "reoffences.file", "plain file name"),
        (lambda m: m["cases"].update(delimiter='"'), "cases.delimiter", "cannot separate fields"),
    ],
)
def test_mapping_mistakes_are_refused_naming_the_key(tmp_path, change, key, message):
    mapping = alpha(tmp_path)
    change(mapping)
    with pytest.raises(MappingError) as error:
        load_mapping(mapping_file(tmp_path, mapping))
    assert f"key '{key}'" in str(error.value) and message in str(error.value)


def test_a_file_linking_outside_the_force_folder_is_refused(tmp_path):
    mapping = alpha(tmp_path)
    outside = tmp_path / "elsewhere.csv"
    shutil.copy(cases_csv(tmp_path), outside)
    (tmp_path / "raw" / "alpha" / "linked.csv").symlink_to(outside)
    mapping["cases"]["file"] = "linked.csv"
    with pytest.raises(StructuralError, match=r"links to .*elsewhere\.csv, outside the force's folder"):
        ingest(tmp_path, mapping)


# --- the quarantine file opens safely in a spreadsheet -----------------------------------------------


def test_quarantine_csv_escapes_formulas_and_quotes_line_breaks(tmp_path):
    mapping = alpha(tmp_path)
    edit_rows(tmp_path, set_cell("Disposal", "CR001", "=cmd|' /C calc'!A0"))
    edit_rows(tmp_path, set_cell("Sex", "CR002", "\r=1+1"))
    edit_rows(tmp_path, set_cell("Ethnicity", "CR003", "@SUM(A1)"))
    result = ingest(tmp_path, mapping)
    path = tmp_path / "restricted" / "quarantine" / "alpha.csv"
    write_result(result, tmp_path / "cases.parquet", tmp_path / "accounting.csv", path)
    with open(path, encoding="utf-8", newline="") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]
    assert "'=cmd|' /C calc'!A0" in cells and "'\r=1+1" in cells and "'@SUM(A1)" in cells
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert "\r=1+1" in set(result.quarantine["value"])  # the result itself keeps the raw value
