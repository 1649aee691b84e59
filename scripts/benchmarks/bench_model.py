"""Benchmark of the primary model: coarsened-cell fit vs a naive row-level Bernoulli fit, same model and data.

Prints wall time (compile included), minimum bulk ESS over the gated parameters and min ESS per second.
Usage: .venv/bin/python scripts/benchmarks/bench_model.py [--sampler pymc|nutpie] [--draws 1000]
       [--naive-draws 200] [--trend linear|nonlinear] [--skip-naive]
"""

import argparse
import time

import yaml

from cara_eval.common.compile_cache import use_compile_dir

CONFIG = yaml.safe_load(open("config/config.yaml"))
use_compile_dir(CONFIG["model"]["compile_dir"])

from cara_eval.model.cells import CellSpec, build_cells, row_level_cells  # noqa: E402
from cara_eval.model.effectiveness import build_model, sample  # noqa: E402
from cara_eval.model.gate import gate_table  # noqa: E402
from cara_eval.synth.population import simulate_population  # noqa: E402


def timed_fit(cells, settings, sampler, chains, draws, seed):
    """Build, compile and sample (config tune steps); return (seconds, min bulk ESS, divergences, max R-hat)."""
    start = time.perf_counter()
    model = build_model(cells, settings["priors"], settings["centred"])
    idata = sample(model, sampler, chains, draws, settings["tune"], seed, cores=2, target_accept=settings["target_accept"])
    seconds = time.perf_counter() - start
    gate = gate_table(idata, "bench", settings["gate"])
    return seconds, gate["ess_bulk"].min(), int(gate["divergences"].iloc[0]), gate["r_hat"].max()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    settings = CONFIG["model"]
    parser.add_argument("--sampler", default=settings["sampler"], choices=["pymc", "nutpie", "nutpie_jax"])
    parser.add_argument("--chains", type=int, default=settings["chains"])
    parser.add_argument("--draws", type=int, default=settings["draws"])
    parser.add_argument("--naive-draws", type=int, default=200)
    parser.add_argument("--trend", default="linear", choices=["linear", "nonlinear"])
    parser.add_argument("--skip-naive", action="store_true")
    args = parser.parse_args()

    cases = simulate_population(CONFIG["synthetic"]["n_cases"], None, CONFIG["seed"], args.trend, missingness=False).cases
    spec = CellSpec.from_config(settings["cells"])
    cells = build_cells(cases, spec)
    print(f"data: {len(cases)} cases, {cases['force'].nunique()} forces, trend {args.trend}")
    print(f"cells: {len(cells.hazard)} hazard + {len(cells.binomial)} binomial ({len(cells.standard)} ATT cells)")
    header = f"{'fit':<28}{'chains x draws':>16}{'seconds':>10}{'min ESS':>10}{'ESS/s':>9}{'div':>6}{'max R-hat':>11}"
    print(header)
    seconds, ess, divergences, r_hat = timed_fit(cells, settings, args.sampler, args.chains, args.draws, CONFIG["seed"])
    print(f"{'cells (' + args.sampler + ')':<28}{f'{args.chains} x {args.draws}':>16}{seconds:>10.1f}{ess:>10.0f}"
          f"{ess / seconds:>9.2f}{divergences:>6}{r_hat:>11.3f}")
    if args.skip_naive:
        return
    rows = row_level_cells(cases, spec)
    n_seconds, n_ess, n_div, n_r_hat = timed_fit(rows, settings, args.sampler, args.chains, args.naive_draws, CONFIG["seed"])
    print(f"{'row-level Bernoulli':<28}{f'{args.chains} x {args.naive_draws}':>16}{n_seconds:>10.1f}{n_ess:>10.0f}"
          f"{n_ess / n_seconds:>9.2f}{n_div:>6}{n_r_hat:>11.3f}")
    print(f"speed-up in min ESS/s: {(ess / seconds) / (n_ess / n_seconds):.1f}x (target >= 10x; fit target <= 60 s)")


if __name__ == "__main__":
    main()
