"""Benchmark of leave-one-force-out: one refit per force (what the publication set runs) against Pareto-smoothed
importance sampling from the one full-data fit (`psis_lofo_scores`), same data, same pooling, same settings.

Prints, per force: the refit's held-out log predictive density and seconds, the importance-sampling estimate, their
difference and Pareto k; then the time of each route and whether the two rank the poolings alike.
Usage: .venv/bin/python scripts/benchmarks/bench_lofo.py [--cases N] [--poolings partial complete none]
       [--refit-forces N]
"""

import argparse
import sys
import time

import pandas as pd
import yaml

from cara_eval.common.compile_cache import use_compile_dir

CONFIG = yaml.safe_load(open("config/config.yaml"))
use_compile_dir(CONFIG["model"]["compile_dir"])

from cara_eval.model.effectiveness import derive_seed, fit_cases  # noqa: E402
from cara_eval.sensitivity.analyses import VARIANT_OF_POOLING, lofo_score, psis_lofo_scores, variant_settings  # noqa: E402
from cara_eval.synth.population import simulate_population  # noqa: E402

PARETO_K_RELIABLE = 0.7


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=CONFIG["synthetic"]["n_cases"])
    parser.add_argument("--poolings", nargs="+", default=["partial"], choices=["partial", "complete", "none"])
    parser.add_argument("--refit-forces", type=int, default=9, help="refit only the first N forces (time)")
    sampling = CONFIG["sensitivity"]["lofo"]["importance_sampling"]
    parser.add_argument("--thin", type=int, default=sampling["thin"],
                        help="importance-sample every n-th draw of the full fit")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # each pooling's table as it is done (the refits take minutes)

    cases = simulate_population(args.cases, None, CONFIG["seed"], "linear", None, missingness=False).cases
    print(f"data: {len(cases):,} cases, {cases['force'].nunique()} forces; importance sampling every {args.thin}. "
          "draw; both routes integrate each held-out force's own terms exactly (cara_eval.sensitivity.new_force)")
    tables = []
    for pooling in args.poolings:
        variant = VARIANT_OF_POOLING[pooling]
        settings, _, _ = variant_settings(CONFIG["model"], CONFIG["sensitivity"], variant)
        seed = derive_seed(CONFIG["seed"], "bench_lofo", pooling)
        started = time.perf_counter()
        cells, _, idata = fit_cases(cases, settings, seed, cores=2, pooling=pooling)
        fit_seconds = time.perf_counter() - started
        started = time.perf_counter()
        thinned = idata.sel(draw=slice(None, None, args.thin))
        approximate = psis_lofo_scores(cells, thinned, settings, pooling)
        psis_seconds = time.perf_counter() - started
        refits = []
        for force in cells.forces[: args.refit_forces]:
            started = time.perf_counter()
            row, _ = lofo_score(cases, force, settings, pooling, seed, cores=2)
            refits.append({"force": force, "lpd_refit": row["lpd"], "refit_s": time.perf_counter() - started})
        table = approximate.rename(columns={"lpd": "lpd_psis"}).merge(pd.DataFrame(refits), on="force")
        table["difference"] = table["lpd_psis"] - table["lpd_refit"]
        tables.append(table)
        print(f"\npooling {pooling}: full fit {fit_seconds:.0f} s + importance sampling {psis_seconds:.0f} s "
              f"vs {len(refits)} refits {table['refit_s'].sum():.0f} s")
        print(table[["force", "n_cells", "lpd_refit", "lpd_psis", "difference", "pareto_k", "refit_s"]]
              .to_string(index=False, float_format=lambda v: f"{v:.2f}"))
        reliable = table["pareto_k"] <= PARETO_K_RELIABLE
        print(f"Pareto k <= {PARETO_K_RELIABLE}: {int(reliable.sum())} of {len(table)} forces; "
              f"max |difference| where reliable {table.loc[reliable, 'difference'].abs().max():.2f}, "
              f"elsewhere {table.loc[~reliable, 'difference'].abs().max():.2f}")
    if len(tables) > 1:
        totals = pd.concat(tables).groupby("pooling")[["lpd_refit", "lpd_psis"]].sum()
        print("\nsum over forces:\n" + totals.to_string(float_format=lambda v: f"{v:.2f}"))
        print("same ranking of the poolings:",
              list(totals["lpd_refit"].sort_values().index) == list(totals["lpd_psis"].sort_values().index))


if __name__ == "__main__":
    main()
