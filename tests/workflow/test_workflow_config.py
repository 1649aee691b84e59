"""The workflow refuses a bad config with a message naming the key, and lints clean."""

import shutil

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


def test_pymc_with_a_low_rank_mass_matrix_stops_the_run_naming_the_section(tmp_path):
    config = deep_merge(tiny_config(), {"calibration": {"fit": {"sampler": "pymc", "mass_matrix": "low_rank"}}})
    proc = run_snakemake(_workdir_with_config(tmp_path, config), "-n", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "config calibration.fit: sampler pymc with mass_matrix low_rank" in output
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
