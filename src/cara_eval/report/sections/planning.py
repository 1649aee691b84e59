"""Precision planning (report/_planning.qmd): how many more months of data until each answer is conclusive."""

from io import BytesIO

import pandas as pd

from cara_eval.common.disclosure import protect_counts
from cara_eval.planning import months_to_conclusive_markdown, plot_assurance
from cara_eval.planning.precision import NATIONAL
from cara_eval.planning.text import DEFINITION, months_label
from cara_eval.report.data import ReportData
from cara_eval.report.formatting import ALL_FORCES, count_label, sure_percent

YEAR = 12


def _settings(data: ReportData) -> dict:
    return data.config["planning"]


def _label(data: ReportData, force: str) -> str:
    return f"{ALL_FORCES} (national)" if force == NATIONAL else data.force_name(force)


def definition_markdown(data: ReportData) -> str:
    """How "months until conclusive" is defined, with this run's target and grid."""
    settings = _settings(data)
    return DEFINITION.format(target=settings["assurance_target"], max_months=settings["max_months"])


def planning_markdown(data: ReportData) -> str:
    """The national answer, then which forces are conclusive now, likely within a year, later, or not in the grid."""
    settings = _settings(data)
    conclusive = data.table("planning_conclusive")
    forces = conclusive[conclusive["scope"] == "force"]
    months = forces["months_to_conclusive"]
    groups = {
        "conclusive now": forces["conclusive_now"],
        "likely within a year": ~forces["conclusive_now"] & (months <= YEAR),
        "likely later": ~forces["conclusive_now"] & (months > YEAR),
        f"unlikely within {settings['max_months']} months at current numbers": months.isna(),
    }
    listed = [f"{label}: {', '.join(data.force_name(f) for f in forces.loc[mask.fillna(False), 'force'])}"
              for label, mask in groups.items() if mask.fillna(False).any()]
    text = months_to_conclusive_markdown(conclusive, settings["assurance_target"])
    return (f"{text} Forces' own estimates (partially pooled): {'; '.join(listed)}. A force whose comparison cases "
            "have ended gains precision only from its CARA cases, so its interval narrows slowly.")


def planning_table(data: ReportData, force: str | None = None) -> pd.DataFrame:
    """Per force and nationally: CARA cases a year (protected), the interval now, expected width and assurance
    after the configured horizons, and months until conclusive. `force`: only that force's row and the national
    one (for its own report), with the counts protected as in the full table."""
    settings = _settings(data)
    precision = data.table("planning_precision")
    conclusive = data.table("planning_conclusive").set_index("force")
    horizons = settings["months"]
    order = [f for f in conclusive.index if f != NATIONAL] + [NATIONAL]
    per_year = precision[precision["months_added"] == YEAR].set_index("force")["cara_cases_added"].round()
    counts = pd.DataFrame({"cara": per_year.reindex(order).to_numpy()}, index=order)
    published = protect_counts(counts, ["cara"], data.threshold, total_row=NATIONAL)
    at = precision[precision["months_added"].isin(horizons)].pivot(index="force", columns="months_added")
    table = pd.DataFrame({
        "Scope": [_label(data, f) for f in order],
        count_label("CARA cases a year"): published["cara"].to_numpy(),
        "90% interval now": [f"{conclusive.loc[f, 'current_q05']:.1f} to {conclusive.loc[f, 'current_q95']:.1f}"
                             for f in order],
        f"Expected width after {' / '.join(map(str, horizons))} months": [
            " / ".join(f"{at.loc[f, ('expected_width_90', m)]:.1f}" for m in horizons) for f in order],
        f"Assurance after {' / '.join(map(str, horizons))} months": [
            " / ".join(sure_percent(at.loc[f, ("assurance", m)]) for m in horizons) for f in order],
        "Months until conclusive": [months_label(conclusive.loc[f]) for f in order],
    })
    return table if force is None else table[[f in (force, NATIONAL) for f in order]].reset_index(drop=True)


def planning_png(data: ReportData, force: str | None = None) -> bytes:
    """The planning stage's own figure, drawn from its table: every force (None) or one force's view."""
    precision = data.table("planning_precision")
    names = {f: data.force_name(f) for f in precision["force"].unique() if f != NATIONAL}
    buffer = BytesIO()
    plot_assurance(precision, _settings(data)["assurance_target"], force=force, names=names, path=buffer)
    return buffer.getvalue()
