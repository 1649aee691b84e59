"""`python -m cara_eval.synth`: write the synthetic raw extracts and their truth file.

Settings come from config/config.yaml (seed, raw_dir, mappings_dir, forces, synthetic.*); options override.
"""

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path

import yaml

from cara_eval.synth.forces import NINE_FORCES
from cara_eval.synth.population import TREND_SHAPES, simulate_population
from cara_eval.synth.raw import write_raw_extracts

log = logging.getLogger("cara_eval.synth")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cara_eval.synth", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/config.yaml", help="science config (default: %(default)s)")
    parser.add_argument("--n-cases", type=int, help="eligible cases in total (default: synthetic.n_cases)")
    parser.add_argument("--trend", choices=TREND_SHAPES, help="secular trend shape (default: synthetic.trend_shape)")
    parser.add_argument("--seed", type=int, help="master seed (default: seed)")
    parser.add_argument("--forces", help="comma-separated force keys (default: config forces, else the nine)")
    parser.add_argument("--n-forces", type=int, help="national scale: the nine plus force_10..force_N (N <= 43)")
    parser.add_argument("--mappings-out", help="where identity mappings of force_10.. (and copies of the nine) go")
    parser.add_argument("--raw-dir", help="raw extract folder (default: raw_dir)")
    parser.add_argument("--truth-file", help="truth JSON (default: synthetic.truth_file)")
    parser.add_argument("--force-overwrite", action="store_true", help="replace existing extracts of these forces")
    return parser


def _existing_extracts(raw_dir: Path) -> list[Path]:
    """Files in force folders (the README at the top is not an extract)."""
    return sorted(p for p in raw_dir.glob("*/**/*") if p.is_file()) if raw_dir.is_dir() else []


def run(argv=None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    config = yaml.safe_load(Path(args.config).read_text(encoding="utf-8"))
    synthetic = config["synthetic"]
    forces = args.forces.split(",") if args.forces else (config.get("forces") or None)
    if args.n_forces and args.forces:
        raise SystemExit("synth: give --forces or --n-forces, not both")
    if args.n_forces and args.n_forces > len(NINE_FORCES) and not args.mappings_out:
        raise SystemExit("synth: --n-forces above 9 needs --mappings-out DIR for the identity mappings")
    raw_dir = Path(args.raw_dir or config["raw_dir"])
    truth_file = Path(args.truth_file or synthetic["truth_file"])
    seed = config["seed"] if args.seed is None else args.seed

    existing = _existing_extracts(raw_dir)
    if existing and not args.force_overwrite:
        raise SystemExit(f"synth: {raw_dir} already holds extracts (e.g. {existing[0]}); "
                         "pass --force-overwrite to replace them")
    started = time.perf_counter()
    population = simulate_population(args.n_cases or synthetic["n_cases"], forces, seed,
                                     args.trend or synthetic["trend_shape"], args.n_forces, pseudonyms=False)
    for force in population.truth["forces"]:
        shutil.rmtree(raw_dir / force, ignore_errors=True)
    defects = write_raw_extracts(population, raw_dir, config["mappings_dir"], seed, args.mappings_out)
    truth = {**population.truth, "injected_defects": defects}
    truth_file.parent.mkdir(parents=True, exist_ok=True)
    truth_file.write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    log.info("synth: %d cases in %d forces written to %s, truth to %s (%.1f s)", len(population.cases),
             len(defects), raw_dir, truth_file, time.perf_counter() - started)
