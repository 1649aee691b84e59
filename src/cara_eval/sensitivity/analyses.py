"""Sensitivity analyses of the primary model: pooling (PSIS-LOO and leave-one-force-out), the prior on tau,
the missing-data strategy (complete cases, MNAR tipping point) and the time adjustment.

Every analysis refits `cara_eval.model.effectiveness` with one thing changed (a *variant*), so the primary model code is
the only model code. A variant is named in config `sensitivity` and resolved here into a model config and a
pooling. LOO is over cells (the model's likelihood units: hazard cells and binomial flag cells in one
pointwise vector), not over cases.
"""

from __future__ import annotations

import copy
import dataclasses
import logging

import arviz as az
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pymc as pm  # noqa: E402
import xarray as xr  # noqa: E402
from scipy.special import logsumexp  # noqa: E402

from cara_eval.model.cells import CellSpec, build_cells  # noqa: E402
from cara_eval.model.effectiveness import build_model, fit_cases  # noqa: E402
from cara_eval.model.estimands import ESTIMAND_VARIABLES, estimand_table, stacked_draws  # noqa: E402
from cara_eval.model.gate import gate_table  # noqa: E402
from cara_eval.sensitivity.new_force import log_density_as_new_force  # noqa: E402

SUMMARY_COLUMNS = ["analysis", "variant", "estimand", "mean", "q05", "q95", "prob_reduction", "gate_passed", "note"]
# Pooled rows every analysis reports: the headline effect, the between-force SD, Pr(any reduction).
SUMMARY_ESTIMANDS = ["risk_difference_per100", "tau", "pr_any_reduction"]
OBSERVED_BLOCKS = ["events", "flag_events"]
POOLING_VARIANTS = {"primary": "partial", "pooling_none": "none", "pooling_complete": "complete"}
VARIANT_OF_POOLING = {pooling: variant for variant, pooling in POOLING_VARIANTS.items()}
log = logging.getLogger(__name__)


def variant_settings(model_config: dict, sensitivity_config: dict, variant: str) -> tuple[dict, str, str]:
    """(model config, pooling, note) of one named variant, with the sensitivity fits' chains and draws.

    `primary`, `pooling_none`, `pooling_complete`: the primary model with that pooling; a key of
    `sensitivity.tau_priors`: that prior on tau; `force_trends`: force_slope sigma widened to
    `sensitivity.force_trend_sigma` (force-specific linear trends instead of the shared one).
    """
    settings = copy.deepcopy({**model_config, **sensitivity_config["fit"]})
    priors = settings["priors"]
    if variant in POOLING_VARIANTS:
        return settings, POOLING_VARIANTS[variant], f"pooling {POOLING_VARIANTS[variant]}"
    if variant in sensitivity_config["tau_priors"]:
        old, new = priors["tau"], sensitivity_config["tau_priors"][variant]
        priors["tau"] = dict(new)
        return settings, "partial", f"tau prior {_describe(old)} -> {_describe(new)}"
    if variant == "force_trends":
        old = priors["force_slope"]["sigma"]
        priors["force_slope"] = {**priors["force_slope"], "sigma": sensitivity_config["force_trend_sigma"]}
        return settings, "partial", f"force_slope sigma {old:g} -> {sensitivity_config['force_trend_sigma']:g}"
    raise ValueError(f"unknown sensitivity variant {variant!r}")


def _describe(spec: dict) -> str:
    return f"{spec['dist']}({spec['sigma']:g})"


def cell_log_likelihood(model: pm.Model, idata: az.InferenceData) -> xr.DataArray:
    """Pointwise log-likelihood over every cell: hazard cells then binomial flag cells, one `cell` dimension."""
    log_lik = pm.compute_log_likelihood(idata, model=model, extend_inferencedata=False, progressbar=False)
    blocks = [log_lik[name].rename({log_lik[name].dims[-1]: "cell"}).drop_vars("cell", errors="ignore")
              for name in OBSERVED_BLOCKS if name in log_lik]
    return xr.concat(blocks, dim="cell")


def cell_loo(model: pm.Model, idata: az.InferenceData) -> az.ELPDData:
    """PSIS-LOO over cells (pointwise, so az.compare can difference two fits)."""
    log_lik = az.InferenceData(posterior=idata.posterior,
                               log_likelihood=xr.Dataset({"cells": cell_log_likelihood(model, idata)}))
    return az.loo(log_lik, var_name="cells", pointwise=True)


def scoring_model(cases: pd.DataFrame, settings: dict, pooling: str = "partial") -> pm.Model:
    """The per-cell model of `cases` under a config section's settings (as `fit_cases` returns it), to score the draws
    of a fit made with those settings."""
    cells = build_cells(cases, CellSpec.from_config(settings["cells"]))
    return build_model(cells, settings["priors"], settings["centred"], pooling)


def write_gate(idata: az.InferenceData, dataset: str, gate_config: dict, path, label: str) -> None:
    """A sensitivity fit's gate, judged alone (its own draws carry the whole ESS), to `path`; `label` names the fit in
    the log."""
    gate = gate_table(idata, dataset, gate_config)
    gate.to_csv(path, index=False)
    log.info("%s on %s: gate %s", label, dataset, "passed" if gate["passed"].all() else "FAILED")


def write_loo(model: pm.Model, idata: az.InferenceData, path) -> None:
    """A fit's PSIS-LOO over cells (`model`: the per-cell model it was fitted with), pickled to `path`."""
    loo = cell_loo(model, idata)
    loo.to_pickle(path)
    log.info("PSIS-LOO over %d cells: elpd %.1f (se %.1f), p_loo %.1f", loo.n_data_points, loo.elpd_loo, loo.se,
             loo.p_loo)


def write_gate_and_loo(model: pm.Model, idata: az.InferenceData, dataset: str, gate_config: dict, output,
                       label: str) -> None:
    """`write_gate` and `write_loo` to `output.gate` and `output.loo`."""
    write_gate(idata, dataset, gate_config, output.gate, label)
    write_loo(model, idata, output.loo)


def loo_table(elpds: dict[str, az.ELPDData], dataset: str) -> pd.DataFrame:
    """az.compare of the pooling variants on one dataset, with the Pareto-k diagnostics beside it."""
    compared = az.compare(elpds, ic="loo")
    rows = []
    for variant, row in compared.iterrows():
        elpd = elpds[variant]
        rows.append({
            "dataset": dataset, "variant": variant, "rank": int(row["rank"]), "elpd_loo": row["elpd_loo"],
            "se": row["se"], "p_loo": row["p_loo"], "elpd_diff": row["elpd_diff"], "dse": row["dse"],
            "weight": row["weight"], "n_cells": int(elpd.n_data_points),
            "n_pareto_k_high": int((elpd.pareto_k.values > elpd.good_k).sum()),
            "pareto_k_threshold": float(elpd.good_k), "warning": bool(row["warning"]),
        })
    return pd.DataFrame(rows)


def pooled_summary(idatas: list[az.InferenceData], gate_passed: bool, analysis: str, variant: str,
                   note: str) -> pd.DataFrame:
    """Summary rows of one variant: its fits' draws pooled across datasets (as the primary pools imputations)."""
    table = estimand_table(stacked_draws(idatas, ESTIMAND_VARIABLES), gate_passed)
    return summary_rows(table, analysis, variant, note)


def summary_rows(estimands: pd.DataFrame, analysis: str, variant: str, note: str) -> pd.DataFrame:
    """Contract rows of `summary.csv` from an estimand table (pooled scope, SUMMARY_ESTIMANDS)."""
    pooled = estimands[(estimands["scope"] == "pooled") & estimands["estimand"].isin(SUMMARY_ESTIMANDS)]
    rows = pooled.assign(analysis=analysis, variant=variant, note=note)
    rows["gate_passed"] = rows["gate_passed"].astype(bool)
    order = {name: i for i, name in enumerate(SUMMARY_ESTIMANDS)}
    return rows.sort_values("estimand", key=lambda s: s.map(order))[SUMMARY_COLUMNS].reset_index(drop=True)


def heldout_cells(train_cells, heldout_cases: pd.DataFrame, placeholder: str):
    """The held-out force's cells, indexed like the training fit: the force relabelled as `placeholder`
    (whose parameters the caller replaces by a new force's), years outside the training years clamped."""
    held = build_cells(heldout_cases, train_cells.spec, terms=train_cells.terms)
    lo, hi = train_cells.periods[0], train_cells.periods[-1]

    def relabel(table):
        return table.assign(force=placeholder, period=table["period"].clip(lo, hi))

    return dataclasses.replace(train_cells, hazard=relabel(held.hazard), binomial=relabel(held.binomial))


def lofo_score(cases: pd.DataFrame, force: str, settings: dict, pooling: str, seed: int, cores: int = 1):
    """Refit without `force`; log predictive density of its cells as a new force's, as the pooling draws one.

    Returns (score row, training posterior). `lpd` is the joint log density of all the force's cells,
    log mean_s p(y_force | theta_s) over the refit's draws, the force's own terms integrated out exactly
    (cara_eval.sensitivity.new_force).
    """
    train = cases[cases["force"] != force]
    held = cases[cases["force"] == force]
    if held.empty:
        raise ValueError(f"leave-one-force-out: force {force!r} has no cases in this dataset")
    cells, _, idata = fit_cases(train, settings, seed, cores, pooling)
    score_cells = heldout_cells(cells, held, placeholder=cells.forces[0])
    score_model = build_model(score_cells, settings["priors"], settings["centred"], pooling)
    joint = log_density_as_new_force(score_model, idata.posterior, 0, score_cells, settings["priors"], pooling)
    n_cells = len(score_cells.hazard) + len(score_cells.binomial)
    row = {"force": force, "pooling": pooling, "lpd": float(logsumexp(joint) - np.log(joint.size)),
           "n_cells": n_cells, "n_draws": int(joint.size)}
    return row, idata


def force_cells(cells, force: str):
    """One force's cells, indexed as in the full fit (same forces, periods and terms): a model built on them has the
    full model's parameters and only that force's likelihood, so scoring a force costs its cells, not all of them."""

    def own(table):
        return table[table["force"] == force]

    return dataclasses.replace(cells, hazard=own(cells.hazard), binomial=own(cells.binomial))


def psis_lofo_scores(cells, idata: az.InferenceData, settings: dict, pooling: str) -> pd.DataFrame:
    """Leave-one-force-out without refits: every force's held-out log predictive density from the one full-data fit,
    by Pareto-smoothed importance sampling over its draws (integrated importance sampling: the force's own terms
    integrated out per draw as a new force's, as `lofo_score` scores a held-out force).

    The ratios are 1 / p(y_force | draw). Where `pareto_k` exceeds 0.7 the estimate is not reliable and only the
    refit (`lofo_score`) answers."""
    rows = []
    for slot, force in enumerate(cells.forces):
        own = force_cells(cells, force)
        model = build_model(own, settings["priors"], settings["centred"], pooling)
        log_density = log_density_as_new_force(model, idata.posterior, slot, own, settings["priors"], pooling)
        log_weights, pareto_k = az.psislw(-log_density)
        rows.append({"force": force, "pooling": pooling, "lpd": float(logsumexp(log_weights + log_density)),
                     "pareto_k": float(pareto_k), "n_cells": len(own.hazard) + len(own.binomial),
                     "n_draws": log_density.size})
    return pd.DataFrame(rows)


def crossing(deltas, values, threshold: float, baseline: float = 0.0) -> float:
    """First delta, moving away from `baseline` in the direction of the grid, at which `values` cross
    `threshold`, linearly interpolated between grid points; NaN when the grid never crosses."""
    deltas, values = np.asarray(deltas, dtype=float), np.asarray(values, dtype=float)
    order = np.argsort(np.abs(deltas - baseline))
    deltas, values = deltas[order], values[order]
    side = np.sign(values[0] - threshold)
    for j in range(1, len(deltas)):
        if np.sign(values[j] - threshold) != side:
            d0, d1, v0, v1 = deltas[j - 1], deltas[j], values[j - 1], values[j]
            return float(d0 + (threshold - v0) * (d1 - d0) / (v1 - v0))
    return float("nan")


def tipping_point(grid: pd.DataFrame, prob_threshold: float) -> pd.DataFrame:
    """Where the MNAR grid changes the conclusion: the 90% interval of the risk difference reaching 0, and
    Pr(any reduction) crossing `prob_threshold`. `grid`: delta, rd_mean, rd_q05, rd_q95, pr_any_reduction."""
    grid = grid.sort_values("delta")
    base = grid.iloc[int(np.argmin(np.abs(grid["delta"].to_numpy())))]
    rows = []
    for criterion, column, threshold in [("rd_q95_reaches_0", "rd_q95", 0.0),
                                         ("rd_q05_reaches_0", "rd_q05", 0.0),
                                         ("pr_any_reduction_crosses", "pr_any_reduction", prob_threshold)]:
        for side, part in [("positive", grid[grid["delta"] >= base["delta"]]),
                           ("negative", grid[grid["delta"] <= base["delta"]])]:
            if len(part) < 2:
                continue
            delta = crossing(part["delta"], part[column], threshold, baseline=base["delta"])
            rows.append({"criterion": criterion, "threshold": threshold, "side": side, "tipping_delta": delta,
                         "baseline_value": float(base[column]),
                         "grid": f"{part['delta'].min():g}..{part['delta'].max():g}",
                         "max_shift_rd_mean": float((part["rd_mean"] - base["rd_mean"]).abs().max()),
                         "note": "crossed within the grid" if np.isfinite(delta) else "not crossed within the grid"})
    return pd.DataFrame(rows)


def plot_summary(summary: pd.DataFrame, path: str) -> None:
    """Risk difference per 100 (mean, 90% interval) of every sensitivity fit, failed gates hollow."""
    rd = summary[summary["estimand"] == "risk_difference_per100"].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(rd) + 1.2))
    y = np.arange(len(rd))[::-1]
    ax.hlines(y, rd["q05"], rd["q95"], color="tab:blue")
    passed = rd["gate_passed"].astype(bool).to_numpy()
    ax.plot(rd["mean"][passed], y[passed], "o", color="tab:blue", label="gate passed")
    ax.plot(rd["mean"][~passed], y[~passed], "o", mfc="white", color="tab:red", label="gate failed")
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(y, [f"{a}: {v}" for a, v in zip(rd["analysis"], rd["variant"])])
    ax.set_xlabel("risk difference per 100 CARA cases (mean, 90% interval)")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def mnar_grid(missing_data: pd.DataFrame) -> pd.DataFrame:
    """delta, rd_mean, rd_q05, rd_q95, pr_any_reduction of the MNAR rows of the missing-data table."""
    mnar = missing_data.dropna(subset=["delta"])
    rd = mnar[mnar["estimand"] == "risk_difference_per100"].set_index("delta")
    pr = mnar[mnar["estimand"] == "pr_any_reduction"].set_index("delta")["mean"]
    return pd.DataFrame({"rd_mean": rd["mean"], "rd_q05": rd["q05"], "rd_q95": rd["q95"],
                         "pr_any_reduction": pr}).rename_axis("delta").reset_index().sort_values("delta")


LOFO_KEYS = ["pooling", "dataset", "force"]


def lofo_refits_needed(importance_sampled: pd.DataFrame, max_pareto_k: float) -> pd.DataFrame:
    """The (pooling, dataset, force) rows whose importance-sampled score is not reliable: Pareto k above the limit."""
    return importance_sampled.loc[importance_sampled["pareto_k"] > max_pareto_k, LOFO_KEYS]


def lofo_scores(importance_sampled: pd.DataFrame, refits: pd.DataFrame, max_pareto_k: float) -> pd.DataFrame:
    """One score per (pooling, dataset, force): importance-sampled where its Pareto k is at most `max_pareto_k`,
    else the refit's; `method` says which, and the importance-sampled Pareto k stays beside both."""
    needed = lofo_refits_needed(importance_sampled, max_pareto_k)
    pareto_k = importance_sampled[LOFO_KEYS + ["pareto_k"]]
    refitted = needed.merge(refits, on=LOFO_KEYS, how="left", indicator=True)
    missing = refitted.loc[refitted["_merge"] == "left_only", LOFO_KEYS]
    if len(missing):
        raise ValueError(f"leave-one-force-out: no refit for {missing.to_dict('records')} (Pareto k > {max_pareto_k})")
    refitted = refitted.drop(columns="_merge").merge(pareto_k, on=LOFO_KEYS).assign(method="refit")
    kept = importance_sampled.drop(needed.index).assign(method="importance_sampling")
    return pd.concat([kept, refitted], ignore_index=True)


def lofo_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Per-force held-out log predictive densities plus each pooling's sum over forces (`force = all`),
    ranked within force and dataset (1 = best predicts a force it has not seen)."""
    totals = (scores.groupby(["pooling", "dataset"], as_index=False)
              .agg(lpd=("lpd", "sum"), n_cells=("n_cells", "sum"), n_draws=("n_draws", "min"),
                   gate_passed=("gate_passed", "all"))
              .assign(force="all"))
    table = pd.concat([scores, totals], ignore_index=True)
    table["rank"] = table.groupby(["force", "dataset"])["lpd"].rank(ascending=False, method="min").astype(int)
    return table.sort_values(["dataset", "force", "rank"]).reset_index(drop=True)


def summary_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One `summary.csv` from the analysis tables (keyed by file stem): estimand tables as they are, PSIS-LOO
    as `elpd_loo` (q05/q95 = elpd -/+ 1.645 se) and leave-one-force-out as `lofo_lpd` (sum over forces)."""
    parts = []
    for name, table in tables.items():
        if name == "pooling_loo":
            parts.append(pd.DataFrame({
                "analysis": "pooling", "variant": table["variant"], "estimand": "elpd_loo", "mean": table["elpd_loo"],
                "q05": table["elpd_loo"] - 1.645 * table["se"], "q95": table["elpd_loo"] + 1.645 * table["se"],
                "prob_reduction": np.nan, "gate_passed": table["gate_passed"],
                "note": [f"PSIS-LOO over {n} cells, dataset {d}; p_loo {p:.1f}; elpd_diff {e:.1f} (dse {s:.1f}); "
                         f"{k} cells with Pareto k > {t:.2f}"
                         for n, d, p, e, s, k, t in zip(table["n_cells"], table["dataset"], table["p_loo"],
                                                        table["elpd_diff"], table["dse"], table["n_pareto_k_high"],
                                                        table["pareto_k_threshold"])]}))
        elif name == "lofo":
            forces = table[table["force"] != "all"]
            totals = table[table["force"] == "all"].groupby("pooling", as_index=False).agg(
                lpd=("lpd", "mean"), gate_passed=("gate_passed", "all"), n_datasets=("dataset", "nunique"))
            methods = forces.groupby("pooling")["method"]
            totals["n_refits"] = totals["pooling"].map(methods.agg(lambda m: int((m == "refit").sum())))
            totals["n_scores"] = totals["pooling"].map(methods.size())
            n_forces = forces["force"].nunique()
            parts.append(pd.DataFrame({
                "analysis": "lofo", "variant": totals["pooling"], "estimand": "lofo_lpd", "mean": totals["lpd"],
                "q05": np.nan, "q95": np.nan, "prob_reduction": np.nan, "gate_passed": totals["gate_passed"],
                "note": [f"held-out log predictive density summed over {n_forces} forces (higher is better), "
                         f"mean over {n} dataset(s); {r} of {f} force scores refitted, the rest importance-sampled"
                         for n, r, f in zip(totals["n_datasets"], totals["n_refits"], totals["n_scores"])]}))
        else:
            parts.append(table[SUMMARY_COLUMNS])
    summary = pd.concat(parts, ignore_index=True)
    summary["gate_passed"] = summary["gate_passed"].astype(bool)
    return summary
