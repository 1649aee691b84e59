"""What changed since the previous run (report/_changes.qmd): input checksums and headline estimates."""

import pandas as pd

from cara_eval.provenance.record import changed_inputs
from cara_eval.report.data import ReportData, _read_json
from cara_eval.report.formatting import markdown_table, number


def changes_markdown(data: ReportData) -> str:
    """What changed since the previous archived run: inputs by checksum and the headline estimates."""
    previous = data.manifest.get("previous") or {}
    if not previous.get("provenance"):
        return "This is the first archived run: there is nothing to compare with."
    before = _read_json("previous provenance", previous["provenance"])
    lines = [f"Compared with the previous run archived as `{previous['archived']}` (run date {before['run_date']})."]
    changes = changed_inputs(before, data.provenance)
    if changes:
        lines.append("\nInputs whose contents changed:\n")
        lines += [f"- {c['change']}: `{c['path']}` ({c['kind']})" for c in changes]
    else:
        lines.append("\nNo input file changed (same SHA-256 for every file).")
    if previous.get("estimands"):
        moves = _headline_moves(pd.read_csv(previous["estimands"]), data.table("estimands"))
        lines.append("\n" + markdown_table(moves) + "\n\n: Headline estimates, previous and this run. {#tbl-changes}")
    return "\n".join(lines)


def _headline_moves(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    keys = ["estimand", "scope", "level"]
    merged = after.merge(before, on=keys, how="left", suffixes=("", "_before"))
    merged = merged[merged["scope"].isin(["pooled", "new_force"])]
    return pd.DataFrame(
        {
            "Estimand": merged["estimand"].str.replace("_", " ") + " (" + merged["scope"].str.replace("_", " ") + ")",
            "Previous mean": merged["mean_before"].map(lambda v: "new" if pd.isna(v) else f"{v:.3g}"),
            "Current mean": merged["mean"].map(number(".3g")),
            "Change": (merged["mean"] - merged["mean_before"]).map(number("+.3g")),
        }
    )
