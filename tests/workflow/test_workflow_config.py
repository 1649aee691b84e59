"""The workflow refuses a bad config with a message naming the key, and lints clean."""

import shutil

import pytest
import yaml
from conftest import REPO, deep_merge, make_workdir, run_snakemake, tiny_config


def _workdir_with_config(tmp_path, config):
    shutil.copytree(REPO / "config", tmp_path / "config")
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


def test_unknown_key_stops_the_run_naming_it(tmp_path):
    config = deep_merge(tiny_config(), {"eligibility": {"min_agee": 18}})
    proc = run_snakemake(_workdir_with_config(tmp_path, config), "-n", check=False)
    assert proc.returncode != 0
    assert "min_agee" in proc.stdout + proc.stderr


def test_wrong_type_stops_the_run_naming_it(tmp_path):
    config = deep_merge(tiny_config(), {"outcomes": {"followup_days": "a year"}})
    proc = run_snakemake(_workdir_with_config(tmp_path, config), "-n", check=False)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "followup_days" in output and "a year" in output


def test_lint_has_nothing_to_fix(tmp_path):
    proc = run_snakemake(_workdir_with_config(tmp_path, tiny_config()), "--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Lints for" not in proc.stdout + proc.stderr


def test_a_force_without_a_mapping_stops_the_run_naming_it(tmp_path):
    config = deep_merge(tiny_config(), {"forces": ["dorset", "atlantis"]})
    proc = run_snakemake(_workdir_with_config(tmp_path, config), "-n", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "no mapping file for atlantis" in output and "config/forces/atlantis.yaml" in output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("section", "fit", "message"),
    [
        ("calibration", {"sampler": "pymc", "mass_matrix": "low_rank"},
         "config calibration.fit: mass_matrix low_rank needs a nutpie sampler, not 'pymc'"),
        ("sensitivity", {"target_accept": [0.97, 0.9]},
         "config sensitivity.fit: target_accept [0.97, 0.9] must increase"),
    ],
)
def test_sampler_settings_that_cannot_work_stop_the_run_naming_the_section(tmp_path, section, fit, message):
    config = deep_merge(tiny_config(), {section: {"fit": fit}})
    proc = run_snakemake(_workdir_with_config(tmp_path, config), "-n", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and message in output
    assert "Traceback" not in output


def test_quarantine_goes_to_restricted_dir_and_never_under_results(tmp_path):
    config = deep_merge(tiny_config(), {"restricted_dir": "secure/area"})
    workdir = make_workdir(tmp_path / "work", config)
    proc = run_snakemake(workdir, "-n", "--forceall", "results/ingest/row_accounting.csv", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "secure/area/quarantine/" in proc.stdout and "data/restricted" not in proc.stdout
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(dict(config, restricted_dir="results/private")))
    proc = run_snakemake(workdir, "-n", check=False)
    assert proc.returncode != 0 and "restricted_dir: results/private lies inside results/" in proc.stdout + proc.stderr
