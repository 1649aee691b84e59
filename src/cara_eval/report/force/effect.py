"""The force's effect (report/force/_effect.qmd and _map.qmd): from its data alone (no pooling), partially pooled and
the national average, in words and natural frequencies, and the hex map with the force highlighted."""

import pandas as pd
from matplotlib.figure import Figure

from cara_eval.report.data import ReportData
from cara_eval.report.formatting import HEADLINE, effect_cell, is_true, per100, per100_interval, sure_percent
from cara_eval.report.tilemap import draw_tile_map, partially_pooled_effects

ESTIMATES = {
    "no_pooling": "This force's data alone (no pooling)",
    "partial_pooling": "This force, borrowing strength from the others (partial pooling)",
    "pooled": "National average (all forces)",
}


def force_effects(data: ReportData) -> dict[str, pd.Series]:
    """The forest table's rows for this force (alone, partially pooled) and the national pooled average."""
    forest = data.table("forest")
    own = forest[forest["force"].astype(str).eq(data.force)]
    rows = {method: own[own["method"].eq(method)] for method in ("no_pooling", "partial_pooling")}
    rows["pooled"] = forest[forest["method"].eq("pooled")]
    return {method: row.iloc[0] for method, row in rows.items() if len(row)}


def effect_table(data: ReportData) -> pd.DataFrame:
    """The three estimates of the change in reoffenders per 100 CARA cases, as numbers and in words."""
    effects = force_effects(data)
    return pd.DataFrame({
        "Estimate": [ESTIMATES[m] for m in effects],
        "Per 100 CARA cases (90% interval)": [effect_cell(e["mean"], e["q05"], e["q95"]) for e in effects.values()],
        "In words, per 100": [f"{per100(e['mean'])} ({per100_interval(e['q05'], e['q95'])})"
                              for e in effects.values()],
    })


def _reoffended(value: float) -> str:
    """"about 4 fewer reoffended than would have" / "about the same number reoffended as would have"."""
    amount = per100(value)
    return f"{amount} reoffended within a year {'as' if amount == per100(0.0) else 'than'} would have without CARA"


def _excludes_zero(effect: pd.Series) -> bool:
    return effect["q95"] < 0 or effect["q05"] > 0


def effect_markdown(data: ReportData) -> str:
    """The force's effect in natural frequencies: alone, partially pooled, nationally; how sure, how much pooling
    narrows the range; or why the force has no estimate."""
    effects = force_effects(data)
    name = data.force_name(data.force)
    national = effects.get("pooled")
    national_text = (f"Nationally, {per100(national['mean'])} per 100 CARA cases "
                     f"({per100_interval(national['q05'], national['q95'])}; 90% interval)." if national is not None
                     else "")
    if "partial_pooling" not in effects:
        terms = data.table("terms")
        reason = terms.loc[terms["term"].eq(f"force:{data.force}"), "reason"]
        why = f" ({reason.iloc[0]})" if len(reason) else ""
        return f"{name}'s cases could not enter the effect model{why}, so there is no estimate for it yet. {national_text}"
    pooled = effects["partial_pooling"]
    parts = []
    if "no_pooling" in effects:
        alone = effects["no_pooling"]
        parts.append(
            f"**Of 100 CARA cases like {name}'s, {_reoffended(alone['mean'])}**, judging from {name}'s data alone "
            f"(plausible range: {per100_interval(alone['q05'], alone['q95'])} per 100; 90% interval). "
            + ("On their own, the data already tell a change from no effect." if _excludes_zero(alone) else
               "On their own, the data cannot yet tell a change from no effect: the range includes zero.")
        )
    parts.append(
        f"Borrowing strength from the other forces (partial pooling), the estimate for {name} is "
        f"{per100(pooled['mean'])} per 100 ({per100_interval(pooled['q05'], pooled['q95'])}){_sure_clause(data)}."
    )
    if "no_pooling" in effects:
        alone = effects["no_pooling"]
        parts.append(f"Pooling narrows the plausible range from {alone['q95'] - alone['q05']:.0f} to "
                     f"{pooled['q95'] - pooled['q05']:.0f} points per 100.")
    parts.append(national_text)
    if not _gate_passed(data):
        parts.append("**Provisional: these estimates come from model fits that failed the convergence gate** "
                     "(see the national report's appendix).")
    return " ".join(p for p in parts if p)


def _own_estimand(data: ReportData) -> pd.DataFrame:
    """The estimands' row of this force's headline effect (partial pooling); empty if the force is not modelled."""
    table = data.table("estimands")
    return table[table["estimand"].eq(HEADLINE) & table["scope"].eq("force")
                 & table["level"].astype(str).eq(data.force)]


def _gate_passed(data: ReportData) -> bool:
    """Whether the fits behind this force's and the national estimate passed the convergence gate."""
    pooled = data.estimand(HEADLINE, "pooled")
    return is_true(pooled["gate_passed"]) and _own_estimand(data)["gate_passed"].map(is_true).all()


def _sure_clause(data: ReportData) -> str:
    """"; we are P% sure CARA reduces reoffending there" from the estimands' force row, when present."""
    rows = _own_estimand(data)
    if rows.empty or pd.isna(rows.iloc[0]["prob_reduction"]):
        return ""
    return f"; we are {sure_percent(rows.iloc[0]['prob_reduction'])} sure that CARA reduces reoffending there"


def force_map(data: ReportData) -> Figure:
    """The national hex map of partially pooled effects, this force outlined."""
    return draw_tile_map(data.tiles, partially_pooled_effects(data.table("forest")), highlight=data.force).figure
