"""Benchmark: one imputed dataset (default config) on N synthetic cases; prints wall and CPU time and peak RSS.

Usage: .venv/bin/python scripts/benchmarks/bench_impute.py [--cases N] [--forces F] [--dir DIR]
Generates canonical cases with cara_eval.synth.population (its missingness, including a structurally missing field) and
writes them to DIR first, then times diagnostics and one imputation in a child process, so the peak RSS is
the imputation's, not the generator's. CPU time (all threads of the child) is the fair figure on a shared machine,
where wall time also counts the waits for a core.
"""

import argparse
import multiprocessing
import os
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


def reset_peak_rss() -> bool:
    """Restart the kernel's peak-RSS count of this process (Linux), so the next peak is the imputation's own."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def impute_once(path: str, section: dict, seed: int, queue) -> None:
    from cara_eval.impute.stage import diagnose, imputed_dataset

    cases = pd.read_parquet(path)
    wall, cpu = time.perf_counter(), time.process_time()
    diagnostics = diagnose(cases, {}, section)
    figures = {"diagnose_wall": time.perf_counter() - wall, "diagnose_cpu": time.process_time() - cpu,
               "diagnose_peak_gb": peak_rss_gb(), "n_structural": len(diagnostics.structural)}
    peak_was_reset = reset_peak_rss()
    wall, cpu = time.perf_counter(), time.process_time()
    imputed_dataset(cases, diagnostics.structural, section, seed=seed, k=1)
    figures |= {"impute_wall": time.perf_counter() - wall, "impute_cpu": time.process_time() - cpu,
                "impute_peak_gb": peak_rss_gb() if peak_was_reset else None}
    queue.put(figures)


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
    figures = queue.get()
    child.join()
    # The reset before the imputation also lowered the child's recorded peak: the whole run's is the larger of the two.
    peak_gb = max(figures["diagnose_peak_gb"], resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2)
    print(f"cases={args.cases:,} forces={args.forces} iterations={config['imputation']['iterations']} "
          f"structural_pairs={figures['n_structural']} load_average={' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"diagnostics: wall {figures['diagnose_wall']:.1f} s, CPU {figures['diagnose_cpu']:.1f} s, "
          f"peak RSS {figures['diagnose_peak_gb']:.2f} GB")
    imputation_peak = "n/a" if figures["impute_peak_gb"] is None else f"{figures['impute_peak_gb']:.2f} GB"
    print(f"one imputation: wall {figures['impute_wall']:.1f} s, CPU {figures['impute_cpu']:.1f} s, "
          f"peak RSS {imputation_peak} (cases table included)")
    print(f"peak RSS (child, whole run): {peak_gb:.2f} GB")


if __name__ == "__main__":
    main()
