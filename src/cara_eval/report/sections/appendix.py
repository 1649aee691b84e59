"""Appendix (report/_appendix.qmd): convergence diagnostics, data specification and reproducibility."""

import pandas as pd
import yaml

from cara_eval.report.data import ReportData
from cara_eval.report.formatting import Md, gate_text, is_true, number


def diagnostics_table(data: ReportData) -> pd.DataFrame:
    """Worst R-hat, smallest ESS and divergences per fit; failed gates in bold."""
    gates = data.gates
    per_fit = gates.groupby("dataset", sort=True).agg(
        r_hat=("r_hat", "max"), ess_bulk=("ess_bulk", "min"), ess_tail=("ess_tail", "min"),
        divergences=("divergences", "max"), passed=("passed", lambda s: s.map(is_true).all()),
    )
    return pd.DataFrame(
        {
            "Fit": per_fit.index,
            "Max R-hat": per_fit["r_hat"].map(number(".4f")).to_numpy(),
            "Min bulk ESS": per_fit["ess_bulk"].map(number(".0f")).to_numpy(),
            "Min tail ESS": per_fit["ess_tail"].map(number(".0f")).to_numpy(),
            "Divergences": per_fit["divergences"].map(number(".0f")).to_numpy(),
            "Gate": per_fit["passed"].map(gate_text).to_numpy(),
        }
    )


def spec_table(data: ReportData) -> pd.DataFrame:
    spec = data.table("data_specification")
    return pd.DataFrame(
        {
            "Field": spec["field"],
            "Type": spec["dtype"],
            "Allowed values": spec["allowed_values"].fillna("").astype(str).str.replace("|", ", ", regex=False),
            "Meaning": spec["meaning"],
            "Forces supplying": spec["forces_supplying"].fillna("").astype(str),
        }
    )


def reproducibility_markdown(data: ReportData) -> str:
    record = data.provenance
    git = record.get("git", {})
    renderer = data.manifest["renderer"]
    dirty = {True: " (with uncommitted changes)", False: "", None: ""}[git.get("dirty")]
    return "\n".join(
        [
            f"- Run date: {record['run_date']}; report rendered {data.manifest['rendered_at']}.",
            f"- Git commit: `{git.get('commit') or 'not a git checkout'}`{dirty}.",
            f"- Renderer: {renderer['name']} ({', '.join(f'{k} {v}' for k, v in renderer['versions'].items())}).",
        ]
    )


def versions_table(data: ReportData) -> pd.DataFrame:
    return pd.DataFrame(sorted(data.provenance["versions"].items()), columns=["Package", "Version"])


def inputs_table(data: ReportData) -> pd.DataFrame:
    inputs = pd.DataFrame(data.provenance["inputs"])
    checksums = inputs["sha256"].map(lambda sha: Md(f"`{sha}`"))
    return pd.DataFrame({"File": inputs["path"], "Kind": inputs["kind"], "SHA-256": checksums})


def config_yaml(data: ReportData) -> str:
    return "```yaml\n" + yaml.safe_dump(data.provenance["config"], sort_keys=False).strip() + "\n```"
