"""Results (report/_results.qmd): forest plot, estimand tables and time to first reoffence."""

import pandas as pd
from matplotlib.figure import Figure

from cara_eval.report.data import ReportData
from cara_eval.report.formatting import HEADLINE, gate_text, number, sure_percent

FOREST_STYLE = {
    "no_pooling": ("o", "white", "This force alone"),
    "partial_pooling": ("o", "black", "Partial pooling"),
    "pooled": ("D", "black", "Pooled average"),
    "new_force": ("D", "white", "A new force (prediction)"),
}


def forest_figure(data: ReportData) -> Figure:
    """Per-force effects alone and partially pooled, the pooled average and the new-force prediction."""
    forest = data.table("forest")
    per_force = forest[forest["method"].isin(["no_pooling", "partial_pooling"])]
    rows = [(data.force_name(f), f, ("no_pooling", "partial_pooling")) for f in dict.fromkeys(per_force["force"])]
    rows += [("Pooled average", None, ("pooled",)), ("New force", None, ("new_force",))]
    # Capped height keeps 43 forces on one A4 page; labels shrink instead.
    fig = Figure(figsize=(7.0, min(0.42 * len(rows) + 1.3, 9.0)), dpi=150)
    ax = fig.add_subplot()
    ax.tick_params(axis="y", labelsize=min(10.0, 200.0 / len(rows)))
    seen = set()
    for position, (_label, force, methods) in enumerate(rows):
        y = len(rows) - 1 - position
        for offset, method in zip((0.15, -0.15) if len(methods) == 2 else (0.0,), methods):
            selected = forest[forest["method"].eq(method)]
            if force is not None:
                selected = selected[selected["force"].eq(force)]
            if selected.empty:
                continue
            row = selected.iloc[0]
            marker, face, legend = FOREST_STYLE[method]
            ax.plot([row["q05"], row["q95"]], [y + offset] * 2, color="black", lw=1.2)
            ax.plot(row["mean"], y + offset, marker=marker, mfc=face, mec="black", color="black", ms=6,
                    label=None if method in seen else legend, ls="none")
            seen.add(method)
    ax.axvline(0, color="grey", lw=0.8, ls="--")
    ax.axhline(1.5, color="grey", lw=0.5)
    ax.set_yticks(range(len(rows)), [label for label, _, _ in reversed(rows)])
    ax.set_xlabel("Reoffenders per 100 people given CARA, change (negative = fewer; 90% interval)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def estimand_table(data: ReportData) -> pd.DataFrame:
    """Every pooled and new-force estimand, with the probability of a reduction and the gate status."""
    table = data.table("estimands")
    shown = table[table["scope"].isin(["pooled", "new_force"])]
    return pd.DataFrame(
        {
            "Estimand": shown["estimand"].str.replace("_", " "),
            "Scope": shown["scope"].str.replace("_", " "),
            "Mean": shown["mean"].map(number(".3g")),
            "90% interval": [f"{lo:.3g} to {hi:.3g}" for lo, hi in zip(shown["q05"], shown["q95"])],
            "Pr(reduction)": shown["prob_reduction"].map(lambda p: "" if pd.isna(p) else sure_percent(p)),
            "Gate": shown["gate_passed"].map(gate_text),
        }
    )


def scope_table(data: ReportData, scope: str, label: str) -> pd.DataFrame:
    """Risk difference per 100 by force or by relationship status."""
    table = data.table("estimands")
    shown = table[table["estimand"].eq(HEADLINE) & table["scope"].eq(scope)]
    names = shown["level"].map(data.force_name) if scope == "force" else shown["level"].str.replace("_", " ")
    return pd.DataFrame(
        {
            label: names.to_numpy(),
            "Per 100 (mean)": shown["mean"].map(number("+.1f")).to_numpy(),
            "90% interval": [f"{lo:+.1f} to {hi:+.1f}" for lo, hi in zip(shown["q05"], shown["q95"])],
            "Pr(reduction)": shown["prob_reduction"].map(sure_percent).to_numpy(),
            "Gate": shown["gate_passed"].map(gate_text).to_numpy(),
        }
    )


def time_to_first_markdown(data: ReportData) -> str:
    """Time to first reoffence, from the same hazard fit: hazard ratio and reoffence-free days gained."""
    ratio = data.estimand("hazard_ratio_att", "pooled")
    days = data.estimand("rmst_difference_days", "pooled")
    return (
        f"Among people given CARA, the rate of a first domestic-abuse reoffence was {ratio['mean']:.2f} times "
        f"the rate expected without CARA (90% interval {ratio['q05']:.2f} to {ratio['q95']:.2f}; "
        f"Pr(lower rate) {sure_percent(ratio['prob_reduction'])}). Over the first year that is "
        f"{days['mean']:+.1f} reoffence-free days per person on average (90% interval {days['q05']:+.1f} to "
        f"{days['q95']:+.1f}): the same model, read as time to the first reoffence rather than whether one happens."
    )
