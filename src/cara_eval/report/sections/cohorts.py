"""Cohorts (report/_cohorts.qmd): cases by arm and case mix; `cases_by_arm` is the published count others reuse."""

import pandas as pd

from cara_eval.common.disclosure import protect_counts
from cara_eval.report.data import ReportData
from cara_eval.report.formatting import ALL_FORCES, ARM_LABELS, Md, count_label, number


def cases_by_arm(data: ReportData) -> pd.DataFrame:
    """Cases per force and arm (summed over years), protected with row and column totals."""
    sizes = data.table("cohort_sizes")
    counts = sizes.pivot_table(index="force", columns="arm", values="n_cases", aggfunc="sum", fill_value=0)
    counts = counts.reindex(columns=list(ARM_LABELS), fill_value=0).astype(float)
    counts["total"] = counts.sum(axis=1)
    counts.loc[ALL_FORCES] = counts.sum()
    return protect_counts(
        counts, ["cara", "comparison", "total"], data.threshold,
        row_totals={"total": ["cara", "comparison"]}, total_row=ALL_FORCES,
    )


def cases_table(data: ReportData) -> pd.DataFrame:
    published = cases_by_arm(data)
    published.index = [ALL_FORCES if f == ALL_FORCES else data.force_name(f) for f in published.index]
    published.columns = [count_label("CARA"), count_label("Comparison"), count_label("Total")]
    return published.rename_axis("Force").reset_index()


def _level_label(covariate: str, level) -> str:
    if pd.isna(level) or str(level) in ("", "mean"):
        return covariate.replace("_", " ")
    return f"{covariate.replace('_', ' ')}: {str(level).replace('_', ' ')}"


def case_mix_pooled(data: ReportData) -> pd.DataFrame:
    mix = data.table("case_mix")
    pooled = mix[mix["force"].astype(str).eq("all")]
    return pd.DataFrame(
        {
            "Characteristic": [_level_label(c, lv) for c, lv in zip(pooled["covariate"], pooled["level"])],
            "CARA": pooled["cara_mean"].map(number(".2f")).to_numpy(),
            "Comparison": pooled["comparison_mean"].map(number(".2f")).to_numpy(),
            "SMD": pooled["smd"].map(number(".2f")).to_numpy(),
        }
    )


def smd_threshold(data: ReportData) -> float:
    """|SMD| above which groups differ noticeably (config quality.smd_threshold; 0.1 is the usual rule)."""
    return float((data.config.get("quality") or {}).get("smd_threshold", 0.1))


def smd_note(data: ReportData) -> str:
    return (
        f"A standardised mean difference (SMD) above {smd_threshold(data):g} in absolute value (bold) marks a "
        "characteristic on which the groups differ noticeably; the model adjusts for the characteristics listed "
        "in the methods."
    )


def smd_matrix(data: ReportData) -> pd.DataFrame:
    """Standardised mean differences per characteristic (rows) and force (columns); large ones in bold."""
    mix = data.table("case_mix")
    mix = mix[~mix["force"].astype(str).eq("all")].copy()
    mix["row"] = [_level_label(c, lv) for c, lv in zip(mix["covariate"], mix["level"])]
    limit = smd_threshold(data)
    mix["shown"] = [("" if pd.isna(s) else (Md(f"**{s:.2f}**") if abs(s) > limit else f"{s:.2f}")) for s in mix["smd"]]
    wide = mix.pivot_table(index="row", columns="force", values="shown", aggfunc="first", sort=False)
    wide.columns = [data.force_name(f) for f in wide.columns]
    return wide.fillna("").rename_axis("Characteristic").reset_index()
