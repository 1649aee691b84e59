"""Methods (report/_methods.qmd): design, outcome and estimand, and the config sections printed as tables."""

import pandas as pd

from cara_eval.report.data import ReportData


def _flatten(section, prefix="") -> list[tuple[str, str]]:
    if isinstance(section, dict):
        rows = []
        for key, value in section.items():
            rows += _flatten(value, f"{prefix}.{key}" if prefix else str(key))
        return rows
    if isinstance(section, list):
        return [(prefix, ", ".join(map(str, section)))]
    return [(prefix, str(section))]


def config_table(data: ReportData, section: str, leave_out: tuple[str, ...] = ()) -> pd.DataFrame:
    """Every setting of one config section as (setting, value): the methods are the config, not a retelling."""
    shown = {k: v for k, v in (data.config.get(section) or {}).items() if k not in leave_out}
    if not shown:  # a header with no rows reads as a rendering fault
        return pd.DataFrame({"Setting": [section], "Value": ["not set in this run's configuration"]})
    return pd.DataFrame(_flatten(shown), columns=["Setting", "Value"])


def priors_table(data: ReportData) -> pd.DataFrame:
    """One row per prior of the model config, as a distribution with its parameters."""
    priors = (data.config.get("model") or {}).get("priors") or {}
    rows = []
    for name, spec in priors.items():
        parameters = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "dist")
        distribution = spec.get("dist", "").replace("_", " ")
        rows.append({"Parameter": name.replace("_", " "), "Prior": f"{distribution}({parameters})"})
    return pd.DataFrame(rows, columns=["Parameter", "Prior"])


def terms_table(data: ReportData) -> pd.DataFrame:
    """The model terms the data could not identify and why (results/model/<outcome>/terms.csv)."""
    terms = data.table("terms")
    dropped = terms[~terms["included"].astype(bool)]
    return pd.DataFrame({"Term left out": dropped["term"].str.replace("_", " "), "Why": dropped["reason"]})


def terms_markdown(data: ReportData) -> str:
    """One sentence on the terms: all identified, or how many were left out (listed in the table below)."""
    terms = data.table("terms")
    forces = terms[terms["term"].str.startswith("force:")]
    n_in, n_out = int(forces["included"].sum()), int((~forces["included"].astype(bool)).sum())
    left_out = int((~terms["included"].astype(bool)).sum())
    text = f"{n_in} force(s) enter the model" + (f" ({n_out} left out: see the table)" if n_out else "") + ". "
    if not left_out:
        return text + "The data identify every term of the model."
    return text + (f"{left_out} term(s) cannot be identified from these data and are left out of the model (not "
                   "left to their priors): a term left out is zero (a covariate, the together shift, the trend, "
                   "a force's slope, the interval shape: constant hazard over follow-up) or, for a between-force "
                   "or trend-step SD, fixed at its prior's scale.")


def design_table(data: ReportData) -> pd.DataFrame:
    """Each force's comparison design from its mapping file."""
    rows = []
    for force, info in sorted(data.manifest.get("forces", {}).items()):
        design = info.get("design") or {}
        rows.append(
            {
                "Force": data.force_name(force),
                "CARA start": str(design.get("cara_start", "")),
                "Extract date": str(design.get("extract_date", "")),
                "Comparison group": str(design.get("comparison", "")),
            }
        )
    return pd.DataFrame(rows)


def outcome_markdown(data: ReportData) -> str:
    """The primary outcome and the estimand, in the words of the config."""
    days = data.config.get("outcomes", {}).get("followup_days")
    estimand = (data.config.get("model") or {}).get("estimand", "not set in this run's configuration")
    return (
        f"Primary outcome: `{data.outcome}`, any domestic-abuse reoffence within {days} days of the index offence, "
        "counting only the follow-up each case actually has (cases with a shorter extract are censored, not "
        f"counted as non-reoffenders).\n\nEstimand: {estimand}"
    )
