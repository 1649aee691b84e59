"""Figures of the data-quality profile, drawn from the tables in `cara_eval.quality.profile`.

Figures are built on bare `matplotlib.figure.Figure` objects (Agg, no pyplot state), with fixed fonts
and no date or software stamp in the PNG metadata, so a rerun on the same data is byte-identical.
"""

from collections.abc import Mapping
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from cara_eval.quality.profile import ARMS, POOLED, ForceDesign

STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
}
DPI = 150
ARM_COLOURS = {"cara": "#1b7837", "comparison": "#762a83"}
# Annotating every cell stops being legible beyond this many forces (the national synthetic scale).
MAX_ANNOTATED_FORCES = 12


def _save(fig: Figure, path: str | Path) -> None:
    with mpl.rc_context(STYLE):
        fig.savefig(path, dpi=DPI, metadata={"Software": None})


def plot_completeness(table: pd.DataFrame, path: str | Path) -> None:
    """Heatmap of share missing, fields (rows) by force (columns); structural cells hatched grey."""
    fields = list(dict.fromkeys(table["field"]))
    share = table.pivot(index="field", columns="force", values="share_missing").reindex(fields)
    structural = table.pivot(index="field", columns="force", values="structural").reindex(fields)
    forces = list(share.columns)
    annotated = len(forces) <= MAX_ANNOTATED_FORCES
    cell_width = 0.45 if annotated else 0.22
    with mpl.rc_context(STYLE):
        fig = Figure(figsize=(3.0 + cell_width * len(forces), 1.2 + 0.28 * len(fields)), layout="constrained")
        ax = fig.add_subplot()
        cmap = mpl.colormaps["YlOrRd"].with_extremes(bad="#f0f0f0")
        mesh = ax.pcolormesh(np.ma.masked_invalid(share.to_numpy(dtype=float)), cmap=cmap, vmin=0, vmax=1)
        for row, col in zip(*np.nonzero(structural.to_numpy(dtype=bool))):
            ax.add_patch(Rectangle((col, row), 1, 1, facecolor="#bdbdbd", edgecolor="#525252", hatch="///", lw=0))
        if annotated:
            for (row, col), value in np.ndenumerate(share.to_numpy(dtype=float)):
                if structural.iat[row, col] or np.isnan(value):
                    continue
                ax.text(col + 0.5, row + 0.5, f"{value:.0%}", ha="center", va="center",
                        color="white" if value > 0.6 else "black")
        ax.set_xticks(np.arange(len(forces)) + 0.5, forces, rotation=45, ha="right")
        ax.set_yticks(np.arange(len(fields)) + 0.5, fields)
        ax.invert_yaxis()
        ax.set_title("Share of values missing, by field and force")
        fig.colorbar(mesh, ax=ax, label="share missing", shrink=0.6)
        handles = [Patch(facecolor="#bdbdbd", edgecolor="#525252", hatch="///", label="never recorded (structural)")]
        if share.isna().to_numpy().any():
            handles.append(Patch(facecolor="#f0f0f0", edgecolor="#525252", label="not applicable (no CARA case)"))
        fig.legend(handles=handles, loc="outside lower center", frameon=False, ncols=len(handles))
    _save(fig, path)


def plot_reasons(reasons: pd.DataFrame, accounting: pd.DataFrame, path: str | Path) -> None:
    """Share of each force's rows excluded, stacked by reason (ineligible in blues, quarantined in oranges).

    Reasons that excluded no row in any force are left out of the bars and the legend.
    """
    rows_read = accounting.set_index("force")["rows_read"]
    reasons = reasons[reasons.groupby(["category", "reason"])["n"].transform("sum") > 0]
    labels = reasons["category"] + ": " + reasons["reason"]
    shares = reasons.assign(label=labels).pivot_table(index="force", columns="label", values="n", aggfunc="sum")
    shares = shares.reindex(rows_read.index).div(rows_read.where(rows_read > 0), axis=0).fillna(0)
    columns = sorted(shares.columns)
    with mpl.rc_context(STYLE):
        fig = Figure(figsize=(7.5, 1.4 + 0.3 * len(shares)), layout="constrained")
        ax = fig.add_subplot()
        palettes = {"ineligible": mpl.colormaps["Blues"], "quarantined": mpl.colormaps["Oranges"]}
        left = np.zeros(len(shares))
        for category, palette in palettes.items():
            in_category = [c for c in columns if c.startswith(f"{category}: ")]
            for colour_at, column in zip(np.linspace(0.35, 0.9, max(len(in_category), 1)), in_category):
                ax.barh(shares.index, shares[column], left=left, color=palette(colour_at), label=column)
                left += shares[column].to_numpy()
        ax.invert_yaxis()
        ax.xaxis.set_major_formatter(mpl.ticker.PercentFormatter(1.0))
        ax.set_xlabel("share of rows read")
        ax.set_title("Rows excluded at ingest, by reason")
        if columns:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
        else:
            ax.set_yticks(np.arange(len(shares)), shares.index)
            ax.text(0.5, 0.5, "no row excluded", transform=ax.transAxes, ha="center", va="center")
    _save(fig, path)


def plot_followup(cases: pd.DataFrame, full_followup_days: int, path: str | Path) -> None:
    """Share of cases by follow-up band (quarters of the window), one bar per force and arm."""
    quarter, half = full_followup_days // 4, full_followup_days // 2
    edges = [0, quarter, half, full_followup_days, np.inf]
    bands = [f"< {quarter} days", f"{quarter}-{half - 1} days", f"{half}-{full_followup_days - 1} days",
             f"full {full_followup_days} days"]
    band = pd.cut(cases["followup_days"], bins=edges, right=False, labels=bands).rename("band")
    counts = pd.concat([cases[["force", "arm"]], band], axis=1).groupby(["force", "arm", "band"], observed=False).size()
    counts = counts.unstack("band").reindex(columns=bands, fill_value=0)
    counts = counts[counts.sum(axis=1) > 0]
    shares = counts.div(counts.sum(axis=1), axis=0)
    labels = [f"{force} · {arm}" for force, arm in shares.index]
    with mpl.rc_context(STYLE):
        fig = Figure(figsize=(7.0, 1.2 + 0.22 * len(shares)), layout="constrained")
        ax = fig.add_subplot()
        left = np.zeros(len(shares))
        for colour_at, name in zip(np.linspace(0.85, 0.25, len(bands)), bands):
            ax.barh(labels, shares[name], left=left, color=mpl.colormaps["Greens"](colour_at), label=name)
            left += shares[name].to_numpy()
        ax.invert_yaxis()
        ax.xaxis.set_major_formatter(mpl.ticker.PercentFormatter(1.0))
        ax.set_xlabel("share of cases")
        ax.set_title("Follow-up available, by force and arm")
        fig.legend(loc="outside lower center", ncols=len(bands), frameon=False)
    _save(fig, path)


def plot_cohort_sizes(sizes: pd.DataFrame, designs: Mapping[str, ForceDesign], path: str | Path) -> None:
    """Cases per year, one panel per force, stacked by arm; dashed line at the force's CARA start."""
    forces = sorted(sizes["force"].unique())
    n_cols = min(4 if len(forces) <= 16 else 6, len(forces))
    n_rows = -(-len(forces) // n_cols)
    with mpl.rc_context(STYLE):
        fig = Figure(figsize=(2.2 * n_cols + 0.6, 1.7 * n_rows + 0.6), layout="constrained")
        axes = fig.subplots(n_rows, n_cols, squeeze=False, sharex=True).ravel()
        for ax, force in zip(axes, forces):
            counts = sizes[sizes["force"] == force].pivot(index="period", columns="arm", values="n_cases")
            counts = counts.reindex(columns=list(ARMS), fill_value=0)
            bottom = np.zeros(len(counts))
            for arm in ARMS:
                ax.bar(counts.index, counts[arm], bottom=bottom, width=0.8, color=ARM_COLOURS[arm], label=arm)
                bottom += counts[arm].to_numpy()
            if force in designs:
                start = designs[force].cara_start
                ax.axvline(start.year - 0.5 + (start.dayofyear - 1) / 365.25, color="black", ls="--", lw=1.2)
            ax.yaxis.set_major_locator(mpl.ticker.MaxNLocator(nbins=4, integer=True))
            ax.set_title(force)
        for ax in axes[len(forces):]:
            ax.set_visible(False)
        fig.supxlabel("year of index offence (dashed: CARA start)")
        fig.supylabel("cases")
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside upper center", ncols=len(ARMS), frameon=False)
    _save(fig, path)


def plot_case_mix(table: pd.DataFrame, smd_threshold: float, path: str | Path) -> None:
    """Standardised mean differences (CARA minus comparison) per covariate level: forces grey, pooled black."""
    rows = table[["covariate", "level"]].drop_duplicates()
    labels = (rows["covariate"] + rows["level"].map(lambda level: "" if pd.isna(level) else f": {level}")).tolist()
    position = {key: i for i, key in enumerate(zip(rows["covariate"], rows["level"].fillna("")))}
    y = np.array([position[key] for key in zip(table["covariate"], table["level"].fillna(""))])
    pooled = table["force"].eq(POOLED).to_numpy()
    with mpl.rc_context(STYLE):
        fig = Figure(figsize=(6.0, 1.0 + 0.22 * len(labels)), layout="constrained")
        ax = fig.add_subplot()
        ax.scatter(table["smd"][~pooled], y[~pooled], s=10, color="#969696", alpha=0.7, label="one force")
        ax.scatter(table["smd"][pooled], y[pooled], s=28, marker="D", color="black", label="all forces pooled")
        for x in (-smd_threshold, smd_threshold):
            ax.axvline(x, color="grey", ls="--", lw=0.8)
        ax.axvline(0, color="black", lw=0.6)
        ax.set_yticks(np.arange(len(labels)), labels)
        ax.invert_yaxis()
        ax.set_xlabel(f"SMD, CARA minus comparison (dashed: ±{smd_threshold})")
        ax.set_title("Case mix balance, observed values before imputation")
        fig.legend(loc="outside lower center", ncols=2, frameon=False)
    _save(fig, path)
