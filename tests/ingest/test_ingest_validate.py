"""The validate command force analysts run before sending an extract."""

import shutil
from pathlib import Path

import pandas as pd
import yaml

from cara_eval.ingest.validate import main

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "ingest"


def analyst_config(tmp_path):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config.update(mappings_dir=str(FIXTURES / "forces"), raw_dir=str(FIXTURES / "raw"),
                  offence_types=str(FIXTURES / "offence_types.yaml"),
                  harm_weights=str(REPO / "config" / "harm_weights.csv"))
    # No key anywhere, whatever this machine's home holds: validation must not need one.
    config["pseudonymisation"]["key_file"] = str(tmp_path / "no_such_key")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_summary_lists_counts_reasons_rows_and_dates(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status = main(["--mapping", str(FIXTURES / "forces" / "alpha.yaml"), "--config", str(analyst_config(tmp_path))])
    out = capsys.readouterr().out
    assert status == 0
    for line in ["Rows read: 15", "clean (eligible): 3", "ineligible: 5", "repeat_offender: 1", "quarantined: 7",
                 "unknown_code: 3", "alpha_cases.csv, arm, unknown_code: rows 11",
                 "alpha_reoffences.csv, offence_date, unparseable_date: rows 10",
                 "Index dates: 2018-02-10 to 2024-03-30", "Fields not supplied: none",
                 "Fields partly missing in clean cases: workshop2_attended 50.0%, completed 50.0%, breached 50.0%"]:
        assert line in out
    assert "Restorative" not in out and "John Doe" not in out  # counts and row numbers, never values
    assert not (tmp_path / "results").exists()


def test_field_blank_in_every_row_is_named(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(FIXTURES / "raw" / "alpha", tmp_path / "raw" / "alpha")
    cases = pd.read_csv(tmp_path / "raw" / "alpha" / "alpha_cases.csv", dtype=str, keep_default_na=False)
    cases["Ethnicity"] = ""
    cases.to_csv(tmp_path / "raw" / "alpha" / "alpha_cases.csv", index=False)
    status = main(["--mapping", str(FIXTURES / "forces" / "alpha.yaml"), "--raw-dir", str(tmp_path / "raw"),
                   "--config", str(analyst_config(tmp_path))])
    captured = capsys.readouterr()
    out = captured.out
    assert status == 1  # a mapped column blank in every row is a structural problem of the extract
    assert "STRUCTURAL PROBLEM" in captured.err and "Ethnicity" in captured.err
    assert ("Fields blank in every clean case (mapped to a column, but empty): ethnicity; check the column, or "
            "declare them in cases.not_supplied") in out
    assert "ethnicity" not in out.split("Fields partly missing in clean cases:")[1].splitlines()[0]


def test_real_force_validates_without_a_pseudonymisation_key(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CARA_PSEUDO_KEY", raising=False)
    # Edit the text: a YAML 1.1 round trip (yaml.safe_load) would turn the codes Yes/No into booleans.
    text = (FIXTURES / "forces" / "beta.yaml").read_text()
    assert "synthetic: true" in text
    (tmp_path / "forces").mkdir()
    (tmp_path / "forces" / "beta.yaml").write_text(text.replace("synthetic: true", "synthetic: false"))
    shutil.copytree(FIXTURES / "raw" / "beta", tmp_path / "raw" / "beta")
    status = main(["--mapping", str(tmp_path / "forces" / "beta.yaml"), "--raw-dir", str(tmp_path / "raw"),
                   "--config", str(analyst_config(tmp_path))])
    assert status == 0 and "Rows read: 6" in capsys.readouterr().out


def test_structural_problem_exits_non_zero_naming_the_column(tmp_path, capsys):
    mapping = yaml.safe_load((FIXTURES / "forces" / "alpha.yaml").read_text())
    mapping["cases"]["columns"]["arm"] = "Outcome Type"
    (tmp_path / "alpha.yaml").write_text(yaml.safe_dump(mapping))
    status = main(["--mapping", str(tmp_path / "alpha.yaml"), "--config", str(analyst_config(tmp_path))])
    err = capsys.readouterr().err
    assert status == 1
    assert "STRUCTURAL PROBLEM: force alpha" in err and "arm -> column 'Outcome Type'" in err


def test_force_key_resolves_the_mapping_from_config(tmp_path, capsys):
    assert main(["beta", "--config", str(analyst_config(tmp_path))]) == 0
    assert "Force: Beta" in capsys.readouterr().out
