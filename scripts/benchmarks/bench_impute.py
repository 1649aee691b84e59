"""Benchmark: one imputed dataset (default config) on N synthetic cases; prints wall time and peak RSS.

Usage: .venv/bin/python scripts/benchmarks/bench_impute.py [--cases N] [--forces F] [--dir DIR]
Generates canonical cases with cara_eval.synth.population (its missingness, including a structurally missing field) and
writes them to DIR first, then times diagnostics and one imputation in a child process, so the peak RSS is
the imputation's, not the generator's.
"""

import argparse
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[2]


def generate(path: Path, n_cases: int, n_forces: int, seed: int = 1) -> None:
    from cara_eval.common.schema import CASE_FIELDS
    from cara_eval.synth.population import simulate_population

    population = simulate_population(n_cases, None, seed, n_forces=n_forces if n_forces > 9 else None)
    population.cases[CASE_FIELDS].to_parquet(path, index=False)


def impute_once(path: str, section: dict, seed: int, queue) -> None:
    from cara_eval.impute.stage import diagnose, imputed_dataset

    cases = pd.read_parquet(path)
    start = time.perf_counter()
    diagnostics = diagnose(cases, {}, section)
    diagnosed = time.perf_counter()
    imputed_dataset(cases, diagnostics.structural, section, seed=seed, k=1)
    queue.put((diagnosed - start, time.perf_counter() - diagnosed, len(diagnostics.structural)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=18_000)
    parser.add_argument("--forces", type=int, default=9, help="9, or more for force_10.. (national scale)")
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    folder = args.dir or Path(tempfile.mkdtemp(prefix="bench_impute_"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"cases_{args.cases}_{args.forces}.parquet"
    if not path.exists():
        started = time.perf_counter()
        generate(path, args.cases, args.forces, seed=config["seed"])
        print(f"generated {args.cases:,} cases in {time.perf_counter() - started:.1f} s: {path}")

    queue = multiprocessing.get_context("spawn").Queue()
    child = multiprocessing.get_context("spawn").Process(
        target=impute_once, args=(str(path), config["imputation"], config["seed"], queue)
    )
    child.start()
    diagnose_s, impute_s, n_structural = queue.get()
    child.join()
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    print(f"cases={args.cases:,} forces={args.forces} iterations={config['imputation']['iterations']} "
          f"structural_pairs={n_structural}")
    print(f"diagnostics wall time: {diagnose_s:.1f} s")
    print(f"one imputation wall time: {impute_s:.1f} s")
    print(f"peak RSS (child): {peak_gb:.2f} GB")


if __name__ == "__main__":
    main()
