"""Summaries of calibration replicates (cara_eval.calibration.replicates): coverage with binomial intervals, bias
and RMSE per scenario, the issue's targets, the grid figure, and which summary a report shows.

Why apart from the replicates: a stored replicate is reused only while every module its fit loaded is unchanged
(cara_eval.calibration.store), and none of this runs in a replicate, so the way the grid is summarised can change
without refitting hours of replicates.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from cara_eval.calibration.replicates import (
    ALL_FORCES,
    HIERARCHICAL,
    NAIVE,
    NO_POOLING,
    REPLICATE_COLUMNS,
    RISK_DIFFERENCE,
    TAU,
    scenario_settings,
)
from cara_eval.common.ordering import numeric_name_order
from cara_eval.common.paths import REPO_ROOT
from cara_eval.provenance.record import git_state

COVERAGE_COLUMNS = [
    "scenario", "method", "estimand", "scope", "level", "n_replicates", "n_estimates",
    "coverage_50", "coverage_50_low", "coverage_50_high", "coverage_90", "coverage_90_low", "coverage_90_high",
    "bias", "rmse", "mean_width_90", "seconds_per_replicate", "cpu_seconds_per_replicate", "n_refitted",
    "median_error", "n_unmixed",
]


def clopper_pearson(successes, trials, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) binomial interval for a share; `successes` may be fractional (see coverage_table)."""
    alpha = 1 - level
    low = 0.0 if successes <= 0 else float(stats.beta.ppf(alpha / 2, successes, trials - successes + 1))
    high = 1.0 if successes >= trials else float(stats.beta.ppf(1 - alpha / 2, successes + 1, trials - successes))
    return low, high


def _coverage_row(estimates: pd.DataFrame, seconds: pd.DataFrame, unmixed_r_hat: float) -> dict:
    """Coverage with its 95% Clopper-Pearson interval, bias, RMSE, width and refitted fits over one group of estimates.

    The unit is the replicate: with several forces per replicate (level `all`), each replicate contributes its
    share of covered forces, and the interval is that of (mean share x K) successes in K trials, which does not
    pretend that forces sharing a replicate's data and hyperparameters are independent.
    A fit whose largest R-hat is still above `unmixed_r_hat` after its refit counts as it is (a user would see its
    failed gate; dropping it would flatter the model), so one such fit can carry the mean error of a row: the median
    error and the count of unmixed fits (`n_unmixed`) beside it say when it does.
    """
    error = estimates["estimate"] - estimates["truth"]
    replicates = estimates["replicate"].unique()
    fits = estimates.groupby("replicate")[["refitted", "max_r_hat"]].first()
    row = {"n_replicates": len(replicates), "n_estimates": len(estimates), "bias": error.mean(),
           "rmse": float(np.sqrt((error**2).mean())), "mean_width_90": (estimates["q95"] - estimates["q05"]).mean(),
           "seconds_per_replicate": seconds.loc[replicates, "seconds"].mean(),
           "cpu_seconds_per_replicate": seconds.loc[replicates, "cpu_seconds"].mean(),
           "n_refitted": int(fits["refitted"].eq(True).sum()), "median_error": error.median(),
           "n_unmixed": int(fits["max_r_hat"].gt(unmixed_r_hat).sum()) if fits["max_r_hat"].notna().any() else np.nan}
    for level in ("50", "90"):
        covered = estimates[f"covered_{level}"]
        if covered.isna().all():  # the naive estimate has no interval
            row.update({f"coverage_{level}": np.nan, f"coverage_{level}_low": np.nan, f"coverage_{level}_high": np.nan})
            continue
        share = covered.astype(float).groupby(estimates["replicate"]).mean()
        low, high = clopper_pearson(share.sum(), len(share))
        row.update({f"coverage_{level}": share.mean(), f"coverage_{level}_low": low, f"coverage_{level}_high": high})
    return row


def coverage_table(replicates: pd.DataFrame, unmixed_r_hat: float) -> pd.DataFrame:
    """One row per scenario x method x estimand x scope: pooled (level ''), all forces (level `all`) and each
    force; columns COVERAGE_COLUMNS. `unmixed_r_hat`: config `calibration.refit_max_r_hat` (see _coverage_row).

    Where the true tau is zero (its boundary) no interval of a positive SD can hold it, so tau's coverage is left
    undefined there; its bias still shows how much heterogeneity the model reads into identical effects.
    Replicate files written before `max_r_hat` and `refitted` existed count as not refitted; `n_unmixed` is left
    undefined where no fit recorded its R-hat (those files, the naive estimate).
    """
    replicates = replicates.reindex(columns=REPLICATE_COLUMNS).fillna({"level": ""})
    tau_on_boundary = replicates["estimand"].eq(TAU) & replicates["truth"].eq(0)
    replicates = replicates.astype({"covered_50": "object", "covered_90": "object"})
    replicates.loc[tau_on_boundary, ["covered_50", "covered_90"]] = np.nan
    rows = []
    for (scenario, method, estimand, scope), estimates in replicates.groupby(
            ["scenario", "method", "estimand", "scope"], sort=False):
        seconds = replicates[replicates["scenario"].eq(scenario)].groupby("replicate")[["seconds", "cpu_seconds"]].first()
        key = {"scenario": scenario, "method": method, "estimand": estimand, "scope": scope}
        if scope == "pooled":
            rows.append({**key, "level": "", **_coverage_row(estimates, seconds, unmixed_r_hat)})
            continue
        rows.append({**key, "level": ALL_FORCES, **_coverage_row(estimates, seconds, unmixed_r_hat)})
        rows += [{**key, "level": force, **_coverage_row(group, seconds, unmixed_r_hat)}
                 for force, group in estimates.groupby("level", sort=True)]
    return pd.DataFrame(rows, columns=COVERAGE_COLUMNS)


TARGET_COLUMNS = ["scenario", "estimand", "scope", "n_replicates", "coverage_90", "coverage_90_low", "coverage_90_high",
                  "coverage_in_band", "bias", "bias_low", "bias_high", "bias_within_limit", "verdict", "adversarial"]
MET, NOT_DECIDED, MISSED = "met", "not decided", "missed"


def target_table(coverage: pd.DataFrame, calibration: dict) -> pd.DataFrame:
    """The issue's targets for the hierarchical model: 90% coverage inside `target_band` (pooled and all forces)
    and |pooled risk difference bias| <= `max_pooled_bias` per 100, each judged with its uncertainty at this K.

    verdict: `met` when the coverage is in the band and the bias within the limit; `missed` when the coverage's 95%
    Clopper-Pearson interval lies wholly outside the band or the bias's 95% interval (mean error +- 1.96 SE over
    replicates) wholly beyond the limit; otherwise `not decided` (more replicates would tell). An undefined coverage
    (tau at its boundary) is not judged. Scenarios with a step that is not CARA are marked adversarial: the design
    cannot tell that step from an effect, so they are expected to miss."""
    band, limit = calibration["targets"]["coverage_90_band"], calibration["targets"]["max_pooled_bias"]
    rows = coverage[coverage["method"].eq(HIERARCHICAL) & coverage["level"].fillna("").isin(["", ALL_FORCES])]
    table = rows[["scenario", "estimand", "scope", "n_replicates", "coverage_90", "coverage_90_low",
                  "coverage_90_high", "bias"]].reset_index(drop=True)
    judged = table["coverage_90"].notna()
    table["coverage_in_band"] = table["coverage_90"].between(*band).where(judged).astype("boolean")
    coverage_missed = judged & ((table["coverage_90_high"] < band[0]) | (table["coverage_90_low"] > band[1]))
    bias_se = np.sqrt((rows["rmse"].to_numpy() ** 2 - rows["bias"].to_numpy() ** 2).clip(0)
                      / (rows["n_replicates"].to_numpy() - 1).clip(1))
    table["bias_low"], table["bias_high"] = table["bias"] - 1.96 * bias_se, table["bias"] + 1.96 * bias_se
    pooled_difference = table["scope"].eq("pooled") & table["estimand"].eq(RISK_DIFFERENCE)
    table["bias_within_limit"] = (table["bias"].abs() <= limit).where(pooled_difference).astype("boolean")
    bias_missed = pooled_difference & ((table["bias_low"] > limit) | (table["bias_high"] < -limit))
    met = table["coverage_in_band"].fillna(True) & table["bias_within_limit"].fillna(True)
    table["verdict"] = np.select([met, coverage_missed | bias_missed], [MET, MISSED], NOT_DECIDED)
    table["adversarial"] = [bool(scenario_settings(calibration, s).get("step_force")) for s in table["scenario"]]
    return table[TARGET_COLUMNS]


METHOD_LABELS = {HIERARCHICAL: "Partial pooling", NO_POOLING: "No pooling", NAIVE: "Naive before/after"}


def coverage_figure(coverage: pd.DataFrame, target_band: tuple[float, float] = (0.85, 0.95)) -> Figure:
    """Per scenario, left: 90% coverage of the risk difference (pooled, all forces) with its 95% interval;
    right: bias of the pooled risk difference, model against the naive before/after."""
    table = coverage[coverage["estimand"].eq(RISK_DIFFERENCE)].fillna({"level": ""})
    scenarios = list(dict.fromkeys(table["scenario"]))
    y = np.arange(len(scenarios))[::-1]
    fig = Figure(figsize=(9.0, 0.45 * len(scenarios) + 1.8), dpi=150)
    cover, bias = fig.subplots(1, 2, sharey=True)
    cover.axvspan(*target_band, color="0.9", label="goal for 90% intervals")
    cover.axvline(0.9, color="grey", lw=0.8, ls="--")
    for (level, label, offset, colour) in (("", "pooled", 0.12, "black"), (ALL_FORCES, "per force", -0.12, "0.5")):
        part = table[table["method"].eq(HIERARCHICAL) & table["level"].eq(level)].set_index("scenario")
        part = part.reindex(scenarios)
        cover.errorbar(part["coverage_90"], y + offset, fmt="D", color=colour, label=label,
                       xerr=[part["coverage_90"] - part["coverage_90_low"], part["coverage_90_high"] - part["coverage_90"]])
    cover.set_xlim(0, 1)
    cover.set_xlabel("Share of 90% intervals holding the truth")
    cover.set_yticks(y, scenarios)
    cover.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3, frameon=False, fontsize=7)
    bias.axvline(0, color="grey", lw=0.8, ls="--")
    for (method, marker, offset) in ((HIERARCHICAL, "s", 0.12), (NAIVE, "x", -0.12)):
        part = table[table["method"].eq(method) & table["level"].eq("")].set_index("scenario").reindex(scenarios)
        bias.plot(part["bias"], y + offset, marker, color="black", ls="none", label=METHOD_LABELS[method])
    bias.set_xlabel("Bias of the pooled effect, reoffenders per 100 CARA cases")
    bias.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, frameon=False, fontsize=7)
    fig.tight_layout()
    return fig


# The files of one calibration summary (results/calibration, or a dated copy archived with the code), by report key.
SUMMARY_FILES = {"coverage": "coverage.csv", "targets": "targets.csv", "run": "run.json", "sbc_ranks": "sbc_ranks.csv",
                 "sbc_uniformity": "sbc_uniformity.csv"}


def summary_source(results: str | Path, archive: str | Path | None) -> tuple[Path | None, bool]:
    """The calibration summary a report shows, and whether it is an archived copy: the run in `results` when it has
    a coverage table, else the newest dated folder of `archive` that has one (committed with the code, so a fresh
    clone's report carries the evidence for its intervals without rerunning hours of replicates), else none."""
    if (Path(results) / SUMMARY_FILES["coverage"]).is_file():
        return Path(results), False
    archived = archived_summaries(archive) if archive else []
    return (archived[-1], True) if archived else (None, False)


def archived_summaries(archive: str | Path) -> list[Path]:
    """The dated summary folders of `archive` (those with a coverage table), oldest first by their numbers."""
    return sorted((path.parent for path in Path(archive).glob(f"*/{SUMMARY_FILES['coverage']}")), key=numeric_name_order)


def run_record(replicate_counts: dict, run_date: datetime | None = None) -> dict:
    """When the calibration ran, K per scenario, and the code version (git commit of the package's
    checkout and whether it had uncommitted changes; the package version outside a checkout): the report quotes it."""
    try:
        version = metadata.version("cara-eval")
    except metadata.PackageNotFoundError:
        version = None
    return {"run_date": (run_date or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds"),
            "git": git_state(REPO_ROOT), "package_version": version, "replicates": replicate_counts}
