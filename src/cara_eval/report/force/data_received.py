"""The force's data received (report/force/_data_received.qmd): its rows and where they went, the completeness of
each field against the other forces, and what adding a field to the next extract would buy the analysis."""

import pandas as pd

from cara_eval.model.cells import CellSpec
from cara_eval.report.data import ReportData
from cara_eval.report.formatting import ALL_FORCES, count_label, is_true, percent
from cara_eval.report.sections.data_received import accounting_table, missing_text, reason_label

ACCOUNTING_ROWS = {"rows_read": "Rows read", "clean": "Clean (used)", "ineligible": "Not eligible for CARA",
                   "quarantined": "Set aside (quarantined)"}
# Fields that come with a later-offences table: a force that sends only a 12-month flag has neither.
DATED_REOFFENCE_FIELDS = {"reoffence_count": "the number of reoffences (secondary outcome)",
                          "harm": "the crime harm of reoffences (secondary outcome)"}
VICTIM_FIELDS = ("victim_contacted", "victim_consulted")


def _own_and_all(published: pd.DataFrame, data: ReportData, columns: list[str]) -> pd.DataFrame:
    """This force's and the all-forces row of a national protected table, turned to two columns."""
    name = data.force_name(data.force)
    shown = published.loc[[name, ALL_FORCES], columns].T
    shown.columns = [name, ALL_FORCES]
    return shown


def accounting_rows(data: ReportData) -> pd.DataFrame:
    """Rows read and where they went, beside all forces: the national report's protected counts."""
    shown = _own_and_all(accounting_table(data), data, list(ACCOUNTING_ROWS))
    shown.index = list(ACCOUNTING_ROWS.values())
    return shown.rename_axis(count_label("Rows")).reset_index()


def reasons_rows(data: ReportData) -> pd.DataFrame:
    """Rows not used by reason, beside all forces; reasons no force met are left out."""
    raw = data.table("row_accounting")
    reasons = [c for c in raw.columns if ":" in c and raw[c].sum() > 0]
    shown = _own_and_all(accounting_table(data), data, reasons)
    shown.index = [reason_label(c) for c in reasons]
    return shown.rename_axis(count_label("Reason")).reset_index()


def _fields_with_gaps(table: pd.DataFrame) -> list[str]:
    """Fields some force leaves empty in part or never supplies (in the completeness table's order)."""
    gaps = table[(table["share_missing"] > 0) | table["structural"].map(is_true)]
    return [f for f in dict.fromkeys(table["field"]) if f in set(gaps["field"])]


def completeness_rows(data: ReportData) -> pd.DataFrame:
    """For each field with a gap in any force: percent missing here, the other forces' median, how many record it."""
    table = data.table("completeness")
    own = table[table["force"].eq(data.force)].set_index("field")
    others = table[~table["force"].eq(data.force)]
    rows = []
    for field in [f for f in _fields_with_gaps(table) if f in own.index]:
        other = others[others["field"].eq(field)]
        recording = other[~other["structural"].map(is_true)]
        rows.append({
            "Field": field,
            "This force: missing": missing_text(own.loc[field, "share_missing"], own.loc[field, "structural"]),
            "Other forces: median missing": percent(recording["share_missing"].median()) if len(recording) else "n/s",
            "Other forces recording it": f"{len(recording)} of {len(other)}",
        })
    return pd.DataFrame(rows, columns=["Field", "This force: missing", "Other forces: median missing",
                                       "Other forces recording it"])


def completeness_note(data: ReportData) -> str:
    """Which fields the completeness table leaves out: those every force records in full."""
    table = data.table("completeness")
    complete = [f for f in dict.fromkeys(table["field"]) if f not in _fields_with_gaps(table)]
    if not complete:
        return "Every field has a gap in some force."
    return (f"Fields every force records in full are not listed ({len(complete)}: "
            f"{', '.join(f.replace('_', ' ') for f in complete)}).")


def field_uses(data: ReportData) -> dict[str, list[str]]:
    """What recording each field buys the analysis, from the model's term decisions (terms.csv) and the config.

    Covariates: the design columns `CellSpec` builds from each field; the relationship moderator and the
    interval-shaped hazard: the terms `identify_terms` builds from together_at_index and dated reoffences; imputed
    fields: config `imputation.fields`. A term the model left out says why.
    """
    terms = data.table("terms")
    decisions = dict(zip(terms["term"], zip(terms["included"].map(is_true), terms["reason"])))

    def status(term_names: list[str]) -> str:
        included = [t for t in term_names if decisions.get(t, (False, ""))[0]]
        if included:
            return ""
        reasons = sorted({decisions[t][1] for t in term_names if t in decisions})
        return f" (left out of the model for now: {'; '.join(reasons)})" if reasons else ""

    uses: dict[str, list[str]] = {}
    spec = CellSpec.from_config(data.config["model"]["cells"])
    columns_of: dict[str, list[str]] = {}
    for field, column in zip(spec.covariate_fields, spec.covariates):
        columns_of.setdefault(field, []).append(column)
    for field, columns in columns_of.items():
        names = ", ".join(c.replace("_", " ") for c in columns)
        uses.setdefault(field, []).append(
            f"adjustment of the effect for case mix ({names}){status([f'covariate:{c}' for c in columns])}")
    uses.setdefault("together_at_index", []).append(
        f"the effect by relationship status (together or separated){status(['together_log_hr_shift'])}")
    for field, outcome in DATED_REOFFENCE_FIELDS.items():
        uses.setdefault(field, []).append(
            f"dated reoffences: the risk's shape over the year and time to first reoffence{status(['interval_shape'])}")
        uses[field].append(outcome)
    for field in data.config["imputation"]["fields"]:
        uses.setdefault(field, []).append("fewer values imputed from the other forces' cases")
    for field in VICTIM_FIELDS:
        uses.setdefault(field, []).append("this force's victim contact and consultation rates (never imputed)")
    return uses


def extract_advice(data: ReportData) -> pd.DataFrame:
    """Fields to add to (or fill in) the next extract and what each would buy: never supplied first, then fields
    missing above the imputation's warning share (config imputation.warn_share_missing)."""
    table = data.table("completeness")
    own = table[table["force"].eq(data.force)].copy()
    own["structural"] = own["structural"].map(is_true)
    limit = float(data.config["imputation"]["warn_share_missing"])
    gaps = own[own["structural"] | (own["share_missing"] > limit)].sort_values("structural", ascending=False,
                                                                                kind="stable")
    uses = field_uses(data)
    gaps = gaps[gaps["field"].isin(uses)]
    return pd.DataFrame({
        "Field": gaps["field"].to_numpy(),
        "In this extract": ["not supplied" if s else f"{percent(m)} missing"
                            for s, m in zip(gaps["structural"], gaps["share_missing"])],
        "What recording it would add": ["; ".join(uses[f]) for f in gaps["field"]],
    })
