"""Every published render is kept: results/report/archive/<UTC timestamp>/ holds the HTML, the PDF and the
provenance and headline estimands behind them, so the next report can say what changed since this one."""

import shutil
from datetime import datetime
from pathlib import Path

from cara_eval.common.ordering import numeric_name_order

ARCHIVED_PROVENANCE = "run.json"
ARCHIVED_ESTIMANDS = "estimands.csv"


def latest_archive(root: str | Path) -> dict:
    """The most recent archived run as manifest entries (`archived`, `provenance`, `estimands`), or {} if none."""
    runs = sorted((p for p in Path(root).glob("*") if (p / ARCHIVED_PROVENANCE).is_file()), key=numeric_name_order)
    if not runs:
        return {}
    latest = runs[-1].resolve()
    estimands = latest / ARCHIVED_ESTIMANDS
    return {
        "archived": latest.name,
        "provenance": str(latest / ARCHIVED_PROVENANCE),
        "estimands": str(estimands) if estimands.is_file() else None,
    }


def archive_run(root: str | Path, run_date: datetime, files: dict[str, str | Path]) -> Path:
    """Copy this render's files into a new folder named by its UTC timestamp (never overwriting an earlier one)."""
    stamp = f"{run_date:%Y%m%dT%H%M%SZ}"
    folder = Path(root) / stamp
    suffix = 1
    while folder.exists():
        folder = Path(root) / f"{stamp}-{suffix}"
        suffix += 1
    folder.mkdir(parents=True)
    for name, source in files.items():
        shutil.copyfile(source, folder / name)
    return folder
