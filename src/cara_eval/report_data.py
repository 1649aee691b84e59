"""Everything the report shows, computed from the result tables and config values it is given.

The .qmd partials stay thin: each code cell calls one function here and displays what it returns (markdown text,
a publishable table, a figure). Every count of people or cases passes through `cara_eval.disclosure` on the way
out; count columns carry the "(n)" mark so the rendered report can be scanned for leaks. Inputs arrive through
a manifest (`_inputs.json`, written by `cara_eval.render`) naming each table's path.
"""

import json
import re
from io import BytesIO
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from matplotlib.figure import Figure

from cara_eval.disclosure import COUNT_MARK, NOT_RECORDED, protect_counts, suppressed_label
from cara_eval.provenance import changed_inputs

# Columns each input must have (docs/contracts.md, "Result files the report reads").
CONTRACT_COLUMNS = {
    "row_accounting": ["force", "rows_read", "clean", "ineligible", "quarantined"],
    "completeness": ["force", "field", "share_missing", "structural"],
    "followup_coverage": ["force", "arm", "n_cases", "share_full_followup", "median_followup_days"],
    "cohort_sizes": ["force", "period", "arm", "n_cases"],
    "case_mix": ["force", "covariate", "level", "cara_mean", "comparison_mean", "smd"],
    "process_measures": ["force", "n_cara", "victim_contacted_share", "victim_consulted_share", "n_recorded"],
    "data_specification": ["field", "dtype", "allowed_values", "meaning", "forces_supplying"],
    "estimands": ["estimand", "scope", "level", "mean", "sd", "q05", "q50", "q95", "prob_reduction", "gate_passed"],
    "forest": ["force", "method", "mean", "q05", "q95", "n_cases"],
    # Secondary outcomes (cara_eval.outcome_models): present only for the outcomes switched on in config.
    **{f"outcome_{name}_estimands": ["estimand", "scope", "level", "mean", "sd", "q05", "q50", "q95", "prob_reduction",
                                     "gate_passed"] for name in ("reoffence_count", "harm")},
    "gate": ["dataset", "parameter", "r_hat", "ess_bulk", "ess_tail", "divergences", "passed"],
    "crosscheck_estimates": ["method", "scope", "force", "estimand", "estimate", "ci_low", "ci_high", "p_value", "note"],
    "crosscheck_balance": ["force", "covariate", "level", "cara_mean", "comparison_mean_before",
                           "comparison_mean_after", "smd_before", "smd_after"],
    "costbenefit_summary": ["scope", "force", "n_cara", "rd_per100_mean", "rd_per100_q05", "rd_per100_q95",
                            "nmb_per_participant_mean", "nmb_per_participant_q05", "nmb_per_participant_q95",
                            "nmb_total_mean", "nmb_total_q05", "nmb_total_q95", "prob_nmb_positive", "bcr_median",
                            "bcr_q05", "bcr_q95", "cost_per_reoffence_avoided", "cost_per_reoffence_avoided_q05",
                            "cost_per_reoffence_avoided_q95", "cost_per_reoffence_avoided_reason"],
    "costbenefit_ceac": ["scope", "force", "wtp_per_reoffence_avoided", "prob_cost_effective"],
    "costbenefit_unit_costs": ["item", "value_gbp", "source", "illustrative"],
    "calibration_coverage": ["method", "scope", "trend_shape", "n_replicates", "n_estimates", "coverage_50",
                             "coverage_90", "mean_bias", "rmse", "mean_width_90", "seconds_per_replicate"],
    "sensitivity_summary": ["analysis", "variant", "estimand", "mean", "q05", "q95", "prob_reduction", "gate_passed",
                            "note"],
    "sensitivity_tipping_point": ["criterion", "threshold", "side", "tipping_delta", "baseline_value", "grid",
                                  "max_shift_rd_mean", "note"],
}
ALL_FORCES = "All forces"
HEADLINE = "risk_difference_per100"
ARM_LABELS = {"cara": "CARA", "comparison": "Comparison"}


def show(table: pd.DataFrame) -> None:
    """Display a table in the report (a markdown output, which Quarto and the fallback both pass through)."""
    from IPython.display import Markdown, display

    display(Markdown(markdown_table(table)))


def show_figure(figure: Figure) -> None:
    """Display a figure as PNG bytes: independent of the kernel's matplotlib backend, byte-stable across runs."""
    from IPython.display import Image, display

    buffer = BytesIO()
    figure.savefig(buffer, format="png", dpi=figure.dpi, bbox_inches="tight", metadata={"Software": None})
    display(Image(buffer.getvalue()))


def show_image(png: bytes) -> None:
    """Display PNG bytes made by a stage's own plotting function (one figure code path for results and report)."""
    from IPython.display import Image, display

    display(Image(png))


def show_text(markdown: str) -> None:
    from IPython.display import Markdown, display

    display(Markdown(markdown))


def count_label(text: str) -> str:
    """Header of a published count column: the "(n)" mark is what the disclosure scan looks for."""
    return f"{text} {COUNT_MARK}"


class Md(str):
    """Text that is meant as markdown (bold, code) in a table cell; every other cell is escaped."""


MARKDOWN_SPECIALS = re.compile(r"([\\`*_\[\]^~<>$@|#])")


def escape_markdown(text: str) -> str:
    """Data shown literally: "^[a-z]+$" or "a_b" must not turn into superscript, links or emphasis."""
    return text if isinstance(text, Md) else MARKDOWN_SPECIALS.sub(r"\\\1", str(text))


def markdown_table(table: pd.DataFrame) -> str:
    """A pipe table (renders the same through Quarto and through pandoc to HTML and Typst).

    Cells are printed exactly as formatted here: no re-parsing of "1.002" or "<10" as numbers, data escaped.
    """
    escaped = table.map(escape_markdown)
    escaped.columns = [escape_markdown(c) for c in table.columns]
    return escaped.to_markdown(index=False, disable_numparse=True)


def number(spec: str):
    """A formatter for one column: the value in `spec` format, or empty where it is missing."""
    return lambda value: "" if pd.isna(value) else format(value, spec)


def percent(share) -> str:
    """A share as a whole percentage; text such as "not recorded" or "suppressed" passes through."""
    if isinstance(share, str) or pd.isna(share):
        return share if isinstance(share, str) else ""
    return f"{100 * share:.0f}%"


def sure_percent(probability: float) -> str:
    """A posterior probability as "P%", never claiming certainty a finite sample cannot give."""
    p = 100 * probability
    if p >= 99.5:
        return ">99%"
    if p < 0.5:
        return "<1%"
    return f"{p:.0f}%"


def per100(value: float) -> str:
    """A risk difference per 100 in words: "about 4 fewer" / "about 0.4 more"."""
    size = abs(value)
    amount = f"{size:.0f}" if size >= 1 else f"{size:.1f}"
    if amount in ("0", "0.0"):
        return "about the same number"
    return f"about {amount} {'fewer' if value < 0 else 'more'}"


def per100_interval(low: float, high: float) -> str:
    """A 90% interval of a risk difference per 100 in words."""
    if high < 0:
        return f"between {-high:.0f} and {-low:.0f} fewer"
    if low > 0:
        return f"between {low:.0f} and {high:.0f} more"
    return f"from {-low:.0f} fewer to {high:.0f} more"


@dataclass
class ReportData:
    """The report's inputs: the manifest and the tables it names, read once and checked against the contract."""

    manifest: dict
    _tables: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path = "_inputs.json") -> "ReportData":
        return cls(json.loads(Path(path).read_text()))

    def table(self, name: str) -> pd.DataFrame:
        if name not in self._tables:
            self._tables[name] = _read_checked(name, self.manifest["tables"].get(name))
        return self._tables[name]

    @property
    def threshold(self) -> int:
        return int(self.manifest["report"]["disclosure_threshold"])

    @property
    def config(self) -> dict:
        return self.manifest["config"]

    @property
    def outcome(self) -> str:
        return self.manifest["report"]["primary_outcome"]

    def force_name(self, force: str) -> str:
        """A force's display name from its mapping file, else its key in words."""
        info = self.manifest.get("forces", {}).get(force) or {}
        return info.get("display_name") or str(force).replace("_", " ").title()

    @cached_property
    def gates(self) -> pd.DataFrame:
        frames = [_read_checked("gate", path) for path in self.manifest.get("gates", [])]
        if not frames:
            raise FileNotFoundError("Report input 'gate': no gate.csv files were listed in the manifest.")
        return pd.concat(frames, ignore_index=True)

    @cached_property
    def provenance(self) -> dict:
        return _read_json("provenance", self.manifest["provenance"])

    def estimand(self, estimand: str, scope: str, level: str = "") -> pd.Series:
        """One row of the estimands table; a clear error naming what the model stage must write."""
        table = self.table("estimands")
        levels = table["level"].fillna("").astype(str)
        rows = table[table["estimand"].eq(estimand) & table["scope"].eq(scope) & levels.eq(level)]
        if rows.empty:
            raise KeyError(
                f"estimands.csv has no row estimand={estimand!r}, scope={scope!r}, level={level!r} "
                f"({self.manifest['tables']['estimands']}); see docs/contracts.md 'Values the report reads'."
            )
        return rows.iloc[0]


def _read_checked(name: str, path: str | None) -> pd.DataFrame:
    if path is None or not Path(path).is_file():
        raise FileNotFoundError(
            f"Report input '{name}' ({path or 'not listed'}) is missing: the stage that writes it has not run. "
            "See docs/contracts.md 'Result files the report reads'."
        )
    table = pd.read_csv(path, keep_default_na=True)
    missing = [c for c in CONTRACT_COLUMNS[name] if c not in table.columns]
    if missing:
        raise ValueError(f"Report input '{name}' ({path}) lacks columns {missing} required by docs/contracts.md.")
    return table


def _read_json(name: str, path: str | None) -> dict:
    if path is None or not Path(path).is_file():
        raise FileNotFoundError(f"Report input '{name}' ({path or 'not listed'}) is missing.")
    return json.loads(Path(path).read_text())


# 1. Summary ----------------------------------------------------------------------------------------------


def summary_markdown(data: ReportData) -> str:
    """The commissioners' headline: the pooled effect in natural frequencies and how sure we are."""
    pooled = data.estimand(HEADLINE, "pooled")
    n_forces = data.table("row_accounting")["force"].nunique()
    return (
        f"**Out of 100 people given CARA, {per100(pooled['mean'])} reoffend within a year than would have "
        f"without it** ({per100_interval(pooled['q05'], pooled['q95'])} per 100; 90% credible interval). "
        f"**We are {sure_percent(pooled['prob_reduction'])} sure that CARA reduces reoffending**"
        f"{_tenth_clause(data)}. "
        f"This is the average over the {n_forces} forces that sent data, each force's estimate informing "
        "the others." + ("" if _is_true(pooled["gate_passed"]) else PROVISIONAL)
    )


def _tenth_clause(data: ReportData) -> str:
    """", and P% sure by at least a tenth" when the model reports Pr(RR <= 0.9) (row pr_reduction_ge_10pct)."""
    table = data.table("estimands")
    rows = table[table["estimand"].eq("pr_reduction_ge_10pct") & table["scope"].eq("pooled")]
    return f", and {sure_percent(rows.iloc[0]['mean'])} sure by at least a tenth" if len(rows) else ""


PROVISIONAL = (
    " **Provisional: these numbers come from model fits that failed the convergence gate** (see the appendix)."
)


def new_force_markdown(data: ReportData) -> str:
    """What a force that has not started can expect: the prediction for a new force from the hierarchy."""
    new = data.estimand(HEADLINE, "new_force")
    return (
        f"A force that starts CARA can expect {per100(new['mean'])} reoffenders per 100 people cautioned "
        f"({per100_interval(new['q05'], new['q95'])}; 90% prediction interval). The chance that CARA reduces "
        f"reoffending in such a force is {sure_percent(new['prob_reduction'])}."
    )


def time_to_first_markdown(data: ReportData) -> str:
    """Time to first reoffence, from the same hazard fit: hazard ratio and reoffence-free days gained."""
    ratio = data.estimand("hazard_ratio_att", "pooled")
    days = data.estimand("rmst_difference_days", "pooled")
    return (
        f"Among people given CARA, the rate of a first domestic-abuse reoffence was {ratio['mean']:.2f} times "
        f"the rate expected without CARA (90% interval {ratio['q05']:.2f} to {ratio['q95']:.2f}; "
        f"Pr(lower rate) {sure_percent(ratio['prob_reduction'])}). Over the first year that is "
        f"{days['mean']:+.1f} reoffence-free days per person on average (90% interval {days['q05']:+.1f} to "
        f"{days['q95']:+.1f}): the same model, read as time to the first reoffence rather than whether one happens."
    )


def _forces(n: int) -> str:
    return f"{n} force" if n == 1 else f"{n} forces"


def caveats(data: ReportData) -> list[str]:
    """The main caveats, each triggered by what the data and the fits actually show."""
    notes = []
    designs = data.manifest.get("forces", {})
    historical = [f for f, info in designs.items() if (info.get("design") or {}).get("comparison") == "historical"]
    if historical:
        notes.append(
            f"{len(historical)} of {_forces(len(designs))} compare CARA with offenders from before CARA began "
            "(historical controls), so their estimates lean on the model's adjustment for time trends."
        )
    completeness = data.table("completeness")
    structural = completeness[completeness["structural"].map(_is_true)]
    imputed = structural[structural["field"].isin((data.config.get("imputation") or {}).get("fields", []))]
    if not imputed.empty:
        notes.append(
            f"Some fields ({', '.join(sorted(imputed['field'].str.replace('_', ' ').unique()))}) are never recorded "
            f"in {_forces(imputed['force'].nunique())}; there they are imputed from the forces that record them."
        )
    process = structural[structural["field"].isin(["victim_contacted", "victim_consulted"])]
    if not process.empty:
        notes.append(f"Victim contact or consultation is not recorded in {_forces(process['force'].nunique())}.")
    coverage = data.table("followup_coverage")
    short = coverage.groupby("force")["share_full_followup"].min()
    short = short[short < 0.95]
    if not short.empty:
        notes.append(
            f"Follow-up is shorter than a year for some cases in {_forces(len(short))} "
            "(the extract was taken early); the model counts only the time observed."
        )
    failed = data.gates[~data.gates["passed"].map(_is_true)]["dataset"].unique()
    if len(failed):
        notes.append(f"Fits that failed the convergence gate: {', '.join(map(str, failed))}; see the appendix.")
    label = suppressed_label(data.threshold)
    notes.append(
        f"Counts of fewer than {data.threshold} people are shown as \"{label}\", and some larger counts are hidden "
        "too where a total would give a small one away."
    )
    return notes


def caveats_markdown(data: ReportData) -> str:
    return "\n".join(f"- {note}" for note in caveats(data))


# 2. Data received -----------------------------------------------------------------------------------------


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
    table.index = [c.replace(":", ": ").replace("_", " ") for c in reason_columns]
    return table.rename_axis(count_label("Reason")).reset_index()


def completeness_table(data: ReportData) -> pd.DataFrame:
    """Percent missing per field (rows) and force (columns); fields a force never records marked n/s."""
    table = data.table("completeness").copy()
    table["shown"] = [
        "n/s" if _is_true(structural) else percent(share)
        for share, structural in zip(table["share_missing"], table["structural"])
    ]
    wide = table.pivot(index="field", columns="force", values="shown")
    wide = wide.reindex(index=list(dict.fromkeys(table["field"])), columns=list(dict.fromkeys(table["force"])))
    wide.columns = [data.force_name(f) for f in wide.columns]
    return wide.rename_axis("Field").reset_index()


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


# 3. Cohorts -----------------------------------------------------------------------------------------------


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


# 4. Methods -----------------------------------------------------------------------------------------------


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
    if section not in data.config:
        return pd.DataFrame({"Setting": [section], "Value": ["not set in this run's configuration"]})
    shown = {k: v for k, v in data.config[section].items() if k not in leave_out}
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


# 5. Results -----------------------------------------------------------------------------------------------

FOREST_STYLE = {
    "no_pooling": ("o", "white", "This force alone"),
    "partial_pooling": ("o", "black", "Partial pooling"),
    "pooled": ("D", "black", "Pooled average"),
    "new_force": ("D", "white", "A new force (prediction)"),
}


def forest_figure(data: ReportData) -> Figure:
    """Per-force effects alone and partially pooled, the pooled average and the new-force prediction."""
    forest = data.table("forest")
    per_force = forest[forest["method"].isin(["no_pooling", "partial_pooling"])]
    rows = [(data.force_name(f), f, ("no_pooling", "partial_pooling")) for f in dict.fromkeys(per_force["force"])]
    rows += [("Pooled average", None, ("pooled",)), ("New force", None, ("new_force",))]
    # Capped height keeps 43 forces on one A4 page; labels shrink instead.
    fig = Figure(figsize=(7.0, min(0.42 * len(rows) + 1.3, 9.0)), dpi=150)
    ax = fig.add_subplot()
    ax.tick_params(axis="y", labelsize=min(10.0, 200.0 / len(rows)))
    seen = set()
    for position, (label, force, methods) in enumerate(rows):
        y = len(rows) - 1 - position
        for offset, method in zip((0.15, -0.15) if len(methods) == 2 else (0.0,), methods):
            selected = forest[forest["method"].eq(method)]
            if force is not None:
                selected = selected[selected["force"].eq(force)]
            if selected.empty:
                continue
            row = selected.iloc[0]
            marker, face, legend = FOREST_STYLE[method]
            ax.plot([row["q05"], row["q95"]], [y + offset] * 2, color="black", lw=1.2)
            ax.plot(row["mean"], y + offset, marker=marker, mfc=face, mec="black", color="black", ms=6,
                    label=None if method in seen else legend, ls="none")
            seen.add(method)
    ax.axvline(0, color="grey", lw=0.8, ls="--")
    ax.axhline(1.5, color="grey", lw=0.5)
    ax.set_yticks(range(len(rows)), [label for label, _, _ in reversed(rows)])
    ax.set_xlabel("Reoffenders per 100 people given CARA, change (negative = fewer; 90% interval)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def estimand_table(data: ReportData) -> pd.DataFrame:
    """Every pooled and new-force estimand, with the probability of a reduction and the gate status."""
    table = data.table("estimands")
    shown = table[table["scope"].isin(["pooled", "new_force"])]
    return pd.DataFrame(
        {
            "Estimand": shown["estimand"].str.replace("_", " "),
            "Scope": shown["scope"].str.replace("_", " "),
            "Mean": shown["mean"].map(number(".3g")),
            "90% interval": [f"{lo:.3g} to {hi:.3g}" for lo, hi in zip(shown["q05"], shown["q95"])],
            "Pr(reduction)": shown["prob_reduction"].map(lambda p: "" if pd.isna(p) else sure_percent(p)),
            "Gate": shown["gate_passed"].map(_gate_text),
        }
    )


def _is_true(value) -> bool:
    """A boolean read back from CSV (True / "True" / 1)."""
    return str(value).lower() in ("true", "1")


def _gate_text(passed) -> str:
    return "passed" if _is_true(passed) else Md("**FAILED**")


def scope_table(data: ReportData, scope: str, label: str) -> pd.DataFrame:
    """Risk difference per 100 by force or by relationship status."""
    table = data.table("estimands")
    shown = table[table["estimand"].eq(HEADLINE) & table["scope"].eq(scope)]
    names = shown["level"].map(data.force_name) if scope == "force" else shown["level"].str.replace("_", " ")
    return pd.DataFrame(
        {
            label: names.to_numpy(),
            "Per 100 (mean)": shown["mean"].map(number("+.1f")).to_numpy(),
            "90% interval": [f"{lo:+.1f} to {hi:+.1f}" for lo, hi in zip(shown["q05"], shown["q95"])],
            "Pr(reduction)": shown["prob_reduction"].map(sure_percent).to_numpy(),
            "Gate": shown["gate_passed"].map(_gate_text).to_numpy(),
        }
    )


# 6. Process measures --------------------------------------------------------------------------------------


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


# 7. Appendix ----------------------------------------------------------------------------------------------


def diagnostics_table(data: ReportData) -> pd.DataFrame:
    """Worst R-hat, smallest ESS and divergences per fit; failed gates in bold."""
    gates = data.gates
    per_fit = gates.groupby("dataset", sort=True).agg(
        r_hat=("r_hat", "max"), ess_bulk=("ess_bulk", "min"), ess_tail=("ess_tail", "min"),
        divergences=("divergences", "max"), passed=("passed", lambda s: s.map(_is_true).all()),
    )
    return pd.DataFrame(
        {
            "Fit": per_fit.index,
            "Max R-hat": per_fit["r_hat"].map(number(".3f")).to_numpy(),
            "Min bulk ESS": per_fit["ess_bulk"].map(number(".0f")).to_numpy(),
            "Min tail ESS": per_fit["ess_tail"].map(number(".0f")).to_numpy(),
            "Divergences": per_fit["divergences"].map(number(".0f")).to_numpy(),
            "Gate": per_fit["passed"].map(_gate_text).to_numpy(),
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


# 8. Cross-checks ------------------------------------------------------------------------------------------

CROSSCHECK_METHODS = {
    "bayes_hierarchical": ("Bayesian hierarchical model (partial pooling)", "posterior (credible interval)"),
    "logit_glm": ("Logistic GLM, force fixed effects", "cluster-robust (CR1 by force, t(G-1))"),
    "lpm_cluster_robust": ("Linear probability model, force fixed effects", "cluster-robust (CR1 by force, t(G-1))"),
    "lpm_wild_cluster_bootstrap": ("Linear probability model, force fixed effects",
                                   "wild cluster bootstrap-t (test inversion)"),
    "poisson_glm": ("Poisson GLM of reoffence counts", "cluster-robust (CR1 by force)"),
    "propensity_att": ("Propensity-weighted comparison (ATT)", "percentile bootstrap"),
}
RATIO_ESTIMANDS = ("odds_ratio", "rate_ratio", "risk_ratio")


def _effect(value: float, estimand: str) -> str:
    """Ratios to two decimals, differences per 100 signed to one, so one estimand reads alike in every table."""
    if pd.isna(value):
        return ""
    if estimand in RATIO_ESTIMANDS:
        return f"{value:.2f}"
    return f"{round(value, 1) + 0.0:+.1f}"  # + 0.0: no "-0.0"


def _interval(low: float, high: float, estimand: str) -> str:
    if pd.isna(low) or pd.isna(high):
        return ""
    return f"{_effect(low, estimand)} to {_effect(high, estimand)}"


def _p_value(p: float) -> str:
    if pd.isna(p):
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def crosscheck_rows(data: ReportData, method: str, scope: str, estimand: str) -> pd.DataFrame:
    """Rows of the cross-check estimates table (docs/contracts.md); force rows sorted, force empty for pooled."""
    table = data.table("crosscheck_estimates")
    rows = table[table["method"].eq(method) & table["scope"].eq(scope) & table["estimand"].eq(estimand)]
    return rows.assign(force=rows["force"].fillna("").astype(str)).sort_values("force")


def crosscheck_pooled(data: ReportData, method: str, estimand: str = HEADLINE) -> pd.Series:
    rows = crosscheck_rows(data, method, "pooled", estimand)
    if rows.empty:
        raise KeyError(f"crosscheck estimates.csv has no pooled row method={method!r}, estimand={estimand!r}.")
    return rows.iloc[0]


def crosscheck_pooled_table(data: ReportData) -> pd.DataFrame:
    """The pooled frequentist estimates laid out as the Bayesian estimand table, the model's own row first."""
    bayes = data.estimand(HEADLINE, "pooled")
    rows = [("bayes_hierarchical", HEADLINE, bayes["mean"], bayes["q05"], bayes["q95"], np.nan)]
    pooled = data.table("crosscheck_estimates")
    pooled = pooled[pooled["scope"].eq("pooled") & pooled["method"].isin(CROSSCHECK_METHODS)]
    rows += list(pooled[["method", "estimand", "estimate", "ci_low", "ci_high", "p_value"]].itertuples(index=False))
    return pd.DataFrame(
        {
            "Method": [CROSSCHECK_METHODS[r[0]][0] for r in rows],
            "Estimand": [r[1].replace("_", " ") for r in rows],
            "Estimate": [_effect(r[2], r[1]) for r in rows],
            "90% interval": [_interval(r[3], r[4], r[1]) for r in rows],
            "Interval": [CROSSCHECK_METHODS[r[0]][1] for r in rows],
            "p-value": [_p_value(r[5]) for r in rows],
        }
    )


def crosscheck_markdown(data: ReportData) -> str:
    """The pooled cross-check in words, and why the bootstrap interval is the one to trust with few forces."""
    bayes = data.estimand(HEADLINE, "pooled")
    logit = crosscheck_pooled(data, "logit_glm")
    robust = crosscheck_pooled(data, "lpm_cluster_robust")
    wild = crosscheck_pooled(data, "lpm_wild_cluster_bootstrap")
    n_forces = data.table("row_accounting")["force"].nunique()
    return (
        f"The pooled logistic regression estimates a change of {_effect(logit['estimate'], HEADLINE)} reoffenders "
        f"per 100 CARA cases (90% confidence interval {_interval(logit['ci_low'], logit['ci_high'], HEADLINE)}), "
        f"beside the Bayesian model's {_effect(bayes['mean'], HEADLINE)} "
        f"({_interval(bayes['q05'], bayes['q95'], HEADLINE)}). Cases within a force share its practice and its data, "
        f"so errors are clustered by force; but cluster-robust errors assume many clusters, and with {n_forces} forces "
        "they are too small and reject too often. The linear probability model, whose coefficient is the risk "
        "difference itself, is therefore also given a wild cluster bootstrap interval: "
        f"{_interval(robust['ci_low'], robust['ci_high'], HEADLINE)} cluster-robust against "
        f"{_interval(wild['ci_low'], wild['ci_high'], HEADLINE)} bootstrapped."
    )


def _cell(mean: float, low: float, high: float, estimand: str = HEADLINE) -> str:
    if pd.isna(mean):
        return "not estimable"
    return f"{_effect(mean, estimand)} ({_interval(low, high, estimand)})"


def force_comparison_table(data: ReportData) -> pd.DataFrame:
    """Per force, partial pooling beside the analyses that use that force alone (all per 100 CARA cases, 90%)."""
    estimands = data.table("estimands")
    pooled = estimands[estimands["estimand"].eq(HEADLINE) & estimands["scope"].eq("force")].set_index("level")
    forest = data.table("forest")
    alone = forest[forest["method"].eq("no_pooling")].set_index("force")
    logit = crosscheck_rows(data, "logit_glm", "force", HEADLINE).set_index("force")
    propensity = crosscheck_rows(data, "propensity_att", "force", HEADLINE).set_index("force")

    def cells(table, mean, low, high):
        return [_cell(*table.loc[f, [mean, low, high]]) if f in table.index else "not estimable" for f in pooled.index]

    return pd.DataFrame(
        {
            "Force": [data.force_name(f) for f in pooled.index],
            "Partial pooling": cells(pooled, "mean", "q05", "q95"),
            "Bayesian, this force alone": cells(alone, "mean", "q05", "q95"),
            "Logistic GLM, this force alone": cells(logit, "estimate", "ci_low", "ci_high"),
            "Propensity-weighted (ATT)": cells(propensity, "estimate", "ci_low", "ci_high"),
        }
    )


def force_disagreement_markdown(data: ReportData) -> str:
    """How far the force-alone answers spread, against the partially pooled ones: the reason for pooling."""
    logit = crosscheck_rows(data, "logit_glm", "force", HEADLINE).dropna(subset=["estimate"])
    estimands = data.table("estimands")
    pooled = estimands[estimands["estimand"].eq(HEADLINE) & estimands["scope"].eq("force")]
    harmful = int((logit["estimate"] > 0).sum())
    direction = (
        f"{_forces(harmful)} {'points' if harmful == 1 else 'point'} to more reoffending and the others to less, as "
        "in the economic strand's force-by-force analyses" if harmful else "all point to less reoffending"
    )
    return (
        f"Analysed one at a time, the forces' logistic regressions range from {_effect(logit['estimate'].min(), HEADLINE)} "
        f"to {_effect(logit['estimate'].max(), HEADLINE)} per 100 CARA cases: {direction}. The partially pooled "
        f"estimates range from {_effect(pooled['mean'].min(), HEADLINE)} to {_effect(pooled['mean'].max(), HEADLINE)}. "
        "They disagree with the force-alone analyses, and that is the point of pooling: a force with few cases, or "
        "only historical controls, cannot tell its effect from noise on its own, so the hierarchical model draws each "
        "force towards the national average in proportion to how little its own data say."
    )


def its_table(data: ReportData) -> pd.DataFrame:
    """Segmented regression per force: the step and the change in slope at the CARA start, or why not estimable."""
    level = crosscheck_rows(data, "its_segmented", "force", "level_change_per100").set_index("force")
    slope = crosscheck_rows(data, "its_segmented", "force", "slope_change_per100_per_month").set_index("force")
    return pd.DataFrame(
        {
            "Force": [data.force_name(f) for f in level.index],
            "Step at CARA start, per 100 (90%)": [_cell(*level.loc[f, ["estimate", "ci_low", "ci_high"]])
                                                  for f in level.index],
            "Slope change, per 100 per month (90%)": [
                _cell(*slope.loc[f, ["estimate", "ci_low", "ci_high"]]) if f in slope.index else "not estimable"
                for f in level.index
            ],
            "Series": [str(note).split("; WLS")[0] for note in level["note"]],
        }
    )


def balance_table(data: ReportData) -> pd.DataFrame:
    """Case-mix balance per force before and after propensity weighting: worst |SMD| and levels above the limit."""
    balance = data.table("crosscheck_balance")
    limit = (data.config.get("quality") or {}).get("smd_threshold", 0.1)
    rows = []
    for force, group in balance.groupby("force", sort=True):
        before, after = group["smd_before"].abs(), group["smd_after"].abs()
        rows.append(
            {
                "Force": data.force_name(force),
                "Covariate levels": str(len(group)),
                "Largest |SMD| before": number(".2f")(before.max()),
                "Largest |SMD| after": number(".2f")(after.max()),
                f"Levels with |SMD| > {limit:g}, before": str(int((before > limit).sum())),
                f"Levels with |SMD| > {limit:g}, after": str(int((after > limit).sum())),
            }
        )
    return pd.DataFrame(rows)


def propensity_markdown(data: ReportData) -> str:
    """What propensity weighting can and cannot do against historical controls, with the pooled numbers."""
    propensity = crosscheck_pooled(data, "propensity_att")
    bayes = data.estimand(HEADLINE, "pooled")
    comparison = (
        "further from zero than" if abs(propensity["estimate"]) > abs(bayes["mean"]) else "close to or nearer zero than"
    )
    return (
        f"Weighted to the CARA cases' case mix within each force, the comparison gives "
        f"{_effect(propensity['estimate'], HEADLINE)} per 100 CARA cases "
        f"({_interval(propensity['ci_low'], propensity['ci_high'], HEADLINE)}), {comparison} the Bayesian model's "
        f"{_effect(bayes['mean'], HEADLINE)}. Weighting balances the recorded characteristics (table below), but it "
        "cannot remove the secular trend: where the comparison group is historical, every comparison case comes from "
        "before CARA began, so any change over time in reoffending or in how it is recorded is credited to CARA. "
        "The regression, time-series and Bayesian analyses adjust for calendar time; this one does not."
    )


# 9. Cost-benefit ------------------------------------------------------------------------------------------


def _pounds(value: float) -> str:
    return "" if pd.isna(value) else f"£{value:,.0f}"


def _pounds_interval(low: float, high: float) -> str:
    return f"{_pounds(low)} to {_pounds(high)}".replace("£-", "-£")


def _money(value: float) -> str:
    return _pounds(value).replace("£-", "-£")


def costbenefit_table(data: ReportData) -> pd.DataFrame:
    """Net monetary benefit, benefit-cost ratio and cost per reoffender avoided, pooled, per force, new force.

    CARA case counts are the ones the cohort table publishes (same suppression); a total benefit would give a
    hidden count away (total / per participant), so it is hidden with it.
    """
    summary = data.table("costbenefit_summary").copy()
    summary["force"] = summary["force"].fillna("").astype(str)
    shown_cara = cases_by_arm(data)["cara"]
    hidden = suppressed_label(data.threshold)
    labels, counts = [], []
    for scope, force in zip(summary["scope"], summary["force"]):
        if scope == "pooled":
            labels.append(f"{ALL_FORCES} (pooled)")
            counts.append(shown_cara.get(ALL_FORCES, NOT_RECORDED))
        elif scope == "new_force":
            labels.append("A new force (prediction)")
            counts.append("")
        else:
            labels.append(data.force_name(force))
            counts.append(shown_cara.get(force, NOT_RECORDED))
    total = [
        "suppressed" if count == hidden else ("" if pd.isna(mean) else f"{_money(mean)} ({_pounds_interval(lo, hi)})")
        for count, mean, lo, hi in zip(counts, summary["nmb_total_mean"], summary["nmb_total_q05"],
                                       summary["nmb_total_q95"])
    ]
    per_reoffence = [
        f"{_money(value)} ({_pounds_interval(lo, hi)})" if pd.notna(value) else f"not reported: {reason.split(': ', 1)[-1]}"
        for value, lo, hi, reason in zip(summary["cost_per_reoffence_avoided"], summary["cost_per_reoffence_avoided_q05"],
                                         summary["cost_per_reoffence_avoided_q95"],
                                         summary["cost_per_reoffence_avoided_reason"])
    ]
    return pd.DataFrame(
        {
            "Scope": labels,
            count_label("CARA cases"): counts,
            "Change per 100 (90%)": [_cell(m, lo, hi) for m, lo, hi in
                                     zip(summary["rd_per100_mean"], summary["rd_per100_q05"], summary["rd_per100_q95"])],
            "Net benefit per participant (90%)": [
                f"{_money(m)} ({_pounds_interval(lo, hi)})" for m, lo, hi in
                zip(summary["nmb_per_participant_mean"], summary["nmb_per_participant_q05"],
                    summary["nmb_per_participant_q95"])],
            "Net benefit, all participants (90%)": total,
            "Pr(net benefit > 0)": summary["prob_nmb_positive"].map(sure_percent).to_numpy(),
            "Benefit-cost ratio (90%)": [f"{m:.2f} ({lo:.2f} to {hi:.2f})" for m, lo, hi in
                                         zip(summary["bcr_median"], summary["bcr_q05"], summary["bcr_q95"])],
            "Cost per reoffender avoided (90%)": per_reoffence,
        }
    )


def costbenefit_markdown(data: ReportData) -> str:
    """The pooled cost-benefit in words, and where cost per reoffender avoided is withheld and why."""
    summary = data.table("costbenefit_summary")
    pooled = summary[summary["scope"].eq("pooled")].iloc[0]
    costs = data.table("costbenefit_unit_costs").set_index("item")["value_gbp"]
    withheld = summary[summary["scope"].eq("force") & summary["cost_per_reoffence_avoided"].isna()]
    text = (
        f"Valuing each reoffender avoided at {_pounds(costs.get('da_offence'))} and CARA at "
        f"{_pounds(costs.get('cara_per_participant'))} per participant (illustrative unit costs, below), the net "
        f"monetary benefit over all forces is {_money(pooled['nmb_per_participant_mean'])} per participant "
        f"({_pounds_interval(pooled['nmb_per_participant_q05'], pooled['nmb_per_participant_q95'])}; 90% interval), "
        f"a benefit-cost ratio of {pooled['bcr_median']:.2f} ({pooled['bcr_q05']:.2f} to {pooled['bcr_q95']:.2f}). "
        f"The probability that CARA's benefit exceeds its cost is {sure_percent(pooled['prob_nmb_positive'])}. "
        "Cost per reoffender avoided divides the cost by the effect, which is meaningless when the effect could be "
        "zero or harmful (the ratio explodes or flips sign), so it is reported only where the 90% interval of the "
        "effect lies below zero."
    )
    if len(withheld):
        names = ", ".join(data.force_name(f) for f in withheld["force"])
        text += f" It is withheld for {names}, whose interval reaches zero or above."
    return text


def ceac_png(data: ReportData) -> bytes:
    """The acceptability curve drawn by the cost-benefit stage's own plotting function, from its table."""
    from cara_eval.costbenefit import plot_acceptability

    curve = data.table("costbenefit_ceac").copy()
    curve["force"] = curve["force"].fillna("")
    costs = data.table("costbenefit_unit_costs").set_index("item")["value_gbp"]
    buffer = BytesIO()
    plot_acceptability(curve, float(costs["da_offence"]), buffer)
    return buffer.getvalue()


def unit_costs_table(data: ReportData) -> pd.DataFrame:
    costs = data.table("costbenefit_unit_costs")
    return pd.DataFrame(
        {
            "Item": costs["item"].str.replace("_", " "),
            "Value": costs["value_gbp"].map(_pounds),
            "Status": costs["illustrative"].map(lambda v: Md("**illustrative**") if _is_true(v) else "evaluation costing"),
            "Source": costs["source"],
        }
    )


# 10. Calibration (appendix) -------------------------------------------------------------------------------


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
        f"{_effect(pooled['mean_bias'], HEADLINE)} per 100."
    )
    if ("naive_before_after", "pooled") in overall.index:
        naive = overall.loc[("naive_before_after", "pooled")]
        text += f" The naive before/after comparison is off by {_effect(naive['mean_bias'], HEADLINE)} on average"
        if ("no_pooling", "force") in overall.index:
            alone = overall.loc[("no_pooling", "force")]
            text += (f"; per-force analyses without pooling by {_effect(alone['mean_bias'], HEADLINE)} (root mean "
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
    from cara_eval.calibration import coverage_figure

    return coverage_figure(calibration_coverage(data))


# Sensitivity analyses --------------------------------------------------------------------------------------

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
    failed = rd[~rd["gate_passed"].map(_is_true)]
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
            "Gate": summary["gate_passed"].map(_gate_text),
            "What changed": summary["note"].fillna(""),
        }
    )


def sensitivity_png(data: ReportData) -> bytes:
    """The sensitivity stage's own figure, redrawn from its summary table."""
    from cara_eval.sensitivity import plot_summary

    buffer = BytesIO()
    plot_summary(data.table("sensitivity_summary"), buffer)
    return buffer.getvalue()


# Secondary outcomes -----------------------------------------------------------------------------------------

SECONDARY_OUTCOMES = {
    "reoffence_count": ("DA reoffences", "rate_ratio", "rate ratio"),
    "harm": ("crime-harm days", "ratio", "harm ratio"),
}


def secondary_outcomes_run(data: ReportData) -> list[str]:
    """Secondary outcomes whose estimand tables this report was given (config `secondary_outcomes.outcomes`)."""
    return [name for name in SECONDARY_OUTCOMES if f"outcome_{name}_estimands" in data.manifest["tables"]]


def secondary_outcomes_markdown(data: ReportData) -> str:
    """Headline per secondary outcome, and which forces could not contribute (flag-only: no counts or harm)."""
    run = secondary_outcomes_run(data)
    if not run:
        return ("The secondary outcomes (number of reoffences, crime harm) were not run in this configuration; "
                "the `publication` set runs them.")
    lines = []
    for name in run:
        label, ratio, ratio_label = SECONDARY_OUTCOMES[name]
        table = data.table(f"outcome_{name}_estimands")
        pooled = table[table["scope"].eq("pooled")].set_index("estimand")
        difference, rate = pooled.loc["difference_per100"], pooled.loc[ratio]
        forces = set(table.loc[table["scope"].eq("force"), "level"])
        left_out = sorted(set(data.manifest.get("forces", {})) - forces)
        missing = (f" Not included: {', '.join(data.force_name(f) for f in left_out)} (12-month flag only, no "
                   "counts or harm)." if left_out else "")
        lines.append(
            f"- **{label[0].upper() + label[1:]}** within a year, per 100 people given CARA: {difference['mean']:+.1f} "
            f"(90% interval {difference['q05']:+.1f} to {difference['q95']:+.1f}); {ratio_label} {rate['mean']:.2f} "
            f"({rate['q05']:.2f} to {rate['q95']:.2f}); probability of a reduction "
            f"{sure_percent(difference['prob_reduction'])}.{missing}"
        )
    return "\n".join(lines)


def secondary_outcomes_table(data: ReportData) -> pd.DataFrame:
    """Difference per 100 CARA cases and ratio of each secondary outcome: pooled, new force, relationship, force."""
    rows = []
    for name in secondary_outcomes_run(data):
        label, ratio, _ = SECONDARY_OUTCOMES[name]
        table = data.table(f"outcome_{name}_estimands").fillna({"level": ""})
        for scope in ("pooled", "new_force", "relationship", "force"):
            shown = table[table["scope"].eq(scope)]
            for level in shown["level"].drop_duplicates():
                at = shown[shown["level"].eq(level)].set_index("estimand")
                if "difference_per100" not in at.index or ratio not in at.index:
                    continue
                difference, rate = at.loc["difference_per100"], at.loc[ratio]
                where = data.force_name(level) if scope == "force" else (level or scope).replace("_", " ")
                rows.append({
                    "Outcome": label, "Scope": where,
                    "Per 100 (mean)": f"{difference['mean']:+.1f}",
                    "90% interval": f"{difference['q05']:+.1f} to {difference['q95']:+.1f}",
                    "Ratio (90% interval)": f"{rate['mean']:.2f} ({rate['q05']:.2f} to {rate['q95']:.2f})",
                    "Pr(reduction)": sure_percent(difference["prob_reduction"]),
                    "Gate": _gate_text(difference["gate_passed"]),
                })
    return pd.DataFrame(rows)
