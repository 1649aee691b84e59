"""Simulation-based calibration (Talts et al. 2018; Modrak et al. 2023) of the primary model.

Why: coverage over the scenario grid tests the model against the generator's hierarchy; SBC tests the model
against itself. Each replicate draws every parameter (mu_log_hr, tau, trend_sd and the rest) from the model's own
prior on the cells of the default design, simulates the cell outcomes from the model (prior predictive), refits the
same model (cara_eval.model.effectiveness.build_model) with those outcomes as data, and records the rank of each
true value among L thinned posterior draws. If the fit is calibrated the ranks are uniform on 0..L; a hump says the
posterior is too wide, a U too narrow, a slope that it is biased.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pandas as pd
import pymc as pm
from matplotlib.figure import Figure
from scipy import stats

from cara_eval.calibration.replicates import cpu_seconds, mixed_fit, replicate_model_config, simulate_replicate
from cara_eval.model.cells import Cells, CellSpec, build_cells
from cara_eval.model.effectiveness import build_model, derive_seed, sample_as_configured

SBC_PARAMETERS = ["mu_log_hr", "tau", "trend_sd"]
# Observed variable of the model -> the cell-table column it is drawn into.
OBSERVED = {"events": ("hazard", "events"), "flag_events": ("binomial", "k")}
SBC_COLUMNS = ["replicate", "parameter", "truth", "rank", "n_draws", "divergences", "max_r_hat", "refitted", "seconds",
               "cpu_seconds"]
UNIFORMITY_COLUMNS = ["parameter", "n_replicates", "bins", "chi_square", "df", "p_value", "max_ecdf_difference"]


def design_cells(calibration: dict, model_config: dict, seed: int) -> Cells:
    """The cells of one simulated dataset of the design scenario (config `calibration.sbc.design_scenario`):
    its counts and exposures fix the design; its outcomes are replaced by every prior draw."""
    cases, _ = simulate_replicate(calibration["sbc"]["design_scenario"], 0, calibration, derive_seed(seed, "sbc"))
    return build_cells(cases, CellSpec.from_config(model_config["cells"]))


def prior_draw(cells: Cells, model_config: dict, seed: int) -> tuple[dict, Cells]:
    """One draw of the parameters from the model's prior and the cell outcomes it implies (as a new Cells)."""
    model = build_model(cells, model_config["priors"], model_config["centred"], "partial")
    observed = [name for name in OBSERVED if name in model.named_vars]
    with model:
        draw = pm.sample_prior_predictive(draws=1, var_names=[*SBC_PARAMETERS, *observed], random_seed=seed)
    truth = {name: float(draw.prior[name].to_numpy().ravel()[0]) for name in SBC_PARAMETERS}
    tables = {}
    for name in observed:
        table, column = OBSERVED[name]
        simulated = draw.prior_predictive[name].to_numpy().reshape(-1)
        tables[table] = getattr(cells, table).assign(**{column: simulated})
    return truth, dataclasses.replace(cells, **tables)


def thinned_ranks(truth: dict, posterior, n_draws: int) -> dict:
    """Rank of each true value among `n_draws` posterior draws taken evenly across the chains (thinning
    weakens autocorrelation, which would make the ranks look non-uniform): the number of draws below it."""
    ranks = {}
    for name, value in truth.items():
        draws = posterior[name].stack(sample=("chain", "draw")).to_numpy()
        kept = draws[np.linspace(0, len(draws) - 1, n_draws).round().astype(int)]
        ranks[name] = int((kept < value).sum())
    return ranks


def run_sbc_replicate(replicate: int, calibration: dict, model_config: dict, seed: int, cores: int = 1) -> pd.DataFrame:
    """Prior draw, simulated outcomes and refit of one SBC replicate; one row per parameter (SBC_COLUMNS)."""
    started, cpu_started = time.perf_counter(), cpu_seconds()
    fit_config = replicate_model_config(model_config, calibration)
    cells = design_cells(calibration, fit_config, seed)
    truth, simulated = prior_draw(cells, fit_config, derive_seed(seed, "sbc_prior", str(replicate)))
    model = build_model(simulated, fit_config["priors"], fit_config["centred"], "partial", fit_config["likelihood"])
    idata, r_hat, refitted = mixed_fit(
        lambda config, fit_seed: sample_as_configured(model, config, fit_seed, cores),
        fit_config, calibration, derive_seed(seed, "sbc_fit", str(replicate)))
    n_draws = calibration["sbc"]["thinned_draws"]
    ranks = thinned_ranks(truth, idata.posterior, n_draws)
    divergences = int(idata.sample_stats["diverging"].sum())
    return pd.DataFrame([
        {"replicate": replicate, "parameter": name, "truth": truth[name], "rank": ranks[name], "n_draws": n_draws,
         "divergences": divergences, "max_r_hat": r_hat, "refitted": refitted, "seconds": time.perf_counter() - started,
         "cpu_seconds": cpu_seconds() - cpu_started}
        for name in SBC_PARAMETERS
    ], columns=SBC_COLUMNS)


def rank_counts(ranks: pd.Series, n_draws: int, bins: int) -> np.ndarray:
    """Counts of ranks 0..n_draws in `bins` equal bins (n_draws + 1 must be a multiple of bins)."""
    if (n_draws + 1) % bins:
        raise ValueError(f"thinned_draws + 1 = {n_draws + 1} is not a multiple of bins = {bins}")
    return np.bincount(ranks.to_numpy(dtype=int) // ((n_draws + 1) // bins), minlength=bins)


def uniform_band(n_replicates: int, bins: int, level: float = 0.99) -> tuple[float, float]:
    """Range a bin's count stays within with probability `level` when ranks are uniform: Binomial(N, 1/bins)."""
    tail = (1 - level) / 2
    return (float(stats.binom.ppf(tail, n_replicates, 1 / bins)), float(stats.binom.ppf(1 - tail, n_replicates, 1 / bins)))


def uniformity_table(ranks: pd.DataFrame, bins: int) -> pd.DataFrame:
    """Per parameter: chi-square test of equal bin counts, and the largest gap between the ranks' ECDF and the
    uniform one (Modrak et al. 2023 plot this gap)."""
    rows = []
    for name, part in ranks.groupby("parameter", sort=False):
        n_draws = int(part["n_draws"].iloc[0])
        counts = rank_counts(part["rank"], n_draws, bins)
        chi_square, p_value = stats.chisquare(counts)
        scaled = np.sort((part["rank"].to_numpy() + 0.5) / (n_draws + 1))
        ecdf_gap = np.max(np.abs(np.arange(1, len(scaled) + 1) / len(scaled) - scaled))
        rows.append({"parameter": name, "n_replicates": len(part), "bins": bins, "chi_square": float(chi_square),
                     "df": bins - 1, "p_value": float(p_value), "max_ecdf_difference": float(ecdf_gap)})
    return pd.DataFrame(rows, columns=UNIFORMITY_COLUMNS)


def rank_figure(ranks: pd.DataFrame, bins: int) -> Figure:
    """Rank histogram per parameter with the 99% band of a uniform histogram's bin counts."""
    parameters = list(dict.fromkeys(ranks["parameter"]))
    fig = Figure(figsize=(3.0 * len(parameters), 2.8), dpi=150)
    axes = np.atleast_1d(fig.subplots(1, len(parameters), sharey=True))
    for axis, name in zip(axes, parameters):
        part = ranks[ranks["parameter"].eq(name)]
        counts = rank_counts(part["rank"], int(part["n_draws"].iloc[0]), bins)
        low, high = uniform_band(len(part), bins)
        axis.axhspan(low, high, color="0.88", label="99% range if uniform")
        axis.axhline(len(part) / bins, color="grey", lw=0.8)
        axis.bar(np.arange(bins), counts, width=0.9, color="0.3")
        axis.set_title(name, fontsize=9)
        axis.set_xlabel(f"Rank bin (of {bins})")
    axes[0].set_ylabel("Replicates")
    axes[0].legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), frameon=False, fontsize=7)
    fig.tight_layout()
    return fig
