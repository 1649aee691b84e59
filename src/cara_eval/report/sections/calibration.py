"""Calibration of the model (report/_calibration.qmd): interval coverage and bias of the last calibration run."""

import pandas as pd
from matplotlib.figure import Figure

from cara_eval.report.data import ReportData, _read_checked
from cara_eval.report.formatting import HEADLINE, effect_text, number, percent


def calibration_coverage(data: ReportData) -> pd.DataFrame | None:
    """The last calibration run's coverage table (`snakemake calibration`), or None when none has been run."""
    path = ((data.config.get("calibration_run") or {}).get("coverage"))
    return _read_checked("calibration_coverage", path) if path else None


def calibration_markdown(data: ReportData) -> str:
    """What calibration shows, from its table; or how to run it."""
    settings = data.config.get("calibration") or {}
    coverage = calibration_coverage(data)
    if coverage is None:
        return (
            "No calibration run is recorded for this report. Calibration checks that the model's intervals cover the "
            "truth as often as they claim: `snakemake calibration` simulates "
            f"{settings.get('replicates', 'K')} replicate datasets under the synthetic generator's hierarchy, fits "
            "each with the primary model and writes `results/calibration/coverage.csv`; the next report render shows "
            "it here."
        )
    overall = coverage[coverage["trend_shape"].eq("all")].set_index(["method", "scope"])
    pooled, force = overall.loc[("bayes_hierarchical", "pooled")], overall.loc[("bayes_hierarchical", "force")]
    text = (
        f"From the last calibration run ({int(pooled['n_replicates'])} replicate datasets of "
        f"{settings.get('n_cases', 'the configured number of')} simulated cases, fitted with the primary model): the "
        f"90% intervals covered the true pooled effect in {percent(pooled['coverage_90'])} of replicates and the true "
        f"force effects in {percent(force['coverage_90'])} (goal: 85% to 95%); the 50% intervals in "
        f"{percent(pooled['coverage_50'])} and {percent(force['coverage_50'])}. Mean bias of the pooled effect: "
        f"{effect_text(pooled['mean_bias'], HEADLINE)} per 100."
    )
    if ("naive_before_after", "pooled") in overall.index:
        naive = overall.loc[("naive_before_after", "pooled")]
        text += f" The naive before/after comparison is off by {effect_text(naive['mean_bias'], HEADLINE)} on average"
        if ("no_pooling", "force") in overall.index:
            alone = overall.loc[("no_pooling", "force")]
            text += (f"; per-force analyses without pooling by {effect_text(alone['mean_bias'], HEADLINE)} (root mean "
                     f"square error {alone['rmse']:.1f} against {force['rmse']:.1f} with pooling)")
        text += "."
    if pooled["n_replicates"] < 50:
        text += (f" With {int(pooled['n_replicates'])} replicates a coverage share is itself uncertain by about "
                 f"±{100 * 1.645 * (0.9 * 0.1 / pooled['n_replicates']) ** 0.5:.0f} points (90%).")
    return text


def calibration_table(data: ReportData) -> pd.DataFrame:
    coverage = calibration_coverage(data)
    return pd.DataFrame(
        {
            "Method": coverage["method"].str.replace("_", " "),
            "Scope": coverage["scope"],
            "Trend": coverage["trend_shape"],
            "Replicates": coverage["n_replicates"].map(lambda n: f"{int(n)}"),
            "50% coverage": coverage["coverage_50"].map(percent),
            "90% coverage": coverage["coverage_90"].map(percent),
            "Mean bias": coverage["mean_bias"].map(number("+.2f")),
            "RMSE": coverage["rmse"].map(number(".2f")),
            "Mean 90% width": coverage["mean_width_90"].map(number(".1f")),
        }
    )


def calibration_figure(data: ReportData) -> Figure:
    from cara_eval.calibration.replicates import coverage_figure

    return coverage_figure(calibration_coverage(data))
