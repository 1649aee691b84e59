"""Benchmark: ingest of a national-scale synthetic extract (default 1,000,000 cases in 43 forces) in one process.

Usage: .venv/bin/python scripts/benchmarks/bench_ingest.py [--cases N] [--dir DIR]
Writes the extracts with the synthetic generator (`python -m cara_eval.synth --n-forces 43`) into DIR once,
then ingests every force in one child process and prints its wall time, CPU time and peak RSS (the
child's, so the generator's memory does not count). Target: <= 60 s and <= 4 GB on 2 cores.
"""

import argparse
import multiprocessing
import resource
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
N_FORCES = 43


def generate(folder, n_cases):
    subprocess.run(
        [sys.executable, "-m", "cara_eval.synth", "--config", str(REPO / "config" / "config.yaml"),
         "--n-forces", str(N_FORCES), "--n-cases", str(n_cases), "--raw-dir", str(folder / "raw"),
         "--truth-file", str(folder / "truth.json"), "--mappings-out", str(folder / "forces")],
        check=True,
    )


def ingest_all(folder):
    """Every force's ingest, as the workflow runs them, but in one process."""
    from cara_eval.ingest.force import ingest_force
    from cara_eval.ingest.mapping import load_mapping
    from cara_eval.ingest.outcomes import load_harm_weights
    from cara_eval.ingest.parsing import load_offence_types
    from cara_eval.ingest.pseudonymise import resolve_key

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    offence_lookup = load_offence_types(REPO / config["offence_types"])
    harm_weights = load_harm_weights(REPO / config["harm_weights"])
    start, cpu_start = time.perf_counter(), time.process_time()
    rows_read = clean = 0
    for path in sorted((folder / "forces").glob("*.yaml")):
        mapping = load_mapping(path)
        result = ingest_force(
            mapping, folder / "raw", offence_lookup, harm_weights,
            resolve_key(config["pseudonymisation"], mapping["synthetic"]), config["eligibility"],
            config["outcomes"]["followup_days"],
        )
        rows_read += int(result.accounting.at[0, "rows_read"])
        clean += len(result.cases)
    print(f"ingest: {rows_read} rows read, {clean} clean cases")
    print(f"wall time {time.perf_counter() - start:.1f} s, CPU time {time.process_time() - cpu_start:.1f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/cara_bench_ingest"))
    args = parser.parse_args()
    folder = args.dir / f"national_{args.cases}"
    if not (folder / "truth.json").exists():
        generate(folder, args.cases)
    child = multiprocessing.get_context("spawn").Process(target=ingest_all, args=(folder,))
    child.start()
    child.join()
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    print(f"peak RSS {peak_gb:.2f} GB (exit code {child.exitcode})")
    sys.exit(child.exitcode)


if __name__ == "__main__":
    main()
