"""Calibration of the primary model: do its intervals cover the truth as often as they claim?

Why: the report's credible intervals are only as honest as the model. Replicate datasets are simulated under
the generator's stated hierarchy (cara_eval.synth.population: force effects drawn from Normal(mu_log_hr, tau), a secular
trend of a chosen shape), each is fitted exactly as the model_fit rule fits a dataset (cara_eval.model.effectiveness.fit_cases,
config `model` with the calibration's shorter chains), and the 50% and 90% intervals of the pooled and per-force
risk differences are checked against the true values. Beside them: the bias of the naive before/after estimate
(cara_eval.model.naive) and of per-force analyses without pooling (the same model with independent force effects),
the two answers the hierarchical model is meant to improve on.

Replicates skip the raw files: they use the canonical cases directly (simulate_population with missingness=False,
no pseudonyms, raw identifiers dropped), so what is calibrated is the model, not ingest or imputation.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from cara_eval.model.effectiveness import derive_seed, fit_cases
from cara_eval.model.estimands import stacked_draws
from cara_eval.model.gate import gate_table
from cara_eval.model.naive import naive_before_after
from cara_eval.synth.population import RAW_IDENTIFIERS, simulate_population

OUTCOME = "any_reoffence"
ESTIMAND = "risk_difference_per100"
# (method, posterior variable of the pooled effect or None, posterior variable of the force effects)
BAYES_METHODS = [
    ("bayes_hierarchical", "risk_difference_per100", "risk_difference_per100_force"),
    ("no_pooling", None, "risk_difference_per100_force"),
]
NAIVE = "naive_before_after"
INTERVALS = {"50": (0.25, 0.75), "90": (0.05, 0.95)}
REPLICATE_COLUMNS = [
    "replicate", "trend_shape", "method", "estimand", "scope", "level", "truth", "estimate",
    "q05", "q25", "q75", "q95", "covered_50", "covered_90", "bias", "divergences", "gate_passed", "seconds",
]
COVERAGE_COLUMNS = [
    "method", "scope", "trend_shape", "n_replicates", "n_estimates", "coverage_50", "coverage_90",
    "mean_bias", "rmse", "mean_width_90", "seconds_per_replicate",
]
ALL_SHAPES = "all"


def replicate_trend_shape(replicate: int, trend_shapes: list[str]) -> str:
    """Replicates alternate over the configured trend shapes, so any K covers each shape about equally."""
    return trend_shapes[replicate % len(trend_shapes)]


def simulate_replicate(replicate: int, settings: dict, seed: int) -> tuple[pd.DataFrame, dict, str]:
    """Canonical cases (every covariate observed, no identifiers) and truth of one replicate."""
    shape = replicate_trend_shape(replicate, settings["trend_shapes"])
    population = simulate_population(
        settings["n_cases"], settings.get("forces") or None, derive_seed(seed, "calibration", str(replicate)),
        shape, missingness=False, pseudonyms=False,
    )
    return population.cases.drop(columns=RAW_IDENTIFIERS), population.truth, shape


def replicate_model_config(model_config: dict, settings: dict) -> dict:
    """The primary model's config with the calibration's sampler settings (shorter chains) laid over it."""
    return {**model_config, **settings["fit"]}


def _interval_rows(method: str, scope: str, level: str, values: np.ndarray, truth: float) -> dict:
    q05, q25, q75, q95 = np.quantile(values, [0.05, 0.25, 0.75, 0.95])
    estimate = float(np.mean(values))
    return {"method": method, "scope": scope, "level": level, "truth": truth, "estimate": estimate,
            "q05": q05, "q25": q25, "q75": q75, "q95": q95,
            "covered_50": bool(q25 <= truth <= q75), "covered_90": bool(q05 <= truth <= q95),
            "bias": estimate - truth}


def posterior_rows(method: str, draws: xr.Dataset, pooled_variable: str | None, force_variable: str,
                   truth: dict) -> list[dict]:
    """Posterior mean, 50% and 90% intervals of the pooled and per-force risk differences against the truth."""
    truths = truth["outcomes"][OUTCOME]
    rows = []
    if pooled_variable:
        rows.append(_interval_rows(method, "pooled", "", draws[pooled_variable].to_numpy(),
                                   truths["pooled"][ESTIMAND]))
    for force in draws["force"].to_numpy():
        rows.append(_interval_rows(method, "force", str(force), draws[force_variable].sel(force=force).to_numpy(),
                                   truths["by_force"][str(force)][ESTIMAND]))
    return rows


def naive_rows(cases: pd.DataFrame, truth: dict) -> list[dict]:
    """The crude before/after risk difference (no interval) and its bias, pooled and per force."""
    truths = truth["outcomes"][OUTCOME]
    rows = []
    for _, crude in naive_before_after(cases).iterrows():
        true_value = truths["pooled"] if crude["scope"] == "pooled" else truths["by_force"].get(crude["level"])
        if true_value is None or pd.isna(crude["estimate"]):
            continue
        rows.append({"method": NAIVE, "scope": crude["scope"], "level": crude["level"],
                     "truth": true_value[ESTIMAND], "estimate": crude["estimate"],
                     "bias": crude["estimate"] - true_value[ESTIMAND]})
    return rows


def run_replicate(replicate: int, settings: dict, model_config: dict, seed: int, cores: int = 1) -> pd.DataFrame:
    """Simulate one replicate, fit it with and without pooling, and score every estimate against the truth.

    Columns REPLICATE_COLUMNS; `divergences` and `gate_passed` (config `model.gate`) describe that method's fit,
    `seconds` the whole replicate (simulation and both fits), so the cost of K replicates can be projected.
    """
    started = time.perf_counter()
    cases, truth, shape = simulate_replicate(replicate, settings, seed)
    fit_config = replicate_model_config(model_config, settings)
    fit_seed = derive_seed(seed, "calibration_fit", str(replicate))
    rows = []
    for offset, (method, pooled_variable, force_variable) in enumerate(BAYES_METHODS):
        pooling = "partial" if pooled_variable else "none"
        _, _, idata = fit_cases(cases, fit_config, fit_seed + offset, cores=cores, pooling=pooling)
        gate = gate_table(idata, method, model_config["gate"])
        fit = {"divergences": int(gate["divergences"].iloc[0]), "gate_passed": bool(gate["passed"].all())}
        draws = stacked_draws([idata], [v for v in (pooled_variable, force_variable) if v])
        rows += [{**row, **fit} for row in posterior_rows(method, draws, pooled_variable, force_variable, truth)]
    rows += naive_rows(cases, truth)
    table = pd.DataFrame(rows).assign(replicate=replicate, trend_shape=shape, estimand=ESTIMAND,
                                      seconds=time.perf_counter() - started)
    return table.reindex(columns=REPLICATE_COLUMNS)


def coverage_table(replicates: pd.DataFrame) -> pd.DataFrame:
    """Share of true values inside the 50% and 90% intervals, bias and RMSE, per method and scope.

    One row per (method, scope) for each trend shape and over all shapes (`trend_shape = all`). Force rows pool
    every force of every replicate. Coverage is empty for the naive estimate, which has no interval.
    """
    seconds = replicates.groupby("replicate")["seconds"].first()
    groups = [(shape, part) for shape, part in replicates.groupby("trend_shape", sort=True)]
    groups.append((ALL_SHAPES, replicates))
    rows = []
    for shape, part in groups:
        for (method, scope), estimates in part.groupby(["method", "scope"], sort=False):
            error = estimates["estimate"] - estimates["truth"]
            rows.append({
                "method": method, "scope": scope, "trend_shape": shape,
                "n_replicates": estimates["replicate"].nunique(), "n_estimates": len(estimates),
                "coverage_50": estimates["covered_50"].astype(float).mean(),
                "coverage_90": estimates["covered_90"].astype(float).mean(),
                "mean_bias": error.mean(), "rmse": float(np.sqrt((error**2).mean())),
                "mean_width_90": (estimates["q95"] - estimates["q05"]).mean(),
                "seconds_per_replicate": seconds.loc[estimates["replicate"].unique()].mean(),
            })
    return pd.DataFrame(rows, columns=COVERAGE_COLUMNS)


METHOD_LABELS = {"bayes_hierarchical": "Partial pooling", "no_pooling": "No pooling", NAIVE: "Naive before/after"}


def coverage_figure(coverage: pd.DataFrame, target_band: tuple[float, float] = (0.85, 0.95)) -> Figure:
    """Left: 50% and 90% interval coverage against their nominal levels; right: bias, naive included."""
    overall = coverage[coverage["trend_shape"].eq(ALL_SHAPES)].reset_index(drop=True)
    labels = [f"{METHOD_LABELS.get(m, m)}, {s}" for m, s in zip(overall["method"], overall["scope"])]
    fig = Figure(figsize=(9.0, 0.5 * len(overall) + 1.6), dpi=150)
    cover, bias = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(overall))[::-1]
    cover.axvspan(*target_band, color="0.9", label="goal for 90% intervals")
    for level, marker in (("50", "o"), ("90", "D")):
        cover.axvline(int(level) / 100, color="grey", lw=0.8, ls="--")
        cover.plot(overall[f"coverage_{level}"], y, marker, color="black", mfc="white" if level == "50" else "black",
                   ls="none", label=f"{level}% intervals")
    cover.set_xlim(0, 1)
    cover.set_xlabel("Share of true values inside the interval")
    cover.set_yticks(y, labels)
    cover.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=3, frameon=False, fontsize=7)
    bias.axvline(0, color="grey", lw=0.8, ls="--")
    bias.plot(overall["mean_bias"], y, "s", color="black", ls="none")
    bias.set_xlabel("Mean bias, reoffenders per 100 CARA cases")
    fig.tight_layout()
    return fig
