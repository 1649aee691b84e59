"""Convergence gate of one fit: every estimand and hyperparameter must pass before its numbers are trusted."""

from __future__ import annotations

import arviz as az
import pandas as pd

from cara_eval.model.effectiveness import HYPERPARAMETERS
from cara_eval.model.estimands import ESTIMAND_VARIABLES


def gated_variables(idata: az.InferenceData) -> list[str]:
    """Hyperparameters and estimand variables present in this fit (no-pooling fits lack tau, new force)."""
    return [v for v in HYPERPARAMETERS + ESTIMAND_VARIABLES if v in idata.posterior]


def gate_table(idata: az.InferenceData, dataset: str, thresholds: dict, variables: list[str] | None = None,
               ess_share: float = 1.0) -> pd.DataFrame:
    """Per-parameter R-hat, bulk/tail ESS and the fit's divergences; `passed` applies the config thresholds.

    `variables`: what to judge (default: the primary model's hyperparameters and estimands).
    `ess_share`: the fraction of the ESS thresholds this fit must reach by itself. A fit whose draws are pooled
    with m - 1 others (multiple imputation) carries 1/m of them; `pooled_gate` checks the sum over the fits.

    A single chain has no R-hat (NaN), which fails the gate rather than passing it silently.
    """
    names = gated_variables(idata) if variables is None else [v for v in variables if v in idata.posterior]
    # Unrounded: ArviZ's summary rounds R-hat to two decimals, which would pass up to 1.0149 under a 1.01 limit.
    summary = az.summary(idata, var_names=names, kind="diagnostics", round_to="none")
    divergences = int(idata.sample_stats["diverging"].sum())
    table = pd.DataFrame(
        {
            "dataset": dataset,
            "parameter": summary.index,
            "r_hat": summary["r_hat"].to_numpy(),
            "ess_bulk": summary["ess_bulk"].to_numpy(),
            "ess_tail": summary["ess_tail"].to_numpy(),
            "divergences": divergences,
        }
    )
    table["passed"] = (
        (table["r_hat"] <= thresholds["max_r_hat"])
        & (table["ess_bulk"] >= ess_share * thresholds["min_ess_bulk"])
        & (table["ess_tail"] >= ess_share * thresholds["min_ess_tail"])
        & (table["divergences"] <= thresholds["max_divergences"])
    )
    return table


def pooled_gate(gates: list[pd.DataFrame], thresholds: dict) -> pd.DataFrame:
    """The ESS thresholds on the pooled draws: per parameter, the bulk and tail ESS summed over the fits whose
    draws are concatenated (independent chains), besides each fit's own R-hat and divergences."""
    stacked = pd.concat(gates, ignore_index=True)
    pooled = stacked.groupby("parameter", sort=False).agg(
        r_hat=("r_hat", "max"), ess_bulk=("ess_bulk", "sum"), ess_tail=("ess_tail", "sum"), fits_passed=("passed", "all"))
    pooled["divergences"] = sum(int(gate["divergences"].iloc[0]) for gate in gates)  # each fit's count, once
    pooled["passed"] = (
        pooled["fits_passed"]
        & (pooled["ess_bulk"] >= thresholds["min_ess_bulk"])
        & (pooled["ess_tail"] >= thresholds["min_ess_tail"])
    )
    pooled.insert(0, "dataset", f"pooled ({len(gates)} fits)")
    return pooled.drop(columns="fits_passed").reset_index()[["dataset", *gates[0].columns.drop("dataset")]]


def gate_summary(gates: list[pd.DataFrame]) -> pd.DataFrame:
    """One row per fit: worst diagnostics and whether the whole fit passed."""
    rows = [
        {
            "dataset": gate["dataset"].iloc[0],
            "n_parameters": len(gate),
            "n_failed": int((~gate["passed"]).sum()),
            "max_r_hat": gate["r_hat"].max(),
            "min_ess_bulk": gate["ess_bulk"].min(),
            "min_ess_tail": gate["ess_tail"].min(),
            "divergences": int(gate["divergences"].iloc[0]),
            "passed": bool(gate["passed"].all()),
        }
        for gate in gates
    ]
    return pd.DataFrame(rows)
