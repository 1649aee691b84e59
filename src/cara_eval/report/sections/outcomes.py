"""Secondary outcomes (report/_outcomes.qmd): number of reoffences and crime harm, where they were run."""

import pandas as pd

from cara_eval.report.data import ReportData
from cara_eval.report.formatting import gate_text, sure_percent

SECONDARY_OUTCOMES = {
    "reoffence_count": ("DA reoffences", "rate_ratio", "rate ratio"),
    "harm": ("crime-harm days", "ratio", "harm ratio"),
}


def secondary_outcomes_run(data: ReportData) -> list[str]:
    """Secondary outcomes whose estimand tables this report was given (config `secondary_outcomes.outcomes`)."""
    return [name for name in SECONDARY_OUTCOMES if f"outcome_{name}_estimands" in data.manifest["tables"]]


def secondary_outcomes_markdown(data: ReportData) -> str:
    """Headline per secondary outcome, and which forces could not contribute (flag-only: no counts or harm)."""
    run = secondary_outcomes_run(data)
    if not run:
        return ("The secondary outcomes (number of reoffences, crime harm) were not run in this configuration; "
                "the `publication` set runs them.")
    lines = []
    for name in run:
        label, ratio, ratio_label = SECONDARY_OUTCOMES[name]
        table = data.table(f"outcome_{name}_estimands")
        pooled = table[table["scope"].eq("pooled")].set_index("estimand")
        difference, rate = pooled.loc["difference_per100"], pooled.loc[ratio]
        forces = set(table.loc[table["scope"].eq("force"), "level"])
        left_out = sorted(set(data.manifest.get("forces", {})) - forces)
        missing = (f" Not included: {', '.join(data.force_name(f) for f in left_out)} (12-month flag only, no "
                   "counts or harm)." if left_out else "")
        lines.append(
            f"- **{label[0].upper() + label[1:]}** within a year, per 100 people given CARA: {difference['mean']:+.1f} "
            f"(90% interval {difference['q05']:+.1f} to {difference['q95']:+.1f}); {ratio_label} {rate['mean']:.2f} "
            f"({rate['q05']:.2f} to {rate['q95']:.2f}); probability of a reduction "
            f"{sure_percent(difference['prob_reduction'])}.{missing}"
        )
    return "\n".join(lines)


def secondary_outcomes_table(data: ReportData) -> pd.DataFrame:
    """Difference per 100 CARA cases and ratio of each secondary outcome: pooled, new force, relationship, force."""
    rows = []
    for name in secondary_outcomes_run(data):
        label, ratio, _ = SECONDARY_OUTCOMES[name]
        table = data.table(f"outcome_{name}_estimands").fillna({"level": ""})
        for scope in ("pooled", "new_force", "relationship", "force"):
            shown = table[table["scope"].eq(scope)]
            for level in shown["level"].drop_duplicates():
                at = shown[shown["level"].eq(level)].set_index("estimand")
                if "difference_per100" not in at.index or ratio not in at.index:
                    continue
                difference, rate = at.loc["difference_per100"], at.loc[ratio]
                where = data.force_name(level) if scope == "force" else (level or scope).replace("_", " ")
                rows.append({
                    "Outcome": label, "Scope": where,
                    "Per 100 (mean)": f"{difference['mean']:+.1f}",
                    "90% interval": f"{difference['q05']:+.1f} to {difference['q95']:+.1f}",
                    "Ratio (90% interval)": f"{rate['mean']:.2f} ({rate['q05']:.2f} to {rate['q95']:.2f})",
                    "Pr(reduction)": sure_percent(difference["prob_reduction"]),
                    "Gate": gate_text(difference["gate_passed"]),
                })
    return pd.DataFrame(rows)
