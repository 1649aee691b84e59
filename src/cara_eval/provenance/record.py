"""Provenance of one run: which code, configuration, software and input files produced the results.

The report prints it and compares it with the previous run's, so a reader can tell whether two reports differ
because the data, the config or the code changed. Paths of raw files name the force folder and file only;
contents are represented by their SHA-256, never copied.
"""

import hashlib
import json
import os
import platform
import subprocess
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

# Distributions whose versions decide the numbers or the rendering; the lock pins them all.
PACKAGES = (
    "snakemake", "cara-eval", "numpy", "pandas", "pyarrow", "scipy", "pymc", "pytensor", "arviz", "nutpie",
    "xarray", "statsmodels", "pandera", "matplotlib", "nbclient", "ipykernel",
    "pypandoc_binary", "typst",
)


def sha256_file(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, read in chunks so large extracts do not load into memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def _git(repo: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def git_state(repo: str | Path) -> dict:
    """Commit and dirty flag of the workflow's repository; both None outside a git checkout."""
    commit = _git(Path(repo), "rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = _git(Path(repo), "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def package_versions(packages: Iterable[str] = PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that matter, plus Python itself ("not installed" when absent)."""
    versions = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def display_path(path: str | Path) -> str:
    """The path relative to the working directory when inside it: an absolute path can name a user's home."""
    absolute = os.path.abspath(path)
    relative = os.path.relpath(absolute, os.getcwd())
    return absolute if relative.startswith("..") else relative


def describe_inputs(inputs: Mapping[str, Iterable[str | Path]]) -> list[dict]:
    """One entry per input file, grouped by kind (raw, mapping, config), sorted for stable output."""
    entries = []
    for kind, paths in inputs.items():
        for path in sorted({display_path(p) for p in paths}):
            size = Path(path).stat().st_size
            entries.append({"path": path, "kind": kind, "bytes": size, "sha256": sha256_file(path)})
    return entries


def record_run(
    inputs: Mapping[str, Iterable[str | Path]], config: Mapping, repo: str | Path, run_date: datetime | None = None
) -> dict:
    """The provenance record in the run.json layout of docs/contracts.md."""
    run_date = run_date or datetime.now(UTC)
    return {
        "run_date": run_date.astimezone(UTC).isoformat(timespec="seconds"),
        "git": git_state(repo),
        "config": dict(config),
        "versions": package_versions(),
        "inputs": describe_inputs(inputs),
    }


def write_record(record: Mapping, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")


def read_record(path: str | Path) -> dict:
    """A run.json, with a message that names the rule to run when it is missing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Provenance record {path} is missing: run the rule provenance_record first.")
    return json.loads(path.read_text())


def changed_inputs(previous: Mapping, current: Mapping) -> list[dict]:
    """Inputs added, removed or with a new checksum between two records, as {path, kind, change}."""
    before = {e["path"]: e for e in previous.get("inputs", [])}
    after = {e["path"]: e for e in current.get("inputs", [])}
    changes = []
    for path in sorted(before.keys() | after.keys()):
        if path not in before:
            change = "added"
        elif path not in after:
            change = "removed"
        elif before[path]["sha256"] != after[path]["sha256"]:
            change = "changed"
        else:
            continue
        changes.append({"path": path, "kind": (after.get(path) or before[path])["kind"], "change": change})
    return changes
