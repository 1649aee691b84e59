"""Prior and posterior predictive checks of the effectiveness model: tables first, figures drawn from them."""

from __future__ import annotations

import arviz as az
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pymc as pm  # noqa: E402

from cara_eval.model.cells import Cells  # noqa: E402
from cara_eval.model.effectiveness import free_variable_draws, values_at_draws  # noqa: E402

PRIOR_PREDICTIVE_QUANTITIES = [
    "risk_without_cara",
    "risk_cara",
    "risk_difference_per100",
    "risk_ratio",
    "odds_ratio",
    "new_force_risk_difference_per100",
    "mu_log_hr",
    "tau",
]


def priors_table(priors: dict) -> pd.DataFrame:
    """The priors exactly as configured, one row per parameter, for the outputs and the report."""
    return pd.DataFrame(
        [{"parameter": name, "dist": spec["dist"], "mu": spec.get("mu", 0.0), "sigma": spec["sigma"]}
         for name, spec in priors.items()]
    )


def prior_predictive(model: pm.Model, draws: int, seed: int) -> tuple[pd.DataFrame, az.InferenceData]:
    """Implied ranges of 12-month risk and of the effects under the priors alone (5/50/95% and mean).

    The free variables are drawn from their priors and the quantities computed from those draws in one vectorised
    pass (`values_at_draws`, as the posterior's Deterministics): on default data 3.8 s from an empty compile cache,
    against 12.6 s for pm.sample_prior_predictive, which compiles the whole graph to C first."""
    free = pm.draw(model.free_RVs, draws=draws, random_seed=seed)
    outputs = [model[quantity] for quantity in PRIOR_PREDICTIVE_QUANTITIES]
    computed = values_at_draws(model, outputs, {variable.name: value for variable, value in zip(model.free_RVs, free)})
    prior = az.from_dict(prior={quantity: value[np.newaxis] for quantity, value in zip(PRIOR_PREDICTIVE_QUANTITIES,
                                                                                        computed)})
    rows = []
    for quantity in PRIOR_PREDICTIVE_QUANTITIES:
        values = prior.prior[quantity].to_numpy().ravel()
        q05, q50, q95 = np.quantile(values, [0.05, 0.5, 0.95])
        rows.append({"quantity": quantity, "mean": values.mean(), "q05": q05, "q50": q50, "q95": q95})
    return pd.DataFrame(rows), prior


def plot_prior_predictive(prior: az.InferenceData, path) -> None:
    quantities = ["risk_without_cara", "risk_difference_per100", "risk_ratio", "new_force_risk_difference_per100"]
    fig, axes = plt.subplots(1, len(quantities), figsize=(4 * len(quantities), 3))
    for ax, quantity in zip(axes, quantities):
        ax.hist(prior.prior[quantity].to_numpy().ravel(), bins=40, color="grey")
        ax.set_title(quantity, fontsize=9)
    fig.suptitle("Prior predictive: implied 12-month risk and CARA effect (ATT)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def posterior_predictive_by_force(
    model: pm.Model, idata: az.InferenceData, cells: Cells, draws: int, seed: int
) -> pd.DataFrame:
    """Observed vs predicted reoffenders per force and arm (Poisson first events plus flag counts)."""
    thinned = az.extract(idata, num_samples=min(draws, idata.posterior.sizes["draw"] * idata.posterior.sizes["chain"]),
                         rng=seed, keep_dataset=True)
    thinned = thinned.drop_vars([c for c in ("chain", "draw") if c in thinned.coords]).rename({"sample": "draw"})
    thinned = thinned.expand_dims(chain=[0])
    observed_names = [name for name, table in (("events", cells.hazard), ("flag_events", cells.binomial)) if len(table)]
    predicted = posterior_predictive_draws(model, thinned, observed_names, seed)
    groups = cells.case_counts[["force", "arm"]]
    totals = np.zeros((thinned.sizes["draw"], len(groups)))
    for name, table in (("events", cells.hazard), ("flag_events", cells.binomial)):
        if name not in predicted:
            continue
        arm = np.where(table["cara"].to_numpy() == 1, "cara", "comparison")
        key = pd.MultiIndex.from_arrays([table["force"], arm])
        membership = (key.to_numpy()[:, None] == pd.MultiIndex.from_frame(groups).to_numpy()[None, :]).astype(float)
        totals += predicted[name] @ membership
    table = cells.case_counts.copy()
    table["predicted_mean"] = totals.mean(axis=0)
    table["predicted_q05"], table["predicted_q95"] = np.quantile(totals, [0.05, 0.95], axis=0)
    table["within_90"] = (table["observed_events"] >= table["predicted_q05"]) & (
        table["observed_events"] <= table["predicted_q95"]
    )
    return table


def posterior_predictive_draws(model: pm.Model, posterior, names: list[str], seed: int) -> dict[str, np.ndarray]:
    """Draws of the observed variables `names` at every posterior draw (draws first): their distributions' parameters
    computed in one vectorised pass (`values_at_draws`), then drawn by each distribution's own numpy sampler.

    The same distribution as pm.sample_posterior_predictive, which compiles the graph to C first: on default data
    (400 draws) 1.5 s from an empty compile cache against 9.3 s."""
    variables = [model[name] for name in names]
    parameters = [variable.owner.op.dist_params(variable.owner) for variable in variables]
    values = iter(values_at_draws(model, [parameter for group in parameters for parameter in group],
                                  free_variable_draws(model, posterior)))
    rng = np.random.default_rng(seed)
    return {name: variable.owner.op.rng_fn(rng, *[next(values) for _ in group], None)
            for name, variable, group in zip(names, variables, parameters, strict=True)}


def plot_posterior_predictive(table: pd.DataFrame, path) -> None:
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(table) + 1))
    y = np.arange(len(table))
    ax.hlines(y, table["predicted_q05"], table["predicted_q95"], color="grey", label="predicted 90%")
    ax.plot(table["predicted_mean"], y, "|", color="black", markersize=10)
    ax.plot(table["observed_events"], y, "o", color="tab:red", label="observed")
    ax.set_yticks(y, [f"{f} / {a}" for f, a in zip(table["force"], table["arm"])], fontsize=8)
    ax.set_xlabel("reoffenders within follow-up")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
