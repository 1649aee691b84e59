"""Where one primary fit's time goes: build, compile, log density + gradient calls and the Deterministics.

Wraps the log density and the per-draw expansion (the Deterministics: ATT estimands) that nutpie calls from its
chains and sums their wall time, so a change to the model's graph or the sampler can be judged by its share of a
fit. Counts every call, warm-up included (`n_steps` in sample_stats counts the kept draws' steps only).
Pin it to one core for per-call figures that other processes do not blur: `taskset -c 0`.
Usage: .venv/bin/python scripts/benchmarks/bench_fit_profile.py [--cases results/impute/imp1.parquet]
       [--chains 4] [--draws 1000] [--tune 500] [--backend jax|numba] [--free-only]
"""

import argparse
import dataclasses
import time

import pandas as pd
import yaml

from cara_eval.common.compile_cache import use_compile_dir

CONFIG = yaml.safe_load(open("config/config.yaml"))
use_compile_dir(CONFIG["model"]["compile_dir"])

import nutpie  # noqa: E402

from cara_eval.model.cells import CellSpec, build_cells  # noqa: E402
from cara_eval.model.effectiveness import build_model  # noqa: E402
from cara_eval.synth.population import simulate_population  # noqa: E402


def timed_calls(make_function, spent: dict, name: str):
    """`make_function` whose functions add their calls and wall seconds to spent[name]."""
    def make(*args):
        function = make_function(*args)

        def timed(*call_args, **kwargs):
            start = time.perf_counter()
            result = function(*call_args, **kwargs)
            spent[name]["seconds"] += time.perf_counter() - start
            spent[name]["calls"] += 1
            return result
        return timed
    return make


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    settings = CONFIG["model"]
    parser.add_argument("--cases", help="a cases table (parquet); default: complete default-size synthetic data")
    parser.add_argument("--chains", type=int, default=settings["chains"])
    parser.add_argument("--draws", type=int, default=settings["draws"])
    parser.add_argument("--tune", type=int, default=settings["tune"])
    parser.add_argument("--backend", default="jax", choices=["jax", "numba"])
    parser.add_argument("--free-only", action="store_true", help="store the free parameters only, no Deterministics")
    args = parser.parse_args()

    cases = (pd.read_parquet(args.cases) if args.cases else
             simulate_population(CONFIG["synthetic"]["n_cases"], None, CONFIG["seed"], missingness=False).cases)
    started = time.perf_counter()
    cells = build_cells(cases, CellSpec.from_config(settings["cells"]))
    model = build_model(cells, settings["priors"], settings["centred"], likelihood=settings["likelihood"])
    print(f"cells: {len(cells.hazard):,} hazard + {len(cells.binomial):,} binomial, {len(cells.standard):,} ATT cells; "
          f"built in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    backend = {"backend": "jax", "gradient_backend": "jax"} if args.backend == "jax" else {"backend": "numba"}
    var_names = [variable.name for variable in model.free_RVs] if args.free_only else None
    compiled = nutpie.compile_pymc_model(model, var_names=var_names, **backend)
    print(f"compile ({args.backend}): {time.perf_counter() - started:.1f} s")

    logp, stored = "log density + gradient", "values stored per draw (Deterministics)"
    spent = {logp: {"calls": 0, "seconds": 0.0}, stored: {"calls": 0, "seconds": 0.0}}
    compiled = dataclasses.replace(compiled, _make_logp_func=timed_calls(compiled._make_logp_func, spent, logp),
                                   _make_expand_func=timed_calls(compiled._make_expand_func, spent, stored))
    started, cpu_started = time.perf_counter(), time.process_time()
    idata = nutpie.sample(compiled, draws=args.draws, tune=args.tune, chains=args.chains, cores=1, seed=CONFIG["seed"],
                          target_accept=settings["target_accept"], progress_bar=False)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    print(f"sample {args.chains} x ({args.tune} + {args.draws}), one thread: {wall:.1f} s wall, {cpu:.1f} s CPU, "
          f"{int(idata.sample_stats['n_steps'].sum()):,} leapfrog steps in the kept draws")
    for name, part in spent.items():
        print(f"  {name}: {part['calls']:,} calls, {part['seconds']:.1f} s ({100 * part['seconds'] / wall:.0f}% of the "
              f"wall time), {1e6 * part['seconds'] / max(part['calls'], 1):.0f} us per call")


if __name__ == "__main__":
    main()
