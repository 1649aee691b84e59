"""Which coarsening of the cells leaves confounding behind: one large simulated dataset of a calibration scenario
(default `no_effect`, where every CARA coefficient is bias), a frequentist Poisson model of first reoffences on
piecewise-exponential rows (the model's follow-up intervals, force and calendar-year effects, force slopes), fitted
with the cells' covariates as shipped, without one of them, and with finer versions. Every specification sees the same
rows, so their differences are paired and far more precise than each coefficient's own standard error.

Prints each specification's CARA log hazard ratio (SE) and its rough size per 100 CARA cases (the mean one-year risk
times the log hazard ratio). Usage: .venv/bin/python scripts/benchmarks/bench_confounding.py [--cases N]
[--scenario NAME] [--seed N]

With --replicates DIR (a scenario's finished calibration replicates, results/calibration/replicates/<scenario>), the
same Poisson model is fitted to each replicate's own dataset (re-simulated from its seed) and set beside the primary
model's pooled estimate in the replicate's file: paired over replicates, how much of the model's bias the cells'
covariates leave (the Poisson with them) and how much the rest of the model adds.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm
import yaml

from cara_eval.calibration.replicates import scenario_hierarchy, scenario_settings, simulate_replicate
from cara_eval.model.cells import PATTERN_KEYS, CellSpec, banded, interval_days, time_at_risk
from cara_eval.model.terms import COVARIATE_FIELDS
from cara_eval.synth.population import simulate_population

CONFIG = yaml.safe_load(open("config/config.yaml"))
KEYS = [k for k in PATTERN_KEYS if k not in ("force", "period", "cara")]  # the cells' covariate pattern


def piecewise_rows(cases: pd.DataFrame, spec: CellSpec) -> pd.DataFrame:
    """One row per case and follow-up interval it was at risk in: events and days at risk (as the hazard cells)."""
    days, event = time_at_risk(cases)
    exposure = interval_days(days, spec)
    starts, ends = np.asarray(spec.interval_breaks[:-1]), np.asarray(spec.interval_breaks[1:])
    in_interval = event[:, None] & (days[:, None] > starts[None, :]) & (days[:, None] <= ends[None, :])
    keys = banded(cases, spec, COVARIATE_FIELDS)
    rows = [
        keys.assign(interval=label, exposure=exposure[:, j], events=in_interval[:, j].astype(float),
                    prior_linear=np.minimum(cases["prior_da_incidents"].to_numpy(), 8),
                    age_linear=cases["age"].to_numpy(dtype=float),
                    within_year=(cases["index_date"].dt.dayofyear.to_numpy() - 183) / 365.25,
                    offence_type=cases["offence_type"].to_numpy())
        for j, label in enumerate(spec.interval_labels)
    ]
    rows = pd.concat(rows, ignore_index=True)
    return rows[rows["exposure"] > 0].reset_index(drop=True)


def design(rows: pd.DataFrame, factors: list[str], numeric: list[str]) -> pd.DataFrame:
    """CARA first, then intervals, forces, years, force slopes (all forces but the first: the years hold the shared
    line), then the covariates: factors as dummies without their first level, numeric columns as they are."""
    year = rows["period"] - rows["period"].mean()
    slopes = pd.get_dummies(rows["force"], dtype=float).iloc[:, 1:].mul(year, axis=0).add_suffix(":year")
    parts = [rows["cara"].astype(float), pd.Series(1.0, index=rows.index, name="const"), slopes, rows[numeric]]
    parts += [pd.get_dummies(rows[f].astype(str), prefix=f, drop_first=True, dtype=float)
              for f in ["interval", "force", "period", *factors]]
    return pd.concat(parts, axis=1)


def poisson_fit(rows: pd.DataFrame, matrix: pd.DataFrame):
    """Poisson regression of the rows' events on a design matrix, days at risk as the offset."""
    return sm.GLM(rows["events"].to_numpy(), matrix.to_numpy(dtype=float), family=sm.families.Poisson(),
                  offset=np.log(rows["exposure"].to_numpy())).fit()


def poisson_cara(rows: pd.DataFrame, factors: list[str], numeric: list[str], shared_line: bool = False):
    """The CARA coefficient's fit; `shared_line`: one straight line over calendar years instead of year effects."""
    matrix = design(rows, factors, numeric)
    if shared_line:
        matrix = matrix.drop(columns=[c for c in matrix.columns if c.startswith("period_")])
        matrix["year"] = rows["period"] - rows["period"].mean()
    return poisson_fit(rows, matrix)


def events_cases(cases: pd.DataFrame) -> pd.DataFrame:
    """Forces with dated reoffences: only they give piecewise-exponential rows (flag-only forces have no dates)."""
    return cases[cases["outcome_source"] == "events"].reset_index(drop=True)


def decompose_large_dataset(args, calibration: dict, spec: CellSpec):
    hierarchy = scenario_hierarchy(scenario_settings(calibration, args.scenario))
    cases = events_cases(simulate_population(args.cases, None, args.seed, missingness=False, pseudonyms=False,
                                             hierarchy=hierarchy).cases)
    rows = piecewise_rows(cases, spec)
    risk = cases["any_reoffence"].mean()
    print(f"scenario {args.scenario} ({hierarchy}); {len(cases):,} cases with dated reoffences, {len(rows):,} rows; "
          f"one-year risk {risk:.3f}")
    without = {key: [k for k in KEYS if k != key] for key in KEYS}
    specifications = {
        "cells as shipped": (KEYS, []),
        "without the DASH level": (without["dash_risk"], []),
        "prior DA linear to 8 (cells otherwise)": (without["prior_band"], ["prior_linear"]),
        "prior DA linear, without DASH": ([k for k in without["prior_band"] if k != "dash_risk"], ["prior_linear"]),
        "cells + time within the year": (KEYS, ["within_year"]),
        "cells + index offence type": ([*KEYS, "offence_type"], []),
    }
    for label, (factors, numeric) in specifications.items():
        started = time.perf_counter()
        fit = poisson_cara(rows, factors, numeric)
        print(f"{label:<42} CARA log HR {fit.params[0]:+.4f} (SE {fit.bse[0]:.4f}), about "
              f"{100 * risk * fit.params[0]:+.2f} per 100   [{time.perf_counter() - started:.0f} s]", flush=True)


def per_force_cara_per100(rows: pd.DataFrame, cara_cases: pd.DataFrame, factors: list[str],
                          numeric: list[str]) -> pd.Series:
    """A CARA effect per force (the given covariates, year effects, force slopes), each per 100 of that force's CARA
    cases (their one-year risk times the log hazard ratio)."""
    forces = sorted(rows["force"].unique())
    by_force = pd.DataFrame({f"cara:{force}": rows["cara"].astype(float) * rows["force"].eq(force) for force in forces})
    fit = poisson_fit(rows, pd.concat([by_force, design(rows, factors, numeric).drop(columns=["cara"])], axis=1))
    risk = cara_cases.groupby("force")["any_reoffence"].mean().reindex(forces)
    return pd.Series(100 * risk.to_numpy() * fit.params[: len(forces)], index=forces)


def compare_with_replicates(directory: Path, calibration: dict, spec: CellSpec, seed: int):
    """Per finished replicate: the Poisson's CARA effect per 100 (the CARA cases' one-year risk times the log hazard
    ratio, a first-order conversion: exact enough where the truth is 0, as in `no_effect`) with the cells as shipped,
    with prior DA (and age) linear, with a shared straight line instead of year effects, and with a CARA effect per
    force averaged over the CARA cases as the model's estimand weighs them (cells as shipped; age and prior DA
    linear), beside the primary model's pooled risk difference; then means and paired differences, and the per-force
    Poisson's mean error by force."""
    scenario = directory.name
    linear = ([k for k in KEYS if k not in ("prior_band", "age_band")], ["prior_linear", "age_linear"])
    specifications = {"cells as shipped": (KEYS, [], False),
                      "prior DA linear to 8": ([k for k in KEYS if k != "prior_band"], ["prior_linear"], False),
                      "age and prior DA linear": (*linear, False),
                      "shared straight line, not year effects": (KEYS, [], True)}
    per_force = {"a CARA effect per force, over CARA cases": (KEYS, []),
                 "the same, age and prior DA linear": linear}
    table, forces = [], []
    for path in sorted(directory.glob("*.csv"), key=lambda p: int(p.stem)):
        fitted = pd.read_csv(path)
        model = fitted[fitted["method"].eq("bayes_hierarchical") & fitted["scope"].eq("pooled")
                       & fitted["estimand"].eq("risk_difference_per100")].iloc[0]
        cases = events_cases(simulate_replicate(scenario, int(path.stem), calibration, seed)[0])
        rows = piecewise_rows(cases, spec)
        cara_cases = cases[cases["arm"].eq("cara")]
        risk, weights = cara_cases["any_reoffence"].mean(), cara_cases.groupby("force").size()
        row = {"replicate": int(path.stem), "primary model": model["bias"]}
        for label, (factors, numeric, line) in specifications.items():
            row[label] = 100 * risk * poisson_cara(rows, factors, numeric, line).params[0] - model["truth"]
        for label, (factors, numeric) in per_force.items():
            by_force = per_force_cara_per100(rows, cara_cases, factors, numeric)
            force_weights = weights.reindex(by_force.index)
            row[label] = float((by_force * force_weights).sum() / force_weights.sum()) - model["truth"]
            forces.append(by_force.rename((label, int(path.stem))))
        table.append(row)
        print(", ".join(f"{key} {value:+.3f}" if key != "replicate" else f"replicate {value}"
                        for key, value in row.items()), flush=True)
    table = pd.DataFrame(table).set_index("replicate")
    n = len(table)
    print(f"\n{scenario}: {n} replicates; error per 100 CARA cases, mean (SE over replicates); paired against the "
          "Poisson with the cells as shipped")
    for label in table.columns:
        paired = table[label] - table["cells as shipped"]
        print(f"{label:<42} {table[label].mean():+.3f} ({table[label].std() / n ** 0.5:.3f});  paired "
              f"{paired.mean():+.3f} ({paired.std() / n ** 0.5:.3f})")
    forces = pd.DataFrame(forces)
    for label in per_force:
        errors = forces.loc[label]
        print(f"\n{label}: mean error per 100 (SE) by force (truth 0 in no_effect)")
        print(pd.DataFrame({"mean": errors.mean(), "se": errors.std() / n ** 0.5}).round(3).to_string())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300_000)
    parser.add_argument("--scenario", default="no_effect")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--replicates", type=Path, help="a scenario's finished calibration replicates")
    args = parser.parse_args()
    calibration = CONFIG["calibration"]
    spec = CellSpec.from_config(CONFIG["model"]["cells"])
    if args.replicates:
        compare_with_replicates(args.replicates, calibration, spec, CONFIG["seed"])
    else:
        decompose_large_dataset(args, calibration, spec)


if __name__ == "__main__":
    main()
