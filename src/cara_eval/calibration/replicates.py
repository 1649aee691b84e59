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

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from cara_eval.model.effectiveness import derive_seed, fit_cases
from cara_eval.model.estimands import stacked_draws
from cara_eval.model.gate import gate_table, gated_variables
from cara_eval.model.naive import naive_before_after
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
