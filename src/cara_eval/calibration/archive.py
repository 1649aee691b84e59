"""Calibration evidence kept with the code (docs/calibration): the replicate store (cara_eval.calibration.store) and
dated summaries of it, which the report's appendix shows in a checkout that has no calibration run of its own.

    python -m cara_eval.calibration.archive save                              # a run's replicates into the store
    python -m cara_eval.calibration.archive summarise docs/calibration/DATE   # a dated summary of the store

Why a summary of the store rather than of one run: K = 200 replicates of nine scenarios is days of a workstation,
so the evidence is gathered over many runs, machines and sometimes model versions. The summary computes coverage,
targets and SBC ranks exactly as `snakemake calibration` does (write_grid_summary, write_sbc_summary), from every
stored replicate, whatever replicate numbers they are (the scheduler's order, independent of the outcomes). A
scenario the store does not hold is carried over from the newest earlier summary. Its run record says, per
scenario, K, where the rows come from, the commits that made them and whether every replicate was made by this
checkout's code, packages and settings (store.differences): a summary that mixes model versions says which rows
describe the model as it is, and the report prints it.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pandas as pd
import yaml

from cara_eval.calibration.sbc import rank_figure, uniformity_table
from cara_eval.calibration.store import (
    PROVENANCE_COLUMN,
    SBC,
    differences,
    installed_packages,
    read_provenances,
    read_rows,
    replicate_settings,
    save_replicates,
    sbc_replicate_settings,
    settings_digest,
)
from cara_eval.calibration.summary import (
    SUMMARY_FILES,
    archived_summaries,
    coverage_figure,
    coverage_table,
    run_record,
    target_table,
)
from cara_eval.common.paths import REPO_ROOT

FIGURES = {"coverage": "coverage.png", "sbc_ranks": "sbc_ranks.png"}


def _save_figure(figure, path) -> None:
    figure.savefig(path, dpi=150, bbox_inches="tight", metadata={"Software": None})


def write_grid_summary(coverage: pd.DataFrame, calibration: dict, record: dict, paths: dict) -> None:
    """The grid's coverage table, the targets it meets, its figure and run record, at `paths` (keys coverage, targets,
    figure, run)."""
    coverage.to_csv(paths["coverage"], index=False)
    target_table(coverage, calibration).to_csv(paths["targets"], index=False)
    _save_figure(coverage_figure(coverage, tuple(calibration["targets"]["coverage_90_band"])), paths["figure"])
    Path(paths["run"]).write_text(json.dumps(record, indent=2, sort_keys=True))


def write_sbc_summary(ranks: pd.DataFrame, bins: int, paths: dict) -> None:
    """Every SBC rank, the uniformity checks and the rank histograms, at `paths` (keys ranks, uniformity, figure)."""
    ranks.to_csv(paths["ranks"], index=False)
    uniformity_table(ranks, bins).to_csv(paths["uniformity"], index=False)
    _save_figure(rank_figure(ranks, bins), paths["figure"])


def read_coverage(path) -> pd.DataFrame:
    """A coverage table as the grid summary writes it (an empty `level` is the pooled row, not missing)."""
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def _stored_source(rows: pd.DataFrame, provenances: dict, settings: str, packages: list[str]) -> dict:
    """Where a stored scenario's rows come from: K, the commits that made them, whether all match this checkout."""
    records = [provenances[key] for key in rows[PROVENANCE_COLUMN].unique()]
    return {"from": "store", "replicates": int(rows["replicate"].nunique()),
            "commits": sorted({record["commit"] or "unknown" for record in records}),
            "current_code": not any(differences(record, settings, packages) for record in records)}


def _made_by(source: dict) -> str:
    """What made a scenario's rows, in words: the store's provenance, or where they were carried over from."""
    if source["from"] != "store":
        first = _first_summary(source)
        since = f", first summarised in {first['from']}" if first is not source else ""
        there = f"; there {_made_by(first['earlier'])}" if first.get("earlier") else ""
        return f"carried over from {source['from']}{since}{there}"
    if source["current_code"]:
        return "made by this checkout's code and settings"
    return "made by earlier code or settings (commits " + ", ".join(commit[:7] for commit in source["commits"]) + ")"


def _note(sources: dict) -> str:
    """The run record's note: K per scenario and what made its rows, scenarios of one origin together."""
    origins = {}
    for name, source in sources.items():
        origins.setdefault(_made_by(source), []).append(f"{name} (K = {source['replicates']})")
    return "Replicates per scenario: " + "; ".join(f"{', '.join(names)}: {origin}"
                                                   for origin, names in origins.items()) + "."


def _first_summary(source: dict) -> dict:
    """The carried-over step naming the summary a scenario's rows were first written in (the end of its chain)."""
    earlier = source.get("earlier")
    return _first_summary(earlier) if earlier and earlier["from"] != "store" else source


def _origin_notes(sources: dict) -> str:
    """The notes of the summaries carried-over rows come from, when those summaries say in words what they hold (older
    than the store: no `sources` in their run record), however many summaries carried the rows since."""
    notes = []
    for origin in dict.fromkeys(_first_summary(source)["from"] for source in sources.values() if source["from"] != "store"):
        path = Path(origin) if Path(origin).is_absolute() else REPO_ROOT / origin
        record = json.loads((path / SUMMARY_FILES["run"]).read_text())
        if record.get("note") and "sources" not in record:
            notes.append(f" The note of {origin}, on the rows carried over from it: {record['note']}")
    return "".join(notes)


def _carried(previous: Path, name: str, replicates: int, earlier_record: dict) -> dict:
    """Where a carried-over scenario's rows come from: the earlier summary, and what that summary said of them."""
    return {"from": str(previous), "replicates": replicates, "earlier": earlier_record.get("sources", {}).get(name)}


def summarise_store(store: str | Path, out: str | Path, config: dict, previous: str | Path | None) -> dict:
    """A dated calibration summary of the store at `out` (SUMMARY_FILES and the figures); scenarios and SBC the
    store lacks are carried over from `previous` (an earlier summary) when it has them. Returns the run record."""
    calibration, store, out = config["calibration"], Path(store), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    provenances, packages = read_provenances(store), installed_packages()
    earlier = read_coverage(Path(previous) / SUMMARY_FILES["coverage"]) if previous else None
    earlier_record = json.loads((Path(previous) / SUMMARY_FILES["run"]).read_text()) if previous else {}
    earlier_counts = earlier_record.get("replicates", {}).get("scenarios", {})
    tables, sources = [], {}
    for scenario in calibration["scenarios"]:
        rows = read_rows(store, scenario)
        if rows is not None:
            settings = settings_digest(replicate_settings(calibration, scenario), config["model"], config["seed"])
            sources[scenario] = _stored_source(rows, provenances, settings, packages)
            tables.append(coverage_table(rows.drop(columns=PROVENANCE_COLUMN), calibration["refit_max_r_hat"]))
        elif earlier is not None and scenario in earlier_counts:
            sources[scenario] = _carried(previous, scenario, earlier_counts[scenario], earlier_record)
            tables.append(earlier[earlier["scenario"].eq(scenario)])
    ranks = read_rows(store, SBC)
    if ranks is not None:
        settings = settings_digest(sbc_replicate_settings(calibration), config["model"], config["seed"])
        sources[SBC] = _stored_source(ranks, provenances, settings, packages)
        write_sbc_summary(ranks.drop(columns=PROVENANCE_COLUMN), calibration["sbc"]["bins"],
                          {"ranks": out / SUMMARY_FILES["sbc_ranks"], "uniformity": out / SUMMARY_FILES["sbc_uniformity"],
                           "figure": out / FIGURES["sbc_ranks"]})
    elif previous and (Path(previous) / SUMMARY_FILES["sbc_ranks"]).is_file():
        kept = pd.read_csv(Path(previous) / SUMMARY_FILES["sbc_ranks"])
        sources[SBC] = _carried(previous, SBC, int(kept["replicate"].nunique()), earlier_record)
        for name in (SUMMARY_FILES["sbc_ranks"], SUMMARY_FILES["sbc_uniformity"], FIGURES["sbc_ranks"]):
            shutil.copyfile(Path(previous) / name, out / name)
    if not tables:
        raise ValueError(f"no calibration replicates in {store}, and no earlier summary to carry over")
    counts = {name: source["replicates"] for name, source in sources.items() if name != SBC}
    record = {**run_record({"scenarios": counts}), "sources": sources, "note": _note(sources) + _origin_notes(sources)}
    write_grid_summary(pd.concat(tables, ignore_index=True), calibration, record,
                       {"coverage": out / SUMMARY_FILES["coverage"], "targets": out / SUMMARY_FILES["targets"],
                        "figure": out / FIGURES["coverage"], "run": out / SUMMARY_FILES["run"]})
    return record


def _newest_summary(root: Path, besides: Path) -> Path | None:
    found = [folder for folder in archived_summaries(root) if folder.resolve() != besides.resolve()]
    return found[-1] if found else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cara_eval.calibration.archive", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    save = commands.add_parser("save", help="add a run's finished replicates to the store (config calibration.store)")
    save.add_argument("--results", default="results/calibration", help="the run's calibration folder")
    summarise = commands.add_parser("summarise", help="a dated summary of the store, e.g. docs/calibration/2026-12-03")
    summarise.add_argument("out")
    for command in (save, summarise):
        command.add_argument("--config", default="config/config.yaml")
    args = parser.parse_args(argv)
    config = yaml.safe_load(Path(args.config).read_text())
    store = config["calibration"]["store"]
    if args.command == "save":
        for name, count in save_replicates(args.results, store).items():
            print(f"{name}: {count} replicates in {store}")
        return
    out = Path(args.out)
    record = summarise_store(store, out, config, _newest_summary(out.parent, out))
    print(record["note"])


if __name__ == "__main__":
    main()
