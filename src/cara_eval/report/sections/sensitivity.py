"""Sensitivity analyses (report/_sensitivity.qmd): how far the headline moves when one assumption changes."""

from io import BytesIO

import pandas as pd

from cara_eval.report.data import ReportData
from cara_eval.report.formatting import HEADLINE, gate_text, is_true, per100, sure_percent

SENSITIVITY_ESTIMANDS = {"risk_difference_per100": "Risk difference per 100", "tau": "Between-force SD (tau)",
                         "pr_any_reduction": "Pr(any reduction)", "elpd_loo": "PSIS-LOO elpd (cells)",
                         "lofo_lpd": "Held-out force log density"}


def sensitivity_run(data: ReportData) -> bool:
    """The sensitivity stage is optional (config `sensitivity.analyses`; the default run does a small set)."""
    return "sensitivity_summary" in data.manifest["tables"]


def sensitivity_markdown(data: ReportData) -> str:
    """How far the headline moves across the sensitivity fits, and where the MNAR grid would change it."""
    if not sensitivity_run(data):
        return "The sensitivity analyses were not part of this build (config `sensitivity.analyses`)."
    summary = data.table("sensitivity_summary")
    rd = summary[summary["estimand"] == HEADLINE]
    failed = rd[~rd["gate_passed"].map(is_true)]
    text = (f"Across the {len(rd)} fits below (the primary and refits with one assumption changed), the national risk difference ranges "
            f"from {per100(rd['mean'].min())} to {per100(rd['mean'].max())} reoffenders per 100 CARA cases "
            f"(posterior means).")
    if len(failed):
        text += f" {len(failed)} of these fits failed the convergence gate; their numbers are shown but not trusted."
    if "sensitivity_tipping_point" in data.manifest["tables"]:
        tip = data.table("sensitivity_tipping_point")
        reach = tip[(tip["criterion"] == "rd_q95_reaches_0") & tip["tipping_delta"].notna()]
        q95 = tip[tip["criterion"] == "rd_q95_reaches_0"]
        grids = ", ".join(sorted(set(q95["grid"])))
        if len(reach):
            text += (f" The 90% interval of the national effect would reach zero if the imputed values were shifted "
                     f"by delta = {reach['tipping_delta'].iloc[0]:.2g} (missing not at random).")
        elif len(q95) and (q95["baseline_value"] >= 0).all():
            text += f" The 90% interval of the national effect includes zero throughout the MNAR grid ({grids})."
        elif len(q95):
            text += f" Over the MNAR grid ({grids}) the 90% interval of the national effect stays below zero."
    return text


def sensitivity_table(data: ReportData) -> pd.DataFrame:
    summary = data.table("sensitivity_summary")

    def value(row):
        if row["estimand"] == "pr_any_reduction":
            return sure_percent(row["mean"])
        interval = "" if pd.isna(row["q05"]) else f" ({row['q05']:.2f} to {row['q95']:.2f})"
        return f"{row['mean']:.2f}{interval}"

    return pd.DataFrame(
        {
            "Analysis": summary["analysis"].str.replace("_", " "),
            "Variant": summary["variant"].str.replace("_", " "),
            "Estimand": summary["estimand"].map(lambda e: SENSITIVITY_ESTIMANDS.get(e, e)),
            "Estimate (90% interval)": summary.apply(value, axis=1),
            "Gate": summary["gate_passed"].map(gate_text),
            "What changed": summary["note"].fillna(""),
        }
    )


def sensitivity_png(data: ReportData) -> bytes:
    """The sensitivity stage's own figure, redrawn from its summary table."""
    from cara_eval.sensitivity.analyses import plot_summary

    buffer = BytesIO()
    plot_summary(data.table("sensitivity_summary"), buffer)
    return buffer.getvalue()
