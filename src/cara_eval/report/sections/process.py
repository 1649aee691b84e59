"""Victim-centred process measures (report/_process.qmd): recorded contact and consultation, never imputed."""

import pandas as pd

from cara_eval.common.disclosure import NOT_RECORDED, protect_counts
from cara_eval.report.data import ReportData
from cara_eval.report.formatting import count_label, percent
from cara_eval.report.sections.cohorts import cases_by_arm


def process_table(data: ReportData) -> pd.DataFrame:
    """Observed victim contact and consultation among CARA cases; never imputed, small groups suppressed."""
    measures = data.table("process_measures").set_index("force")
    shown_cara = cases_by_arm(data)["cara"]
    counts = measures[["n_recorded"]].astype(float)
    shares = measures[["victim_contacted_share", "victim_consulted_share"]].apply(
        lambda column: pd.to_numeric(column, errors="coerce")
    )
    for column in shares:
        not_recorded = pd.to_numeric(measures[column], errors="coerce").isna()
        shares[column] = shares[column].map(percent).astype(object).where(~not_recorded, NOT_RECORDED)
    published = protect_counts(
        pd.concat([counts, shares], axis=1), ["n_recorded"], data.threshold,
        derived={"victim_contacted_share": "n_recorded", "victim_consulted_share": "n_recorded"},
    )
    return pd.DataFrame(
        {
            "Force": [data.force_name(f) for f in published.index],
            count_label("CARA cases"): [shown_cara.get(f, NOT_RECORDED) for f in published.index],
            count_label("With contact recorded"): published["n_recorded"].to_numpy(),
            "Victim contacted": published["victim_contacted_share"].to_numpy(),
            "Victim consulted": published["victim_consulted_share"].to_numpy(),
        }
    )
