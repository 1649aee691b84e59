"""Which coarsening of the cells leaves confounding behind: one large simulated dataset of a calibration scenario
(default `no_effect`, where every CARA coefficient is bias), a frequentist Poisson model of first reoffences on
piecewise-exponential rows (the model's follow-up intervals, force and calendar-year effects, force slopes), fitted
with the cells' covariates as shipped, without one of them, and with finer versions. Every specification sees the same
rows, so their differences are paired and far more precise than each coefficient's own standard error.

Prints each specification's CARA log hazard ratio (SE) and its rough size per 100 CARA cases (the mean one-year risk
times the log hazard ratio). Usage: .venv/bin/python scripts/benchmarks/bench_confounding.py [--cases N]
[--scenario NAME] [--seed N]
"""

import argparse
import time

import numpy as np
import pandas as pd
import statsmodels.api as sm
import yaml

from cara_eval.calibration.replicates import scenario_hierarchy, scenario_settings
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300_000)
    parser.add_argument("--scenario", default="no_effect")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    calibration = CONFIG["calibration"]
    hierarchy = scenario_hierarchy(scenario_settings(calibration, args.scenario))
    cases = simulate_population(args.cases, None, args.seed, missingness=False, pseudonyms=False,
                                hierarchy=hierarchy).cases
    cases = cases[cases["outcome_source"] == "events"].reset_index(drop=True)
    spec = CellSpec.from_config(CONFIG["model"]["cells"])
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
        matrix = design(rows, factors, numeric)
        fit = sm.GLM(rows["events"].to_numpy(), matrix.to_numpy(), family=sm.families.Poisson(),
                     offset=np.log(rows["exposure"].to_numpy())).fit()
        print(f"{label:<42} CARA log HR {fit.params[0]:+.4f} (SE {fit.bse[0]:.4f}), about "
              f"{100 * risk * fit.params[0]:+.2f} per 100   [{time.perf_counter() - started:.0f} s]", flush=True)


if __name__ == "__main__":
    main()
