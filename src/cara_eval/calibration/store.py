"""A store of finished calibration replicates kept with the code (config `calibration.store`), so that calibration
accumulates across machines and sessions instead of starting again at K = 0 wherever `results/` is new.

Why: K = 200 replicates of one scenario cost hours on a workstation, and `results/` is not in git: a fresh clone, a
new cluster account or a lost scratch disk meant every replicate fitted again. A replicate is deterministic in what
makes its numbers, so the replicate rules take it from the store when all of that is unchanged, and fit it only
otherwise (a cache, like the compile cache, never a different answer):
- the settings the rule passes (the scenario's and fit settings, what the fits read of config `model`, the seed);
- the installed packages (name and version of every distribution, and Python's version);
- the source of every cara_eval module the replicate's process had loaded when it finished, except those that decide
  where and how it runs, never a number (`RUN_ONLY_MODULES`). A change to any of them, even a comment, means a refit:
  strict, but never stale.

Layout of the store: `<name>.csv.gz` per scenario (and `sbc.csv.gz`), the replicate rows as the rules write them
plus a `provenance` column, and `provenance.json`, each provenance by its id. `save_replicates` adds a run's
replicates to the store (`python -m cara_eval.calibration.archive save`); the newest copy of a replicate wins.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pandas as pd

import cara_eval
from cara_eval.common.paths import REPO_ROOT
from cara_eval.provenance.record import git_state

log = logging.getLogger(__name__)
PACKAGE_ROOT = Path(cara_eval.__file__).resolve().parent
PROVENANCE_FILE = "provenance.json"
PROVENANCE_COLUMN = "provenance"
SBC = "sbc"  # the store's name for the simulation-based calibration replicates (results/calibration/sbc)


def replicate_settings(calibration: dict, scenario: str) -> dict:
    """What one replicate of a scenario depends on in config `calibration`: its own settings, the shared size, forces
    and fit settings; not K, the other scenarios, the SBC settings or the store, so changing those never reruns (or
    refits) a finished replicate."""
    own = {key: value for key, value in calibration["scenarios"][scenario].items() if key != "replicates"}
    return {
        "n_cases": calibration["n_cases"],
        "forces": calibration["forces"],
        "fit": calibration["fit"],
        "no_pooling_replicates": calibration["no_pooling_replicates"],
        "refit_max_r_hat": calibration["refit_max_r_hat"],
        "scenarios": {scenario: own},
    }


# The keys of config `model` that a replicate's fits read (cara_eval.model.effectiveness.fit_cases and the gate). Only
# these, less what `calibration.fit` lays over them, reach the replicate rules and their digest: tuning the primary
# fits' draws, the report's or the forest plot's draws or the compile cache then neither reruns nor refits a stored
# replicate. A key the fits come to read and this list lacks fails loudly (KeyError), never reuses a stale replicate.
FIT_MODEL_KEYS = ("cells", "priors", "centred", "gate", "sampler", "target_accept", "mass_matrix", "likelihood", "chains",
                  "draws", "tune")


def replicate_model_settings(model: dict, calibration: dict) -> dict:
    """What a replicate (grid or SBC) reads of config `model`: FIT_MODEL_KEYS that `calibration.fit` does not set.
    Applied again to its own result it changes nothing, so a digest of either is the same."""
    return {key: model[key] for key in FIT_MODEL_KEYS if key not in calibration["fit"]}


def sbc_replicate_settings(calibration: dict) -> dict:
    """What one SBC replicate depends on: its design scenario's replicate settings and the rank settings, not K."""
    sbc = calibration["sbc"]
    return {**replicate_settings(calibration, sbc["design_scenario"]),
            "sbc": {key: value for key, value in sbc.items() if key != "replicates"}}


def _digest(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def settings_digest(calibration: dict, model: dict, seed: int) -> str:
    """Digest of a replicate rule's params: its `calibration`, the part of config `model` it reads
    (`replicate_model_settings`; the whole section or that part give the same digest) and `seed`."""
    read = replicate_model_settings(model, calibration)
    return _digest(json.dumps({"calibration": calibration, "model": read, "seed": seed}, sort_keys=True))


def installed_packages() -> list[str]:
    """Python's version and every installed distribution's name and version, sorted (each once: an editable install
    is found both in site-packages and on the source path)."""
    installed = {f"{dist.metadata['Name']}=={dist.version}" for dist in metadata.distributions()}
    return [f"python=={platform.python_version()}", *sorted(installed)]


def _source_digest(relative: str) -> str | None:
    path = PACKAGE_ROOT / relative
    return _digest(path.read_bytes()) if path.is_file() else None


# Modules a replicate's process loads that decide reuse, where it compiles, which cores it runs on or what commit
# it records: none of them changes a number, so an edit to them (a fix for SLURM job groups, say) keeps the store.
RUN_ONLY_MODULES = (__name__, "cara_eval.common.compile_cache", "cara_eval.common.cores", "cara_eval.provenance.record")


def loaded_sources() -> dict[str, str]:
    """Digest of each cara_eval module's source loaded in this process, by path inside the package, less
    RUN_ONLY_MODULES."""
    sources = {}
    for name, module in sorted(sys.modules.items()):
        if not (name == "cara_eval" or name.startswith("cara_eval.")) or name in RUN_ONLY_MODULES:
            continue
        path = getattr(module, "__file__", None)
        if path:
            relative = Path(path).resolve().relative_to(PACKAGE_ROOT).as_posix()
            sources[relative] = _source_digest(relative)
    return sources


def provenance(settings: str, packages: list[str]) -> dict:
    """The provenance of a replicate fitted in this process: call it after the fit, when every module it used is
    loaded. `commit` is for people only (a dirty checkout's commit does not say what ran); matching ignores it."""
    return {"settings": settings, "packages": packages, "sources": loaded_sources(),
            "commit": git_state(REPO_ROOT)["commit"]}


def provenance_id(record: dict) -> str:
    return _digest(json.dumps({key: record[key] for key in ("settings", "packages", "sources")}, sort_keys=True))[:16]


def differences(record: dict, settings: str, packages: list[str]) -> list[str]:
    """What differs between a stored replicate's provenance and what would make it now (module docstring): "settings",
    the package versions found on one side only, and the modules whose source changed; empty when it matches."""
    changed = [] if record["settings"] == settings else ["settings"]
    changed += sorted(set(record["packages"]) ^ set(packages))
    return changed + [relative for relative, digest in record["sources"].items() if _source_digest(relative) != digest]


def read_provenances(store: Path) -> dict:
    path = store / PROVENANCE_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def _read_table(path: Path) -> pd.DataFrame:
    """A replicate table as written, so that writing it again gives the same bytes (floats read round-trip)."""
    return pd.read_csv(path, keep_default_na=False, na_values=[""], float_precision="round_trip")


def read_rows(store: Path, name: str) -> pd.DataFrame | None:
    path = store / f"{name}.csv.gz"
    return _read_table(path) if path.is_file() else None


def stored_replicate(store: str | Path | None, name: str, replicate: int, settings: str,
                     packages: list[str]) -> tuple[pd.DataFrame, dict] | None:
    """The stored rows and provenance of replicate `replicate` of `name` (a scenario, or SBC) if they match
    (`differences` finds none), else None; a stored copy that does not match is logged with what differs."""
    if not store or (rows := read_rows(Path(store), name)) is None:
        return None
    mine = rows[rows["replicate"].eq(replicate)]
    if mine.empty:
        return None
    record = read_provenances(Path(store))[mine[PROVENANCE_COLUMN].iloc[0]]
    if changed := differences(record, settings, packages):
        log.info("%s replicate %d is in the store %s but was made by other code or settings (%s): fitting it",
                 name, replicate, store, ", ".join(changed[:6]))
        return None
    return mine.drop(columns=PROVENANCE_COLUMN), record


def stored_or_fitted(store: str | None, name: str, replicate: int, calibration: dict, model: dict, seed: int,
                     fit: Callable[[], pd.DataFrame]) -> tuple[pd.DataFrame, dict]:
    """A replicate rule's table and provenance: from the store when it holds this replicate made by the same code
    and settings, else `fit()`'s table with this process's provenance, taken after the fit."""
    settings, packages = settings_digest(calibration, model, seed), installed_packages()
    stored = stored_replicate(store, name, replicate, settings, packages)
    if stored is not None:
        log.info("%s replicate %d taken from the store %s: made by the same code, packages and settings (commit %s)",
                 name, replicate, store, stored[1]["commit"])
        return stored
    return fit(), provenance(settings, packages)


def write_replicate(table: pd.DataFrame, record: dict, table_path: str | Path, provenance_path: str | Path) -> None:
    """A replicate's rows and its provenance, as the replicate rules write them."""
    table.to_csv(table_path, index=False)
    Path(provenance_path).write_text(json.dumps(record, indent=1, sort_keys=True))


def _run_replicate_files(calibration_results: Path) -> dict[str, list[Path]]:
    """Replicate tables of a results/calibration folder that have a provenance file beside them, by store name (the
    rules write the provenance last, so a table still being written is left for the next save)."""
    found = {}
    for directory in [*sorted((calibration_results / "replicates").glob("*")), calibration_results / SBC]:
        name = SBC if directory.name == SBC else directory.name
        tables = [path for path in sorted(directory.glob("*.csv")) if path.with_suffix(".json").is_file()]
        if tables:
            found[name] = tables
    return found


def save_replicates(calibration_results: str | Path, store: str | Path) -> dict[str, int]:
    """Add every replicate of a run (`results/calibration`) that has its provenance to the store; a replicate already
    stored is replaced by the run's copy. Returns the number of replicates stored per name afterwards."""
    store = Path(store)
    store.mkdir(parents=True, exist_ok=True)
    provenances = read_provenances(store)
    counts = {}
    for name, tables in _run_replicate_files(Path(calibration_results)).items():
        new = []
        for path in tables:
            record = json.loads(path.with_suffix(".json").read_text())
            provenances[provenance_id(record)] = record
            new.append(_read_table(path).assign(**{PROVENANCE_COLUMN: provenance_id(record)}))
        new = pd.concat(new, ignore_index=True)
        old = read_rows(store, name)
        if old is not None:
            new = pd.concat([old[~old["replicate"].isin(new["replicate"])], new], ignore_index=True)
        new = new.sort_values("replicate", kind="stable")
        new.to_csv(store / f"{name}.csv.gz", index=False, compression={"method": "gzip", "mtime": 0})
        counts[name] = int(new["replicate"].nunique())
    used = {key for path in store.glob("*.csv.gz") for key in pd.read_csv(path, usecols=[PROVENANCE_COLUMN])[
        PROVENANCE_COLUMN]}
    (store / PROVENANCE_FILE).write_text(json.dumps({key: provenances[key] for key in sorted(used)}, indent=1,
                                                    sort_keys=True))
    return counts
