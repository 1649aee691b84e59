"""Shared fixtures: real Snakemake runs of the tiny config in temporary directories."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TINY_OVERRIDES = REPO / "tests" / "config_tiny" / "config.yaml"
# Subprocesses import this checkout's package, as the test process does (pyproject's pytest pythonpath).
CHECKOUT_ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")])))


def deep_merge(base: dict, override: dict) -> dict:
    """Config override semantics: nested mappings merge, everything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def tiny_config() -> dict:
    base = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    return deep_merge(base, yaml.safe_load(TINY_OVERRIDES.read_text()))


def make_workdir(root: Path, config: dict | None = None, synth_args: tuple[str, ...] = ()) -> Path:
    """A self-contained workflow directory: config/ copied from the repo, tiny config, synthetic raw data.

    `synth_args`: extra options of `python -m cara_eval.synth` (e.g. `--mappings-out config/forces` for forces
    outside the nine, whose identity mappings the generator writes)."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "config", root / "config", dirs_exist_ok=True)
    config = config or tiny_config()
    (root / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    subprocess.run(
        [sys.executable, "-m", "cara_eval.synth", "--config", "config/config.yaml", *synth_args],
        cwd=root, check=True, capture_output=True, text=True, env=CHECKOUT_ENV,
    )
    return root


def run_snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the repository's Snakefile in workdir; output is kept for assertions and failure messages."""
    env = dict(CHECKOUT_ENV, PYTHONHASHSEED="0")
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
         "--cores", "2", f"--configfile={workdir / 'config' / 'config.yaml'}", *args],
        cwd=workdir, capture_output=True, text=True, env=env,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
                             f"{failed_rule_logs(workdir, proc.stderr)}")
    return proc


def failed_rule_logs(workdir: Path, stderr: str) -> str:
    """The tail of each failed job's own log (Snakemake's message names it but not its contents): on a CI machine the
    temp dir is gone after the run, so this is the only trace of why a rule script failed."""
    logs = re.findall(r"log: (\S+) \(check log file\(s\) for error details\)", stderr)
    return "".join(f"\n--- {log} ---\n{(workdir / log).read_text()[-4000:]}"
                   for log in dict.fromkeys(logs) if (workdir / log).is_file())


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Work units for pytest-xdist's `--dist loadgroup` (`./cara test` runs two workers): a test file stays on one
    worker, so its module fixtures are built once, and every test that reads the shared tiny run (by fixture, or
    marked `reads_tiny_run` where a fixture fetches it late) goes to one worker, so that run is built once.
    Runs before xdist's own hook, which reads these marks."""
    for item in items:
        reads_tiny_run = "tiny_run" in item.fixturenames or item.get_closest_marker("reads_tiny_run")
        item.add_marker(pytest.mark.xdist_group("tiny_run" if reads_tiny_run else item.nodeid.split("::")[0]))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """One complete default-target run of the tiny config, shared by the tests that read its outputs."""
    workdir = make_workdir(tmp_path_factory.mktemp("tiny") / "work")
    run_snakemake(workdir)
    return workdir
