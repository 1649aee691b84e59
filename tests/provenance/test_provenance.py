"""Provenance: checksums, git state and the comparison with the previous run are exact."""

import hashlib
import json
import subprocess
from datetime import UTC, datetime

import pytest

from cara_eval.provenance.record import changed_inputs, git_state, read_record, record_run, sha256_file, write_record


def _git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.email", "test@example.org")
    _git(tmp_path, "config", "user.name", "test")
    (tmp_path / "config.yaml").write_text("seed: 1\n")
    _git(tmp_path, "add", "config.yaml")
    _git(tmp_path, "commit", "-q", "-m", "first")
    return tmp_path


def test_sha256_matches_hashlib_across_chunk_boundaries(tmp_path):
    data = bytes(range(256)) * 5000  # 1.28 MB: spans two 1 MiB chunks
    path = tmp_path / "extract.csv"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert sha256_file(path, chunk_bytes=7) == hashlib.sha256(data).hexdigest()


def test_git_state_reports_commit_and_dirty_flag(repo, tmp_path_factory):
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert git_state(repo) == {"commit": head, "dirty": False}
    (repo / "config.yaml").write_text("seed: 2\n")
    assert git_state(repo) == {"commit": head, "dirty": True}
    assert git_state(tmp_path_factory.mktemp("not_a_repo")) == {"commit": None, "dirty": None}


def test_record_round_trips_and_lists_every_input_with_its_checksum(repo, tmp_path):
    raw = tmp_path / "raw" / "dorset"
    raw.mkdir(parents=True)
    (raw / "dorset_cases.csv").write_text("Crime Ref,Nominal\nX1,N1\n")
    record = record_run(
        {"raw": [raw / "dorset_cases.csv"], "config": [repo / "config.yaml"]},
        {"seed": 1},
        repo,
        run_date=datetime(2026, 11, 26, 23, 0, tzinfo=UTC),
    )
    write_record(record, tmp_path / "run.json")
    loaded = read_record(tmp_path / "run.json")
    assert loaded["run_date"] == "2026-11-26T23:00:00+00:00"
    assert loaded["config"] == {"seed": 1}
    assert loaded["versions"]["pandas"] == "2.3.3"
    by_kind = {e["kind"]: e for e in loaded["inputs"]}
    assert by_kind["raw"]["sha256"] == hashlib.sha256(b"Crime Ref,Nominal\nX1,N1\n").hexdigest()
    assert by_kind["raw"]["bytes"] == 24
    # Only the path and checksum of a raw file are recorded, never its contents.
    assert "N1" not in json.dumps(loaded)


def test_changed_inputs_names_added_removed_and_changed_files():
    previous = {"inputs": [{"path": "a", "kind": "raw", "sha256": "1"}, {"path": "b", "kind": "raw", "sha256": "2"}]}
    current = {"inputs": [{"path": "a", "kind": "raw", "sha256": "9"}, {"path": "c", "kind": "config", "sha256": "3"}]}
    assert changed_inputs(previous, current) == [
        {"path": "a", "kind": "raw", "change": "changed"},
        {"path": "b", "kind": "raw", "change": "removed"},
        {"path": "c", "kind": "config", "change": "added"},
    ]
    assert changed_inputs(current, current) == []


def test_missing_record_names_the_rule(tmp_path):
    with pytest.raises(FileNotFoundError, match="provenance_record"):
        read_record(tmp_path / "run.json")


def test_provenance_rule_checksums_every_input_and_reruns_when_a_raw_file_changes(tmp_path):
    import shutil

    import yaml
    from conftest import REPO, run_snakemake, tiny_config

    workdir = tmp_path / "work"
    shutil.copytree(REPO / "config", workdir / "config")
    config = tiny_config()
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    for force in config["forces"]:  # stand-in extracts: provenance reads bytes, not contents
        (workdir / "data" / "raw" / force).mkdir(parents=True)
        (workdir / "data" / "raw" / force / f"{force}_cases.csv").write_text(f"Crime Ref\n{force}-1\n")
    run_snakemake(workdir, "-p", "results/provenance/run.json")  # a flag ends --configfile's list
    record = read_record(workdir / "results/provenance/run.json")
    by_path = {e["path"]: e for e in record["inputs"]}
    raw = "data/raw/norfolk/norfolk_cases.csv"
    assert by_path[raw]["sha256"] == hashlib.sha256(b"Crime Ref\nnorfolk-1\n").hexdigest()
    assert {e["kind"] for e in record["inputs"]} == {"raw", "mapping", "config"}
    assert {"config/forces/norfolk.yaml", "config/config.yaml", "config/harm_weights.csv"} <= by_path.keys()
    assert record["config"]["seed"] == config["seed"]
    assert record["git"]["commit"] == git_state(REPO)["commit"]
    assert "norfolk-1" not in json.dumps(record)

    assert "Nothing to be done" in run_snakemake(workdir, "-n", "results/provenance/run.json").stdout
    (workdir / raw).write_text("Crime Ref\nnorfolk-2\n")
    assert "provenance_record" in run_snakemake(workdir, "-n", "results/provenance/run.json").stdout


def test_input_paths_are_relative_to_the_workdir_and_listed_once(tmp_path, monkeypatch):
    from cara_eval.provenance.record import describe_inputs

    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text("seed: 1\n")
    monkeypatch.chdir(tmp_path)
    entries = describe_inputs({"config": [tmp_path / "config" / "config.yaml", "config/config.yaml"]})
    assert [e["path"] for e in entries] == ["config/config.yaml"]
