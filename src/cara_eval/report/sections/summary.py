"""Summary for commissioners (report/_summary.qmd): the headline, the new-force prediction and the caveats."""

from cara_eval.common.disclosure import suppressed_label
from cara_eval.report.data import ReportData
from cara_eval.report.formatting import HEADLINE, forces_text, is_true, per100, per100_interval, sure_percent


def summary_markdown(data: ReportData) -> str:
    """The commissioners' headline: the pooled effect in natural frequencies and how sure we are."""
    pooled = data.estimand(HEADLINE, "pooled")
    n_forces = data.table("row_accounting")["force"].nunique()
    return (
        f"**Out of 100 people given CARA, {per100(pooled['mean'])} reoffend within a year than would have "
        f"without it** ({per100_interval(pooled['q05'], pooled['q95'])} per 100; 90% credible interval). "
        f"**We are {sure_percent(pooled['prob_reduction'])} sure that CARA reduces reoffending**"
        f"{_tenth_clause(data)}. "
        f"This is the average over the {n_forces} forces that sent data, each force's estimate informing "
        "the others." + ("" if is_true(pooled["gate_passed"]) else PROVISIONAL)
    )


def _tenth_clause(data: ReportData) -> str:
    """", and P% sure by at least a tenth" when the model reports Pr(RR <= 0.9) (row pr_reduction_ge_10pct)."""
    table = data.table("estimands")
    rows = table[table["estimand"].eq("pr_reduction_ge_10pct") & table["scope"].eq("pooled")]
    return f", and {sure_percent(rows.iloc[0]['mean'])} sure by at least a tenth" if len(rows) else ""


PROVISIONAL = (
    " **Provisional: these numbers come from model fits that failed the convergence gate** (see the appendix)."
)


def new_force_markdown(data: ReportData) -> str:
    """What a force that has not started can expect: the prediction for a new force from the hierarchy."""
    new = data.estimand(HEADLINE, "new_force")
    return (
        f"A force that starts CARA can expect {per100(new['mean'])} reoffenders per 100 people cautioned "
        f"({per100_interval(new['q05'], new['q95'])}; 90% prediction interval). The chance that CARA reduces "
        f"reoffending in such a force is {sure_percent(new['prob_reduction'])}."
    )


def caveats(data: ReportData) -> list[str]:
    """The main caveats, each triggered by what the data and the fits actually show."""
    notes = []
    designs = data.manifest.get("forces", {})
    historical = [f for f, info in designs.items() if (info.get("design") or {}).get("comparison") == "historical"]
    if historical:
        notes.append(
            f"{len(historical)} of {forces_text(len(designs))} compare CARA with offenders from before CARA began "
            "(historical controls), so their estimates lean on the model's adjustment for time trends."
        )
    completeness = data.table("completeness")
    structural = completeness[completeness["structural"].map(is_true)]
    imputed = structural[structural["field"].isin((data.config.get("imputation") or {}).get("fields", []))]
    if not imputed.empty:
        notes.append(
            f"Some fields ({', '.join(sorted(imputed['field'].str.replace('_', ' ').unique()))}) are never recorded "
            f"in {forces_text(imputed['force'].nunique())}; there they are imputed from the forces that record them."
        )
    process = structural[structural["field"].isin(["victim_contacted", "victim_consulted"])]
    if not process.empty:
        notes.append(f"Victim contact or consultation is not recorded in {forces_text(process['force'].nunique())}.")
    coverage = data.table("followup_coverage")
    short = coverage.groupby("force")["share_full_followup"].min()
    short = short[short < 0.95]
    if not short.empty:
        notes.append(
            f"Follow-up is shorter than a year for some cases in {forces_text(len(short))} "
            "(the extract was taken early); the model counts only the time observed."
        )
    failed = data.gates[~data.gates["passed"].map(is_true)]["dataset"].unique()
    if len(failed):
        notes.append(f"Fits that failed the convergence gate: {', '.join(map(str, failed))}; see the appendix.")
    label = suppressed_label(data.threshold)
    notes.append(
        f"Counts of fewer than {data.threshold} people are shown as \"{label}\", and some larger counts are hidden "
        "too where a total would give a small one away."
    )
    return notes


def caveats_markdown(data: ReportData) -> str:
    return "\n".join(f"- {note}" for note in caveats(data))
