"""Ingest on handcrafted extracts: parsing, encodings, quarantine, eligibility, accounting, structural errors."""

import datetime as dt
import shutil
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import yaml

from cara_eval.common.schema import CASE_FIELDS, CASES_SCHEMA
from cara_eval.ingest.force import ACCOUNTING_COLUMNS, StructuralError, combine_forces, ingest_force, write_result
from cara_eval.ingest.mapping import MappingError, load_mapping
from cara_eval.ingest.outcomes import load_harm_weights
from cara_eval.ingest.parsing import load_offence_types
from cara_eval.ingest.pseudonymise import pseudonymise

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "ingest"
CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
KEY = CONFIG["pseudonymisation"]["synthetic_test_key"].encode()
OFFENCES = load_offence_types(FIXTURES / "offence_types.yaml")


def ingest(mapping_path, raw_dir=FIXTURES / "raw"):
    mapping = load_mapping(mapping_path)
    return ingest_force(mapping, raw_dir, OFFENCES, load_harm_weights(), KEY, CONFIG["eligibility"])


def case_id(force, crime_ref):
    return pseudonymise(pd.Series([crime_ref]), KEY, "case", force).iloc[0]


def write_mapping(folder, mapping):
    path = Path(folder) / f"{mapping['force']}.yaml"
    path.write_text(yaml.safe_dump(mapping, sort_keys=False))
    return path


def alpha_mapping():
    return yaml.safe_load((FIXTURES / "forces" / "alpha.yaml").read_text())


@pytest.fixture(scope="module")
def alpha():
    return ingest(FIXTURES / "forces" / "alpha.yaml")


def test_alpha_row_accounting_adds_up_with_each_reason(alpha):
    row = alpha.accounting.iloc[0]
    assert list(alpha.accounting.columns) == ACCOUNTING_COLUMNS
    assert (row["rows_read"], row["clean"], row["ineligible"], row["quarantined"]) == (15, 3, 5, 7)
    assert row["ineligible:offence_type_not_eligible"] == 1  # sexual assault
    assert row["ineligible:dash_risk_not_eligible"] == 1  # DASH 3 = high
    assert row["ineligible:under_min_age"] == 1  # DOB 01/01/04: 16 at index
    assert row["ineligible:prior_da_conviction"] == 1
    assert row["ineligible:repeat_offender"] == 1  # N100 again in 2021
    assert row["quarantined:unknown_code"] == 3
    assert row[[c for c in ACCOUNTING_COLUMNS if c.startswith("quarantined:")]].sum() == 7


def test_quarantine_names_file_spreadsheet_row_field_value_and_reason(alpha):
    cases = alpha.quarantine[alpha.quarantine["file"] == "alpha_cases.csv"]
    got = set(cases[["row", "field", "value", "reason"]].itertuples(index=False, name=None))
    assert got == {
        (4, "index_date", "31/02/2020", "unparseable_date"),
        (5, "", "", "duplicate_row"),
        (10, "disposal_date", "01/10/2020", "impossible_date"),
        (11, "arm", "Restorative", "unknown_code"),
        (13, "offence_type", "Burglary", "unknown_code"),
        (14, "together_at_index", "maybe", "unknown_code"),
        (16, "offender_id", "", "missing_required"),
    }
    later = alpha.quarantine[alpha.quarantine["file"] == "alpha_reoffences.csv"]
    assert later[["row", "field", "value", "reason"]].values.tolist() == [[10, "offence_date", "32/13/2020", "unparseable_date"]]


def test_alpha_clean_cases_are_parsed_and_canonical(alpha):
    cases = alpha.cases.set_index("case_id")
    assert list(alpha.cases.columns) == CASE_FIELDS
    first = cases.loc[case_id("alpha", "CR001")]
    assert first["index_date"] == pd.Timestamp("2020-06-05")
    assert first["age"] == 35  # DOB 14/03/85: two-digit year in the 1900s, birthday before the index
    assert (first["arm"], first["dash_risk"], first["sex"], first["relationship"]) == (
        "cara", "standard", "male", "current_partner")
    assert first["comparison_type"] is None and first["breached"] == False  # noqa: E712
    second = cases.loc[case_id("alpha", "CR002")]
    assert (second["arm"], second["comparison_type"], second["offence_type"]) == (
        "comparison", "historical", "criminal_damage")
    assert second["relationship"] == "ex_partner"  # "Ex-partner" matches the canonical value
    assert pd.isna(second["workshop1_attended"])
    last = cases.loc[case_id("alpha", "CR014")]
    assert (last["followup_days"], last["reoffence_count"], last["days_to_first"]) == (1, 1, 1)


def test_alpha_outcomes_count_only_da_events_inside_each_window(alpha):
    cases = alpha.cases.set_index("case_id")
    first = cases.loc[case_id("alpha", "CR001")]
    # Events on days 0 (the index), 364, 365, 366 and one before the index: only 364 and 365 count.
    assert (first["reoffence_count"], first["harm"], first["days_to_first"]) == (2, 2 + 15, 364)
    comparison = cases.loc[case_id("alpha", "CR002")]
    # A non-DA offence is ignored; a DA offence on day 365 counts.
    assert (comparison["reoffence_count"], comparison["days_to_first"]) == (1, 365)
    assert cases["outcome_source"].eq("events").all()


def test_cp1252_semicolon_flag_only_force():
    beta = ingest(FIXTURES / "forces" / "beta.yaml")
    row = beta.accounting.iloc[0]
    assert (row["rows_read"], row["clean"], row["ineligible"], row["quarantined"]) == (6, 2, 1, 3)
    assert row["quarantined:missing_required"] == row["quarantined:unparseable_date"] == row["quarantined:out_of_range"] == 1
    assert row["ineligible:under_min_age"] == 1
    cases = beta.cases.set_index("case_id")
    b1 = cases.loc[case_id("beta", "B1")]
    assert (b1["age"], b1["dash_risk"], b1["outcome_source"], b1["any_reoffence"]) == (34, "standard", "flag", True)
    assert cases[["reoffence_count", "harm", "days_to_first"]].isna().all().all()
    assert cases["ethnicity"].isna().all()  # not supplied by this force
    assert set(beta.quarantine["row"]) == {4, 6, 5}  # 6: age 2 is out of range


def test_undecodable_file_is_structural_and_names_force_file_and_setting(tmp_path):
    mapping = yaml.safe_load((FIXTURES / "forces" / "beta.yaml").read_text())
    mapping["cases"]["encoding"] = "utf-8"
    with pytest.raises(StructuralError, match=r"force beta, file .*beta_cases\.csv.*utf-8.*cases\.encoding"):
        ingest(write_mapping(tmp_path, mapping))


def test_missing_file_and_absent_column_are_structural(tmp_path):
    mapping = alpha_mapping()
    mapping["cases"]["file"] = "nope.csv"
    with pytest.raises(StructuralError, match=r"force alpha, file .*nope\.csv: file not found"):
        ingest(write_mapping(tmp_path, mapping))
    mapping = alpha_mapping()
    mapping["cases"]["columns"]["sex"] = "Gender"
    with pytest.raises(StructuralError, match=r"force alpha, file .*alpha_cases\.csv.*sex -> column 'Gender'"):
        ingest(write_mapping(tmp_path, mapping))


def test_empty_extract_is_structural(tmp_path):
    (tmp_path / "raw" / "alpha").mkdir(parents=True)
    header = (FIXTURES / "raw" / "alpha" / "alpha_cases.csv").read_text(encoding="utf-8").splitlines()[0]
    (tmp_path / "raw" / "alpha" / "alpha_cases.csv").write_text(header + "\n", encoding="utf-8")
    with pytest.raises(StructuralError, match="alpha_cases.csv: the extract has no data rows"):
        ingest(FIXTURES / "forces" / "alpha.yaml", tmp_path / "raw")


def test_mapping_errors_name_file_and_key(tmp_path):
    mapping = alpha_mapping()
    mapping["cases"]["format"] = "sas"
    with pytest.raises(MappingError, match=r"alpha\.yaml: key 'cases\.format'"):
        load_mapping(write_mapping(tmp_path, mapping))
    mapping = alpha_mapping()
    mapping["cases"]["columns"]["shoe_size"] = "Shoes"
    with pytest.raises(MappingError, match=r"key 'cases\.columns'.*shoe_size"):
        load_mapping(write_mapping(tmp_path, mapping))
    mapping = alpha_mapping()
    del mapping["cases"]["columns"]["index_date"]
    with pytest.raises(MappingError, match=r"key 'cases\.columns\.index_date': is required"):
        load_mapping(write_mapping(tmp_path, mapping))
    mapping = alpha_mapping()
    del mapping["reoffences"]
    with pytest.raises(MappingError, match="reoffended_12m.*pre-counted flag"):
        load_mapping(write_mapping(tmp_path, mapping))
    path = write_mapping(tmp_path, alpha_mapping())
    with pytest.raises(MappingError, match=r"key 'force': 'alpha' must equal the file name stem 'other'"):
        load_mapping(path.rename(tmp_path / "other.yaml"))


def test_unquoted_yes_no_codes_stay_text(tmp_path):
    text = (FIXTURES / "forces" / "beta.yaml").read_text().replace("[Yes]", "[Yes, On]")
    path = tmp_path / "beta.yaml"
    path.write_text(text)
    mapping = load_mapping(path)
    assert mapping["cases"]["boolean"] == {"true": ["Yes", "On"], "false": ["No"]}
    assert load_mapping(FIXTURES / "forces" / "alpha.yaml")["cases"]["codes"]["dash_risk"]["3"] == "high"


def excel_force(tmp_path):
    """Gamma: a workbook with a notes sheet first, then cases (real date cells, Excel serials) and later offences."""
    folder = tmp_path / "raw" / "gamma"
    folder.mkdir(parents=True)
    book = openpyxl.Workbook()
    book.active.title = "Notes"
    book.active.append(["Extract for the CARA evaluation"])
    cases = book.create_sheet("Cases")
    cases.append(["Ref", "PNC", "Offence Date", "Disposal Serial", "Outcome", "Offence", "DASH", "Age", "Together"])
    cases.append(["G1", "PNC1", dt.datetime(2021, 3, 1), 44265, "CARA", "assault by beating", 1, 30, 1])
    cases.append(["G2", "PNC2", dt.datetime(2022, 1, 10), 44571, "Other OOCD", "Harassment", 2, 41.0, 0])
    cases.append(["G1", "PNC1", dt.datetime(2021, 3, 1), 44265, "CARA", "assault by beating", 1, 30, 1])
    cases.append(["G4", "PNC4", "not a date", 44571, "CARA", "Harassment", 1, 25, 0])
    later = book.create_sheet("Later")
    later.append(["PNC", "When", "Type", "DA"])
    later.append(["PNC1", dt.datetime(2021, 3, 11), "Assault occasioning ABH", 1])
    later.append(["PNC2", dt.datetime(2022, 2, 1), "Harassment", 0])
    book.save(folder / "gamma.xlsx")
    mapping = {
        "force": "gamma", "synthetic": True,
        "design": {"cara_start": "2020-01-01", "extract_date": "2023-06-30", "comparison": "contemporaneous"},
        "cases": {
            "file": "gamma.xlsx", "format": "excel", "sheet": "Cases",
            "columns": {"crime_ref": "Ref", "offender_id": "PNC", "index_date": "Offence Date",
                        "disposal_date": "Disposal Serial", "arm": "Outcome", "offence_type": "Offence",
                        "dash_risk": "DASH", "age": "Age", "together_at_index": "Together"},
            "codes": {"arm": {"Other OOCD": "comparison"}, "dash_risk": {"1": "standard", "2": "medium"}},
            "boolean": {"true": ["1"], "false": ["0"]},
            "date_formats": {"index_date": "%d/%m/%Y", "disposal_date": "excel_serial"},
        },
        "reoffences": {
            "file": "gamma.xlsx", "format": "excel", "sheet": "Later",
            "columns": {"offender_id": "PNC", "offence_date": "When", "offence_type": "Type", "da_related": "DA"},
            "boolean": {"true": ["1"], "false": ["0"]},
        },
    }
    (tmp_path / "forces").mkdir()
    return write_mapping(tmp_path / "forces", mapping), mapping


def test_excel_workbook_with_two_sheets(tmp_path):
    path, _ = excel_force(tmp_path)
    result = ingest(path, tmp_path / "raw")
    row = result.accounting.iloc[0]
    assert (row["rows_read"], row["clean"], row["quarantined"]) == (4, 2, 2)
    assert set(result.quarantine[["row", "reason"]].itertuples(index=False, name=None)) == {
        (4, "duplicate_row"), (5, "unparseable_date")}
    cases = result.cases.set_index("case_id")
    g1, g2 = cases.loc[case_id("gamma", "G1")], cases.loc[case_id("gamma", "G2")]
    assert g1["disposal_date"] == pd.Timestamp("2021-03-10")  # serial 44265
    assert (g1["offence_type"], g1["dash_risk"], g1["together_at_index"]) == ("common_assault", "standard", True)
    assert (g1["reoffence_count"], g1["harm"], g1["days_to_first"]) == (1, 90, 10)  # other_violence weight
    assert (g2["arm"], g2["comparison_type"], g2["age"], g2["any_reoffence"]) == (
        "comparison", "contemporaneous", 41, False)


def test_missing_sheet_is_structural_and_lists_sheets(tmp_path):
    _, mapping = excel_force(tmp_path)
    mapping["cases"]["sheet"] = "Sheet9"
    path = write_mapping(tmp_path / "forces", mapping)
    with pytest.raises(StructuralError, match=r"force gamma, file .*gamma\.xlsx: sheet 'Sheet9' not found .*'Cases'"):
        ingest(path, tmp_path / "raw")


def test_parquet_in_canonical_raw_schema_with_identity_mapping(tmp_path):
    folder = tmp_path / "raw" / "delta"
    folder.mkdir(parents=True)
    raw = pd.DataFrame({
        "crime_ref": ["D1", "D2", "D3"],
        "offender_id": ["X1", "X2", "X1"],
        "victim_id": ["Y1", None, "Y1"],
        "index_date": pd.to_datetime(["2015-05-01", "2019-02-02", "2016-01-01"]),
        "disposal_date": pd.to_datetime(["2015-05-03", "2019-02-09", "2016-01-02"]),
        "arm": ["comparison", "cara", "cara"],
        "offence_type": ["common_assault", "harassment", "common_assault"],
        "dash_risk": ["standard", "medium", "standard"],
        "age": [30.0, 52.0, 31.0],
        "sex": ["male", "female", "male"],
        "together_at_index": [True, False, True],
        "reoffended_12m": [False, True, False],
    })
    raw.to_parquet(folder / "delta.parquet")
    mapping = {
        "force": "delta", "synthetic": True,
        "design": {"cara_start": "2016-06-01", "extract_date": "2024-03-31", "comparison": "historical"},
        "cases": {"file": "delta.parquet", "format": "parquet", "identity": True,
                  "columns": {"reoffended_12m": "reoffended_12m"},
                  "not_supplied": ["offender_dob", "ethnicity", "prior_da_incidents", "prior_da_convictions",
                                   "victim_sex", "relationship", "workshop1_attended", "workshop2_attended",
                                   "completed", "breached", "victim_contacted", "victim_consulted"]},
    }
    result = ingest(write_mapping(tmp_path, mapping), tmp_path / "raw")
    row = result.accounting.iloc[0]
    # X1 appears twice: the 2016 CARA case is a repeat of the 2015 comparison case.
    assert (row["clean"], row["ineligible:repeat_offender"]) == (2, 1)
    cases = result.cases.set_index("case_id")
    assert cases.loc[case_id("delta", "D2"), "any_reoffence"] == True  # noqa: E712
    assert cases.loc[case_id("delta", "D1"), "comparison_type"] == "historical"
    assert cases["victim_pid"].isna().sum() == 1


def test_outputs_hold_no_raw_identifier_and_combine(tmp_path, alpha):
    write_result(alpha, tmp_path / "alpha.parquet", tmp_path / "alpha.accounting.csv", tmp_path / "q" / "alpha.csv")
    beta = ingest(FIXTURES / "forces" / "beta.yaml")
    write_result(beta, tmp_path / "beta.parquet", tmp_path / "beta.accounting.csv", tmp_path / "q" / "beta.csv")
    cases, accounting = combine_forces(
        [tmp_path / "alpha.parquet", tmp_path / "beta.parquet"],
        [tmp_path / "alpha.accounting.csv", tmp_path / "beta.accounting.csv"],
    )
    CASES_SCHEMA.validate(cases)
    assert len(cases) == 5 and accounting["rows_read"].tolist() == [15, 6]
    published = pd.concat([cases.astype(str), accounting.astype(str)]).to_csv()
    for raw_value in ["CR001", "N100", "V900", "John Doe", "Jane Doe", "14/03/85", "1985-03-14", "B1", "P1", "José"]:
        assert raw_value not in published
    assert "Restorative" in (tmp_path / "q" / "alpha.csv").read_text()  # raw values stay in the restricted file


def test_snakemake_rules_ingest_fixture_forces(tmp_path):
    from conftest import run_snakemake

    workdir = tmp_path / "work"
    shutil.copytree(REPO / "config", workdir / "config")
    forces_dir = workdir / "config" / "test_forces"
    shutil.copytree(FIXTURES / "forces", forces_dir)
    config = dict(CONFIG, raw_dir=str(FIXTURES / "raw"), mappings_dir=str(forces_dir),
                  offence_types=str(FIXTURES / "offence_types.yaml"), forces=["alpha", "beta"])
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    run_snakemake(workdir, "--nolock", "results/ingest/cases.parquet", "results/ingest/row_accounting.csv",
                  "results/spec/data_specification.csv")
    accounting = pd.read_csv(workdir / "results" / "ingest" / "row_accounting.csv")
    assert accounting.set_index("force")["clean"].to_dict() == {"alpha": 3, "beta": 2}
    quarantine = pd.read_csv(workdir / "data" / "restricted" / "quarantine" / "alpha.csv")
    assert len(quarantine) == 8
    spec = pd.read_csv(workdir / "results" / "spec" / "data_specification.csv").set_index("field")
    assert spec.loc["ethnicity", "forces_supplying"] == "alpha"
    assert spec.loc["any_reoffence", "forces_supplying"] == "alpha, beta"
    assert "HMAC" in (workdir / "results" / "spec" / "data_specification.md").read_text()
    assert "force alpha: 15 rows read, 3 clean" in (workdir / "logs" / "ingest_force" / "alpha.log").read_text()
