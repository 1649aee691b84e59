"""Calibration of the primary model over a scenario grid: do its intervals cover the truth as often as they claim?

Why: the report's credible intervals are only as honest as the model. Each scenario (config
`calibration.scenarios`) sets the synthetic generator's knobs (cara_eval.synth.population.Hierarchy: the effect
hierarchy mu_log_hr and tau, trend shape and slope, a force-specific step that is not CARA, extra forces) at the
default data's size and design. Each replicate of a scenario is simulated with its own seed, fitted exactly as the
model_fit rule fits a dataset (cara_eval.model.effectiveness.fit_cases, config `model` with the calibration's fit
settings), and the 50% and 90% intervals of the pooled and per-force risk differences and risk ratios, and of tau,
are checked against the true values. Beside them: the bias of per-force analyses without pooling (the same model
with independent force effects) and of the naive before/after estimate (cara_eval.model.naive, no interval).

Replicates skip the raw files: they use the canonical cases directly (simulate_population with missingness=False,
no pseudonyms, raw identifiers dropped), so what is calibrated is the model, not ingest or imputation.
"""

from __future__ import annotations

import logging
import resource
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure
from scipy import stats

from cara_eval.common.paths import REPO_ROOT
from cara_eval.model.effectiveness import derive_seed, fit_cases
from cara_eval.model.estimands import stacked_draws
from cara_eval.model.gate import gate_table, gated_variables
from cara_eval.model.naive import naive_before_after
from cara_eval.provenance.record import git_state
from cara_eval.synth.forces import NINE_FORCES
from cara_eval.synth.population import (
    COMPLETION_RATE,
    NONCOMPLETER_EFFECT_SHARE,
    RAW_IDENTIFIERS,
    Hierarchy,
    simulate_population,
)

OUTCOME = "any_reoffence"
RISK_DIFFERENCE = "risk_difference_per100"
# Estimand -> (posterior variable of the pooled value, of the per-force values); the truth file uses the same names.
ESTIMANDS = {
    RISK_DIFFERENCE: ("risk_difference_per100", "risk_difference_per100_force"),
    "risk_ratio": ("risk_ratio", "risk_ratio_force"),
}
TAU = "tau"
HIERARCHICAL, NO_POOLING, NAIVE = "bayes_hierarchical", "no_pooling", "naive_before_after"
log = logging.getLogger(__name__)
POOLING = {HIERARCHICAL: "partial", NO_POOLING: "none"}
HIERARCHY_KNOBS = ("mu_log_hr", "tau", "together_log_hr_shift", "trend_slope", "step_force", "step_log_hr")
SCENARIO_DEFAULTS = ("n_cases", "forces")
# The share of a completer's log hazard ratio that a CARA case gets on average: the model estimates the effect of
# CARA as given (completers and non-completers together), so its tau is the generator's tau times this share.
EFFECT_SHARE = COMPLETION_RATE + (1 - COMPLETION_RATE) * NONCOMPLETER_EFFECT_SHARE
ALL_FORCES = "all"
REPLICATE_COLUMNS = [
    "scenario", "replicate", "method", "estimand", "scope", "level", "truth", "estimate",
    "q05", "q25", "q75", "q95", "covered_50", "covered_90", "bias", "divergences", "gate_passed",
    "max_r_hat", "refitted", "seconds", "cpu_seconds",
]
COVERAGE_COLUMNS = [
    "scenario", "method", "estimand", "scope", "level", "n_replicates", "n_estimates",
    "coverage_50", "coverage_50_low", "coverage_50_high", "coverage_90", "coverage_90_low", "coverage_90_high",
    "bias", "rmse", "mean_width_90", "seconds_per_replicate", "cpu_seconds_per_replicate", "n_refitted",
]


def scenario_settings(calibration: dict, scenario: str) -> dict:
    """One scenario's settings: its own entries over the calibration-wide n_cases and forces."""
    return {"trend_shape": "linear", **{key: calibration[key] for key in SCENARIO_DEFAULTS},
            **calibration["scenarios"][scenario]}


def scenario_hierarchy(settings: dict) -> Hierarchy:
    """The generator's knobs a scenario sets; the rest keep the default data's values."""
    return Hierarchy(**{knob: settings[knob] for knob in HIERARCHY_KNOBS if knob in settings})


def scenario_forces(settings: dict) -> list[str] | None:
    """The scenario's forces (None: the nine) plus its extra forces."""
    extra = settings.get("extra_forces") or []
    forces = settings.get("forces") or None
    if not extra:
        return forces
    return [*(forces or [d.force for d in NINE_FORCES]), *extra]


def replicate_seed(seed: int, scenario: str, replicate: int) -> int:
    """A replicate's simulation seed from (seed, scenario, replicate): raising K only adds replicates."""
    return derive_seed(seed, "calibration", scenario, str(replicate))


def simulate_replicate(scenario: str, replicate: int, calibration: dict, seed: int) -> tuple[pd.DataFrame, dict]:
    """Canonical cases (every covariate observed, no identifiers) and truth of one replicate of a scenario."""
    settings = scenario_settings(calibration, scenario)
    population = simulate_population(
        settings["n_cases"], scenario_forces(settings), replicate_seed(seed, scenario, replicate),
        settings["trend_shape"], missingness=False, pseudonyms=False, hierarchy=scenario_hierarchy(settings),
    )
    return population.cases.drop(columns=RAW_IDENTIFIERS), population.truth


def true_tau(truth: dict) -> float:
    """The between-force SD of the CARA log hazard ratio on the model's scale (CARA as given, see EFFECT_SHARE)."""
    return EFFECT_SHARE * truth["hierarchy"]["tau"]


def replicate_model_config(model_config: dict, calibration: dict) -> dict:
    """The primary model's config with the calibration's sampler settings laid over it."""
    return {**model_config, **calibration["fit"]}


def interval_row(values: np.ndarray, truth: float) -> dict:
    """Posterior mean, 50% and 90% central intervals of one quantity, whether they hold the truth, and the bias."""
    q05, q25, q75, q95 = np.quantile(values, [0.05, 0.25, 0.75, 0.95])
    estimate = float(np.mean(values))
    return {"truth": truth, "estimate": estimate, "q05": q05, "q25": q25, "q75": q75, "q95": q95,
            "covered_50": bool(q25 <= truth <= q75), "covered_90": bool(q05 <= truth <= q95),
            "bias": estimate - truth}


def posterior_rows(method: str, draws: xr.Dataset, truth: dict) -> list[dict]:
    """Every estimand the fit has (pooled and per force, and tau) scored against the truth."""
    truths = truth["outcomes"][OUTCOME]
    rows = []
    for estimand, (pooled_variable, force_variable) in ESTIMANDS.items():
        if pooled_variable in draws and method == HIERARCHICAL:
            rows.append({"estimand": estimand, "scope": "pooled", "level": "",
                         **interval_row(draws[pooled_variable].to_numpy(), truths["pooled"][estimand])})
        for force in draws["force"].to_numpy():
            true_force = truths["by_force"].get(str(force))
            if true_force is not None:
                rows.append({"estimand": estimand, "scope": "force", "level": str(force),
                             **interval_row(draws[force_variable].sel(force=force).to_numpy(), true_force[estimand])})
    if TAU in draws and method == HIERARCHICAL:
        rows.append({"estimand": TAU, "scope": "pooled", "level": "", **interval_row(draws[TAU].to_numpy(),
                                                                                     true_tau(truth))})
    return [{"method": method, **row} for row in rows]


def naive_rows(cases: pd.DataFrame, truth: dict) -> list[dict]:
    """The crude before/after risk difference (no interval) and its bias, pooled and per force."""
    truths = truth["outcomes"][OUTCOME]
    rows = []
    for _, crude in naive_before_after(cases).iterrows():
        true_value = truths["pooled"] if crude["scope"] == "pooled" else truths["by_force"].get(crude["level"])
        if true_value is None or pd.isna(crude["estimate"]):
            continue
        rows.append({"method": NAIVE, "estimand": RISK_DIFFERENCE, "scope": crude["scope"], "level": crude["level"],
                     "truth": true_value[RISK_DIFFERENCE], "estimate": crude["estimate"],
                     "bias": crude["estimate"] - true_value[RISK_DIFFERENCE]})
    return rows


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (PyTensor compiles C code in child processes)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def max_r_hat(idata) -> float:
    """Largest R-hat over the hyperparameters and estimands of a fit (cara_eval.model.gate.gated_variables)."""
    return float(az.rhat(idata, var_names=gated_variables(idata)).to_array().max())


def mixed_fit(fit, fit_config: dict, calibration: dict, seed: int):
    """`fit(config, seed)`, refitted once with 4 chains and twice the tuning and draws when its largest R-hat exceeds
    `calibration.refit_max_r_hat`, as a user refits after a failed gate: a chain stuck away from the others would
    otherwise score an interval that nobody would publish (seen once in 288 replicates: a 90% interval of the
    pooled risk difference 17.6 wide where the median was 3.4). Returns (InferenceData, its max R-hat, refitted)."""
    idata = fit(fit_config, seed)
    first = max_r_hat(idata)
    if first <= calibration["refit_max_r_hat"]:
        return idata, first, False
    longer = {**fit_config, "chains": 4, "draws": 2 * fit_config["draws"], "tune": 2 * fit_config["tune"]}
    idata = fit(longer, seed)
    refitted = max_r_hat(idata)
    log.warning("R-hat %.3f above %s: refitted with 4 chains x %d draws, R-hat now %.3f", first,
                calibration["refit_max_r_hat"], longer["draws"], refitted)
    return idata, refitted, True


def run_replicate(scenario: str, replicate: int, calibration: dict, model_config: dict, seed: int,
                  cores: int = 1) -> pd.DataFrame:
    """Simulate one replicate of a scenario, fit it with and without pooling, score every estimate.

    The no-pooling fit runs on the first `calibration.no_pooling_replicates` replicates only: its bias and RMSE
    settle with far fewer replicates than coverage needs, and it costs as much as the hierarchical fit.
    Each fit is checked for mixing and refitted once if a chain did not mix (`mixed_fit`).
    Columns REPLICATE_COLUMNS; `divergences`, `gate_passed` (config `model.gate`), `max_r_hat` and `refitted`
    describe that method's fit,
    `seconds` (wall) and `cpu_seconds` (compiling included) the whole replicate, so the cost of K is projected.
    """
    started, cpu_started = time.perf_counter(), cpu_seconds()
    cases, truth = simulate_replicate(scenario, replicate, calibration, seed)
    fit_config = replicate_model_config(model_config, calibration)
    fit_seed = derive_seed(seed, "calibration_fit", scenario, str(replicate))
    variables = [TAU, *(name for pair in ESTIMANDS.values() for name in pair)]
    rows = []
    for offset, (method, pooling) in enumerate(POOLING.items()):
        if pooling == "none" and replicate >= calibration["no_pooling_replicates"]:
            continue
        fit_started = time.perf_counter()
        idata, r_hat, refitted = mixed_fit(
            lambda config, fit_seed, pooling=pooling: fit_cases(cases, config, fit_seed, cores=cores, pooling=pooling)[2],
            fit_config, calibration, fit_seed + offset)
        log.info("%s fit: %.0f s wall", method, time.perf_counter() - fit_started)
        gate = gate_table(idata, method, model_config["gate"])
        fit = {"divergences": int(gate["divergences"].iloc[0]), "gate_passed": bool(gate["passed"].all()),
               "max_r_hat": r_hat, "refitted": refitted}
        rows += [{**row, **fit} for row in posterior_rows(method, stacked_draws([idata], variables), truth)]
    rows += naive_rows(cases, truth)
    table = pd.DataFrame(rows).assign(scenario=scenario, replicate=replicate,
                                      seconds=time.perf_counter() - started,
                                      cpu_seconds=cpu_seconds() - cpu_started)
    return table.reindex(columns=REPLICATE_COLUMNS)


def clopper_pearson(successes, trials, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) binomial interval for a share; `successes` may be fractional (see coverage_table)."""
    alpha = 1 - level
    low = 0.0 if successes <= 0 else float(stats.beta.ppf(alpha / 2, successes, trials - successes + 1))
    high = 1.0 if successes >= trials else float(stats.beta.ppf(1 - alpha / 2, successes + 1, trials - successes))
    return low, high


def _coverage_row(estimates: pd.DataFrame, seconds: pd.DataFrame) -> dict:
    """Coverage with its 95% Clopper-Pearson interval, bias, RMSE, width and refitted fits over one group of estimates.

    The unit is the replicate: with several forces per replicate (level `all`), each replicate contributes its
    share of covered forces, and the interval is that of (mean share x K) successes in K trials, which does not
    pretend that forces sharing a replicate's data and hyperparameters are independent.
    """
    error = estimates["estimate"] - estimates["truth"]
    replicates = estimates["replicate"].unique()
    row = {"n_replicates": len(replicates), "n_estimates": len(estimates), "bias": error.mean(),
           "rmse": float(np.sqrt((error**2).mean())), "mean_width_90": (estimates["q95"] - estimates["q05"]).mean(),
           "seconds_per_replicate": seconds.loc[replicates, "seconds"].mean(),
           "cpu_seconds_per_replicate": seconds.loc[replicates, "cpu_seconds"].mean(),
           "n_refitted": int(estimates.groupby("replicate")["refitted"].first().eq(True).sum())}
    for level in ("50", "90"):
        covered = estimates[f"covered_{level}"]
        if covered.isna().all():  # the naive estimate has no interval
            row.update({f"coverage_{level}": np.nan, f"coverage_{level}_low": np.nan, f"coverage_{level}_high": np.nan})
            continue
        share = covered.astype(float).groupby(estimates["replicate"]).mean()
        low, high = clopper_pearson(share.sum(), len(share))
        row.update({f"coverage_{level}": share.mean(), f"coverage_{level}_low": low, f"coverage_{level}_high": high})
    return row


def coverage_table(replicates: pd.DataFrame) -> pd.DataFrame:
    """One row per scenario x method x estimand x scope: pooled (level ''), all forces (level `all`) and each
    force; columns COVERAGE_COLUMNS.

    Where the true tau is zero (its boundary) no interval of a positive SD can hold it, so tau's coverage is left
    undefined there; its bias still shows how much heterogeneity the model reads into identical effects.
    Replicate files written before `max_r_hat` and `refitted` existed count as not refitted.
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
            rows.append({**key, "level": "", **_coverage_row(estimates, seconds)})
            continue
        rows.append({**key, "level": ALL_FORCES, **_coverage_row(estimates, seconds)})
        rows += [{**key, "level": force, **_coverage_row(group, seconds)}
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
    archived = sorted(Path(archive).glob(f"*/{SUMMARY_FILES['coverage']}")) if archive else []
    return (archived[-1].parent, True) if archived else (None, False)


def run_record(replicate_counts: dict, run_date: datetime | None = None) -> dict:
    """When the calibration ran, K per scenario, and the code version (git commit of the package's
    checkout and whether it had uncommitted changes; the package version outside a checkout): the report quotes it."""
    try:
        version = metadata.version("cara-eval")
    except metadata.PackageNotFoundError:
        version = None
    return {"run_date": (run_date or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds"),
            "git": git_state(REPO_ROOT), "package_version": version, "replicates": replicate_counts}
