"""Cost-benefit of CARA with the posterior's uncertainty carried through, per force and pooled.

Why: the economic strand of the national evaluation reported cost per reoffence avoided per force from
point estimates, including forces whose effect could not be told from zero (a ratio over a denominator
near zero is meaningless). Here every quantity is computed per posterior draw of the risk difference,
so net monetary benefit and the benefit-cost ratio come with intervals, the acceptability curve says how
likely CARA is to be worth its cost at each willingness to pay, and cost per reoffence avoided is only
reported where the effect's 90% interval lies below zero.

Unit of effect: reoffenders avoided per CARA participant, ``-rd_per100 / 100``, from the any_reoffence
risk difference. Each reoffender avoided is valued at the cost of one DA offence (conservative: some
reoffenders commit several).
"""

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

QUANTILES = (0.05, 0.95)  # the 90% interval, as the model's q05/q95
DRAW_COLUMNS = ["draw", "scope", "force", "rd_per100", "n_cara"]
SUMMARY_COLUMNS = [
    "scope", "force", "n_cara", "rd_per100_mean", "rd_per100_q05", "rd_per100_q95",
    "nmb_per_participant_mean", "nmb_per_participant_q05", "nmb_per_participant_q95",
    "nmb_total_mean", "nmb_total_q05", "nmb_total_q95", "prob_nmb_positive",
    "bcr_median", "bcr_q05", "bcr_q95",
    "cost_per_reoffence_avoided", "cost_per_reoffence_avoided_q05", "cost_per_reoffence_avoided_q95",
    "cost_per_reoffence_avoided_reason",
]


def _groups(draws: pd.DataFrame):
    """Draws grouped by (scope, force), pooled first, then forces alphabetically, then a new force."""
    order = {"pooled": 0, "force": 1, "new_force": 2}
    keyed = draws.assign(force=draws["force"].fillna(""))
    keys = sorted(keyed.groupby(["scope", "force"]).groups, key=lambda k: (order[k[0]], k[1]))
    return [(scope, force, keyed.loc[(keyed["scope"] == scope) & (keyed["force"] == force)])
            for scope, force in keys]


def cost_per_reoffence_avoided(rd_per100: np.ndarray, cara_cost: float) -> tuple[float, float, float, str]:
    """CARA cost per reoffender avoided with its 90% interval, or NaN and the reason it is not reported.

    Only where the 90% interval of the risk difference lies below zero: then 1/effect is monotone over
    the interval and its quantiles are the inverted quantiles of the effect.
    """
    low, high = np.quantile(rd_per100, QUANTILES)
    if high >= 0 > low:
        return np.nan, np.nan, np.nan, "suppressed: the effect's 90% interval spans zero"
    if low >= 0:
        return np.nan, np.nan, np.nan, "suppressed: the effect's 90% interval lies above zero (CARA dominated)"
    avoided_median = -np.median(rd_per100) / 100
    return cara_cost / avoided_median, cara_cost / (-low / 100), cara_cost / (-high / 100), \
        "reported: the effect's 90% interval lies below zero"


def summarise(draws: pd.DataFrame, cara_cost: float, offence_cost: float) -> pd.DataFrame:
    """Per scope and force: posterior net monetary benefit, benefit-cost ratio, cost per reoffence avoided."""
    rows = []
    for scope, force, group in _groups(draws):
        rd = group["rd_per100"].to_numpy(dtype=float)
        avoided = -rd / 100
        nmb = avoided * offence_cost - cara_cost
        n_cara = group["n_cara"].iloc[0]
        total = nmb * n_cara if pd.notna(n_cara) else np.full_like(nmb, np.nan)
        bcr = avoided * offence_cost / cara_cost
        rows.append([scope, force, n_cara, rd.mean(), *np.quantile(rd, QUANTILES),
                     nmb.mean(), *np.quantile(nmb, QUANTILES),
                     total.mean(), *np.quantile(total, QUANTILES), float(np.mean(nmb > 0)),
                     np.median(bcr), *np.quantile(bcr, QUANTILES),
                     *cost_per_reoffence_avoided(rd, cara_cost)])
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def acceptability_curve(draws: pd.DataFrame, cara_cost: float, wtp: np.ndarray) -> pd.DataFrame:
    """Probability that CARA is cost-effective, P(wtp * reoffenders avoided > cost), at each willingness to pay."""
    frames = []
    for scope, force, group in _groups(draws):
        avoided = -group["rd_per100"].to_numpy(dtype=float) / 100
        probability = (np.outer(wtp, avoided) > cara_cost).mean(axis=1)
        frames.append(pd.DataFrame({"scope": scope, "force": force, "wtp_per_reoffence_avoided": wtp,
                                    "prob_cost_effective": probability}))
    return pd.concat(frames, ignore_index=True)


def plot_acceptability(curve: pd.DataFrame, offence_cost: float, path) -> None:
    """Forces in grey, the pooled estimate in black, a new force dashed; the cost of a DA offence marked.

    A bare Agg ``Figure`` without a software stamp, so the same draws give a byte-identical PNG.
    """
    styles = {"pooled": dict(color="black", lw=2.2, zorder=3, label="pooled (national average)"),
              "new_force": dict(color="tab:blue", lw=1.6, ls="--", label="a force that has not started"),
              "force": dict(color="grey", lw=0.8, alpha=0.7)}
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for (scope, _), group in curve.groupby(["scope", "force"], sort=False):
        ax.plot(group["wtp_per_reoffence_avoided"], group["prob_cost_effective"], **styles[scope])
    ax.plot([], [], color="grey", lw=0.8, label="individual forces")
    ax.axvline(offence_cost, color="tab:red", lw=1, ls=":", label=f"cost of a DA offence (£{offence_cost:,.0f})")
    ax.set(xlabel="willingness to pay per reoffender avoided (£)", ylabel="probability CARA is cost-effective",
           ylim=(-0.02, 1.02), title="Cost-effectiveness acceptability curve")
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    fig.savefig(path, dpi=150, metadata={"Software": None})


def unit_cost_table(unit_costs: dict) -> pd.DataFrame:
    """The unit costs used, with their sources, so the report never quotes a number without its origin."""
    return pd.DataFrame([{"item": item, "value_gbp": spec["value"], "source": spec["source"],
                          "illustrative": spec["illustrative"]} for item, spec in unit_costs.items()])
