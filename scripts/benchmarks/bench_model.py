"""Benchmark of the primary model: coarsened-cell fit vs a naive row-level Bernoulli fit, same model and data.

Prints the cell count, the CPU cost of one log-density + gradient evaluation (what each leapfrog step costs, JAX),
wall and CPU time (build + compile + sample), leapfrog steps, minimum bulk ESS over the gated parameters, min ESS
per second and whether the fit passes the configured gate. National scale: --cases 1000000 --forces 43.
Usage: .venv/bin/python scripts/benchmarks/bench_model.py [--sampler pymc|nutpie|nutpie_jax] [--draws N]
       [--tune N] [--mass-matrix diagonal|low_rank] [--cases N] [--forces N] [--naive-draws 200]
       [--trend linear|nonlinear] [--likelihood cells|grouped] [--skip-naive] [--centred intercepts,effects,trend]
       [--target-accept 0.9 [0.97]] [--seed N]
"""

import argparse
import time

import jax
import yaml

from cara_eval.common.compile_cache import use_compile_dir

CONFIG = yaml.safe_load(open("config/config.yaml"))
use_compile_dir(CONFIG["model"]["compile_dir"])

from pymc.sampling.jax import get_jaxified_logp  # noqa: E402

from cara_eval.model.cells import CellSpec, build_cells, row_level_cells  # noqa: E402
from cara_eval.model.effectiveness import LIKELIHOODS, build_model, sample  # noqa: E402
from cara_eval.model.gate import gate_table  # noqa: E402
from cara_eval.synth.population import simulate_population  # noqa: E402


def gradient_microseconds(cells, settings, likelihood, repeats=2000):
    """CPU microseconds per log-density + gradient evaluation of the JAX-compiled model at its initial point.

    A fit's sampling cost is this times its leapfrog steps (plus the sampler's overhead per call), so a change to
    the model's graph can be judged here in seconds, without sampling."""
    model = build_model(cells, settings["priors"], settings["centred"], likelihood=likelihood)
    point = model.initial_point()
    values = [jax.numpy.asarray(point[variable.name]) for variable in model.value_vars]
    step = jax.jit(jax.value_and_grad(get_jaxified_logp(model, negative_logp=False)))
    jax.block_until_ready(step(values))
    start = time.process_time()
    for _ in range(repeats):
        result = step(values)
    jax.block_until_ready(result)
    return 1e6 * (time.process_time() - start) / repeats


def timed_fit(cells, settings, sampler, chains, draws, tune, mass_matrix, likelihood, seed):
    """Build, compile and sample; return (wall s, CPU s, leapfrog steps, min bulk ESS, divergences, max R-hat, gate,
    the target_accept of the kept fit). Wall and CPU include any fit sampled again after divergences; steps are the
    kept fit's."""
    start, cpu_start = time.perf_counter(), time.process_time()
    model = build_model(cells, settings["priors"], settings["centred"], likelihood=likelihood)
    idata = sample(model, sampler, chains, draws, tune, seed, cores=2, target_accept=settings["target_accept"],
                   mass_matrix=mass_matrix)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    gate = gate_table(idata, "bench", settings["gate"])
    steps = int(idata.sample_stats["n_steps"].sum())
    return (seconds, cpu_seconds, steps, gate["ess_bulk"].min(), int(gate["divergences"].iloc[0]),
            gate["r_hat"].max(), bool(gate["passed"].all()), idata.sample_stats.attrs["target_accept"])


def centred_terms(text: str, terms: tuple[str, ...]) -> set[str]:
    """The terms named in --centred; an unknown name stops the run instead of silently centring nothing."""
    named = {name for name in text.split(",") if name}
    if unknown := named - set(terms):
        raise argparse.ArgumentTypeError(f"unknown term {', '.join(sorted(unknown))}; terms: {', '.join(terms)}")
    return named


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    settings = dict(CONFIG["model"])
    parser.add_argument("--sampler", default=settings["sampler"], choices=["pymc", "nutpie", "nutpie_jax"])
    parser.add_argument("--chains", type=int, default=settings["chains"])
    parser.add_argument("--draws", type=int, default=settings["draws"])
    parser.add_argument("--tune", type=int, default=settings["tune"])
    parser.add_argument("--mass-matrix", default=settings["mass_matrix"], choices=["diagonal", "low_rank"])
    parser.add_argument("--cases", type=int, default=CONFIG["synthetic"]["n_cases"])
    parser.add_argument("--forces", type=int, default=9, help="9, or up to 43 (the generator's force_10..)")
    parser.add_argument("--naive-draws", type=int, default=200)
    parser.add_argument("--trend", default="linear", choices=["linear", "nonlinear"])
    parser.add_argument("--likelihood", default=settings["likelihood"], choices=LIKELIHOODS)
    parser.add_argument("--skip-naive", action="store_true")
    terms = tuple(settings["centred"])
    parser.add_argument("--centred", type=lambda text: centred_terms(text, terms),
                        help=f"comma-separated terms to centre, of {', '.join(terms)}; default: config model.centred")
    parser.add_argument("--target-accept", type=float, nargs="+", help="one value, or several tried in turn while "
                        "a fit has divergences; default: config model.target_accept")
    parser.add_argument("--seed", type=int, default=CONFIG["seed"], help="the sampler's seed (the data keep config's)")
    args = parser.parse_args()
    if args.target_accept:
        settings["target_accept"] = args.target_accept[0] if len(args.target_accept) == 1 else args.target_accept
    if args.centred is not None:
        settings["centred"] = {term: term in args.centred for term in terms}

    n_forces = args.forces if args.forces > 9 else None
    cases = simulate_population(args.cases, None, CONFIG["seed"], args.trend, n_forces, missingness=False).cases
    spec = CellSpec.from_config(settings["cells"])
    started = time.perf_counter()
    cells = build_cells(cases, spec)
    print(f"data: {len(cases):,} cases, {cases['force'].nunique()} forces, trend {args.trend}; tune {args.tune}, "
          f"{args.mass_matrix} mass matrix, {args.likelihood} likelihood, centred {settings['centred']}, "
          f"target_accept {settings['target_accept']}")
    print(f"cells: {len(cells.hazard):,} hazard + {len(cells.binomial):,} binomial = "
          f"{len(cells.hazard) + len(cells.binomial):,} ({len(cells.standard):,} ATT cells), "
          f"aggregated in {time.perf_counter() - started:.1f} s")
    print(f"log density + gradient (JAX): {gradient_microseconds(cells, settings, args.likelihood):.0f} us CPU per evaluation")
    print(f"{'fit':<24}{'chains x draws':>15}{'wall s':>8}{'CPU s':>8}{'steps':>9}{'min ESS':>9}{'ESS/s':>8}{'div':>5}"
          f"{'max R-hat':>10}{'gate':>7}{'at':>6}")

    def report(label, draws, result):
        seconds, cpu, steps, ess, divergences, r_hat, passed, target_accept = result
        print(f"{label:<24}{f'{args.chains} x {draws}':>15}{seconds:>8.1f}{cpu:>8.1f}{steps:>9,}{ess:>9.0f}"
              f"{ess / seconds:>8.2f}{divergences:>5}{r_hat:>10.4f}{'passed' if passed else 'FAILED':>7}{target_accept:>6}")
        return ess / seconds

    fit = timed_fit(cells, settings, args.sampler, args.chains, args.draws, args.tune, args.mass_matrix,
                    args.likelihood, args.seed)
    cells_rate = report(f"cells ({args.sampler})", args.draws, fit)
    if args.skip_naive:
        return
    rows = row_level_cells(cases, spec)
    naive = timed_fit(rows, settings, args.sampler, args.chains, args.naive_draws, args.tune, args.mass_matrix,
                      "cells", args.seed)
    naive_rate = report("row-level Bernoulli", args.naive_draws, naive)
    print(f"speed-up in min ESS/s: {cells_rate / naive_rate:.1f}x (target >= 20x)")


if __name__ == "__main__":
    main()
