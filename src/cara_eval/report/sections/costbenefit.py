"""Cost-benefit (report/_costbenefit.qmd): net monetary benefit, acceptability curve and unit costs."""

from io import BytesIO

import pandas as pd

from cara_eval.common.disclosure import NOT_RECORDED, suppressed_label
from cara_eval.report.data import ReportData
from cara_eval.report.formatting import ALL_FORCES, Md, count_label, effect_cell, is_true, sure_percent
from cara_eval.report.sections.cohorts import cases_by_arm


def _pounds(value: float) -> str:
    return "" if pd.isna(value) else f"£{value:,.0f}"


def _pounds_interval(low: float, high: float) -> str:
    return f"{_pounds(low)} to {_pounds(high)}".replace("£-", "-£")


def _money(value: float) -> str:
    return _pounds(value).replace("£-", "-£")


def costbenefit_table(data: ReportData) -> pd.DataFrame:
    """Net monetary benefit, benefit-cost ratio and cost per reoffender avoided, pooled, per force, new force.

    CARA case counts are the ones the cohort table publishes (same suppression); a total benefit would give a
    hidden count away (total / per participant), so it is hidden with it.
    """
    summary = data.table("costbenefit_summary").copy()
    summary["force"] = summary["force"].fillna("").astype(str)
    shown_cara = cases_by_arm(data)["cara"]
    hidden = suppressed_label(data.threshold)
    labels, counts = [], []
    for scope, force in zip(summary["scope"], summary["force"]):
        if scope == "pooled":
            labels.append(f"{ALL_FORCES} (pooled)")
            counts.append(shown_cara.get(ALL_FORCES, NOT_RECORDED))
        elif scope == "new_force":
            labels.append("A new force (prediction)")
            counts.append("")
        else:
            labels.append(data.force_name(force))
            counts.append(shown_cara.get(force, NOT_RECORDED))
    total = [
        "suppressed" if count == hidden else ("" if pd.isna(mean) else f"{_money(mean)} ({_pounds_interval(lo, hi)})")
        for count, mean, lo, hi in zip(counts, summary["nmb_total_mean"], summary["nmb_total_q05"],
                                       summary["nmb_total_q95"])
    ]
    per_reoffence = [
        f"{_money(value)} ({_pounds_interval(lo, hi)})" if pd.notna(value) else f"not reported: {reason.split(': ', 1)[-1]}"
        for value, lo, hi, reason in zip(summary["cost_per_reoffence_avoided"], summary["cost_per_reoffence_avoided_q05"],
                                         summary["cost_per_reoffence_avoided_q95"],
                                         summary["cost_per_reoffence_avoided_reason"])
    ]
    return pd.DataFrame(
        {
            "Scope": labels,
            count_label("CARA cases"): counts,
            "Change per 100 (90%)": [effect_cell(m, lo, hi) for m, lo, hi in
                                     zip(summary["rd_per100_mean"], summary["rd_per100_q05"], summary["rd_per100_q95"])],
            "Net benefit per participant (90%)": [
                f"{_money(m)} ({_pounds_interval(lo, hi)})" for m, lo, hi in
                zip(summary["nmb_per_participant_mean"], summary["nmb_per_participant_q05"],
                    summary["nmb_per_participant_q95"])],
            "Net benefit, all participants (90%)": total,
            "Pr(net benefit > 0)": summary["prob_nmb_positive"].map(sure_percent).to_numpy(),
            "Benefit-cost ratio (90%)": [f"{m:.2f} ({lo:.2f} to {hi:.2f})" for m, lo, hi in
                                         zip(summary["bcr_median"], summary["bcr_q05"], summary["bcr_q95"])],
            "Cost per reoffender avoided (90%)": per_reoffence,
        }
    )


def costbenefit_markdown(data: ReportData) -> str:
    """The pooled cost-benefit in words, and where cost per reoffender avoided is withheld and why."""
    summary = data.table("costbenefit_summary")
    pooled = summary[summary["scope"].eq("pooled")].iloc[0]
    costs = data.table("costbenefit_unit_costs").set_index("item")["value_gbp"]
    withheld = summary[summary["scope"].eq("force") & summary["cost_per_reoffence_avoided"].isna()]
    text = (
        f"Valuing each reoffender avoided at {_pounds(costs.get('da_offence'))} and CARA at "
        f"{_pounds(costs.get('cara_per_participant'))} per participant (illustrative unit costs, below), the net "
        f"monetary benefit over all forces is {_money(pooled['nmb_per_participant_mean'])} per participant "
        f"({_pounds_interval(pooled['nmb_per_participant_q05'], pooled['nmb_per_participant_q95'])}; 90% interval), "
        f"a benefit-cost ratio of {pooled['bcr_median']:.2f} ({pooled['bcr_q05']:.2f} to {pooled['bcr_q95']:.2f}). "
        f"The probability that CARA's benefit exceeds its cost is {sure_percent(pooled['prob_nmb_positive'])}. "
        "Cost per reoffender avoided divides the cost by the effect, which is meaningless when the effect could be "
        "zero or harmful (the ratio explodes or flips sign), so it is reported only where the 90% interval of the "
        "effect lies below zero."
    )
    if len(withheld):
        names = ", ".join(data.force_name(f) for f in withheld["force"])
        text += f" It is withheld for {names}, whose interval reaches zero or above."
    return text


def ceac_png(data: ReportData) -> bytes:
    """The acceptability curve drawn by the cost-benefit stage's own plotting function, from its table."""
    from cara_eval.costbenefit.economics import plot_acceptability

    curve = data.table("costbenefit_ceac").copy()
    curve["force"] = curve["force"].fillna("")
    costs = data.table("costbenefit_unit_costs").set_index("item")["value_gbp"]
    buffer = BytesIO()
    plot_acceptability(curve, float(costs["da_offence"]), buffer)
    return buffer.getvalue()


def unit_costs_table(data: ReportData) -> pd.DataFrame:
    costs = data.table("costbenefit_unit_costs")
    return pd.DataFrame(
        {
            "Item": costs["item"].str.replace("_", " "),
            "Value": costs["value_gbp"].map(_pounds),
            "Status": costs["illustrative"].map(lambda v: Md("**illustrative**") if is_true(v) else "evaluation costing"),
            "Source": costs["source"],
        }
    )
