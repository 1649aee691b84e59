"""Data received (report/_data_received.qmd): rows read and where they went, completeness, follow-up."""

import pandas as pd

from cara_eval.common.disclosure import protect_counts, suppressed_label
from cara_eval.report.data import ReportData
from cara_eval.report.formatting import ALL_FORCES, ARM_LABELS, count_label, is_true, percent
from cara_eval.report.sections.cohorts import cases_by_arm


def accounting_table(data: ReportData) -> pd.DataFrame:
    """Rows read per force and where they went, with totals; reason columns protected in the same pass."""
    accounting = data.table("row_accounting").set_index("force")
    reason_columns = [c for c in accounting.columns if c.startswith(("ineligible:", "quarantined:"))]
    counts = accounting[["rows_read", "clean", "ineligible", "quarantined", *reason_columns]].astype(float)
    counts.loc[ALL_FORCES] = counts.sum()
    row_totals = {"rows_read": ["clean", "ineligible", "quarantined"]}
    for category in ("ineligible", "quarantined"):
        parts = [c for c in reason_columns if c.startswith(f"{category}:")]
        if parts:
            row_totals[category] = parts
    published = protect_counts(
        counts, list(counts.columns), data.threshold, row_totals=row_totals, total_row=ALL_FORCES
    )
    published.index = [ALL_FORCES if f == ALL_FORCES else data.force_name(f) for f in published.index]
    return published


def accounting_summary(data: ReportData) -> pd.DataFrame:
    published = accounting_table(data)[["rows_read", "clean", "ineligible", "quarantined"]]
    published.columns = [count_label(c.replace("_", " ").capitalize()) for c in published.columns]
    return published.rename_axis("Force").reset_index()


def reasons_table(data: ReportData) -> pd.DataFrame:
    """Counts by reason (rows) and force (columns), protected together with the accounting summary."""
    published = accounting_table(data)
    reason_columns = [c for c in published.columns if ":" in c]
    table = published[reason_columns].T
    table.index = [reason_label(c) for c in reason_columns]
    return table.rename_axis(count_label("Reason")).reset_index()


def reason_label(column: str) -> str:
    """A row-accounting reason column in words: "quarantined:impossible_date" -> "quarantined: impossible date"."""
    return column.replace(":", ": ").replace("_", " ")


def missing_text(share, structural) -> str:
    """Percent of cases missing a field, or "n/s" where the force does not supply it."""
    return "n/s" if is_true(structural) else percent(share)


def completeness_table(data: ReportData) -> pd.DataFrame:
    """Percent missing per field (rows) and force (columns); fields a force never records marked n/s."""
    table = data.table("completeness").copy()
    table["shown"] = [missing_text(share, structural) for share, structural in zip(table["share_missing"],
                                                                                    table["structural"])]
    wide = table.pivot(index="field", columns="force", values="shown")
    wide = wide.reindex(index=list(dict.fromkeys(table["field"])), columns=list(dict.fromkeys(table["force"])))
    wide.columns = [data.force_name(f) for f in wide.columns]
    return wide.rename_axis("Field").reset_index()


def followup_table(data: ReportData) -> pd.DataFrame:
    """Follow-up coverage per force and arm; hidden where that group's case count is hidden."""
    coverage = data.table("followup_coverage").copy()
    shown = cases_by_arm(data)
    hidden = [shown.loc[f, a] == suppressed_label(data.threshold) if f in shown.index else True
              for f, a in zip(coverage["force"], coverage["arm"])]
    coverage["full"] = [("suppressed" if h else percent(s)) for h, s in zip(hidden, coverage["share_full_followup"])]
    coverage["median"] = [("suppressed" if h else f"{m:.0f}") for h, m in zip(hidden, coverage["median_followup_days"])]
    return pd.DataFrame(
        {
            "Force": coverage["force"].map(data.force_name),
            "Arm": coverage["arm"].map(ARM_LABELS),
            "Full year of follow-up": coverage["full"],
            "Median follow-up (days)": coverage["median"],
        }
    )
