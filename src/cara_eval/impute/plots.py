"""Figures of the imputation stage: missingness by force, patterns, chain convergence, observed vs imputed."""

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cara_eval.impute.fields import field_kind, field_levels  # noqa: E402


def _grid(n_panels: int, width: float = 3.2, height: float = 2.6):
    columns = min(4, n_panels)
    rows = int(np.ceil(n_panels / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False)
    for axis in axes.flat[n_panels:]:
        axis.set_visible(False)
    return figure, axes.flat


def plot_missingness(missingness: pd.DataFrame, path: str) -> None:
    """Heatmap of share missing, force x field; S marks a field the force never records."""
    share = missingness.pivot(index="force", columns="field", values="share_missing")
    structural = missingness.pivot(index="force", columns="field", values="structural").reindex_like(share)
    figure, axis = plt.subplots(figsize=(1.0 + 0.9 * share.shape[1], 1.0 + 0.4 * share.shape[0]))
    image = axis.imshow(share.to_numpy(dtype=float), vmin=0, vmax=1, cmap="Reds", aspect="auto")
    for (i, j), value in np.ndenumerate(share.to_numpy(dtype=float)):
        label = "S" if structural.iat[i, j] else f"{value:.0%}"
        axis.text(j, i, label, ha="center", va="center", fontsize=7, color="white" if value > 0.6 else "black")
    axis.set_xticks(range(share.shape[1]), share.columns, rotation=45, ha="right")
    axis.set_yticks(range(share.shape[0]), share.index)
    figure.colorbar(image, ax=axis, label="share missing")
    axis.set_title("Missing covariates by force (S: never recorded)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_patterns(patterns: pd.DataFrame, fields: Sequence[str], path: str, top: int = 15) -> None:
    """The most frequent missingness patterns over all forces: which fields go missing together."""
    pooled = patterns[patterns["force"] == "all"].nlargest(top, "n_cases")
    matrix = np.array([[field in pattern.split("+") for field in fields] for pattern in pooled["pattern"]])
    figure, axis = plt.subplots(figsize=(1.5 + 0.7 * len(fields), 1.0 + 0.35 * len(pooled)))
    axis.imshow(matrix.astype(float), cmap="Greys", vmin=0, vmax=1.4, aspect="auto")
    axis.set_xticks(range(len(fields)), fields, rotation=45, ha="right")
    axis.set_yticks(range(len(pooled)), [f"{n:,} ({s:.1%})" for n, s in zip(pooled["n_cases"], pooled["share"])])
    axis.set_title("Missingness patterns (dark: missing)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _note(path: str, text: str) -> None:
    """A figure that says why there is nothing to draw (the rule's output must still exist)."""
    figure, axis = plt.subplots(figsize=(4, 1.5))
    axis.text(0.5, 0.5, text, ha="center", va="center")
    axis.set_axis_off()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_convergence(traces: Mapping[str, pd.DataFrame], path: str) -> None:
    """Mean (or level share) of the imputed values per iteration, one line per imputation (chain)."""
    panels = list(next(iter(traces.values()))[["field", "level"]].drop_duplicates().itertuples(index=False))
    if not panels:
        _note(path, "No covariate was missing: nothing was imputed")
        return
    figure, axes = _grid(len(panels))
    for axis, (field, level) in zip(axes, panels):
        for name, trace in traces.items():
            series = trace[(trace["field"] == field) & (trace["level"] == level)]
            axis.plot(series["iteration"], series["mean_imputed"], marker=".", linewidth=1, label=name)
        axis.set_title(f"{field}={level}" if level else f"{field} (mean)", fontsize=9)
        axis.set_xlabel("iteration", fontsize=8)
    axes[0].legend(fontsize=6)
    figure.suptitle("Chained-equation convergence: imputed values per iteration")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_observed_vs_imputed(
    cases: pd.DataFrame, imputed: Sequence[pd.DataFrame], fields: Sequence[str], path: str
) -> None:
    """Distribution of observed values against imputed values (all imputations pooled), per field."""
    if not fields:
        _note(path, "No force records any covariate to impute")
        return
    figure, axes = _grid(len(fields))
    for axis, field in zip(axes, fields):
        missing = cases[field].isna().to_numpy()
        observed = cases.loc[~missing, field]
        filled = pd.concat([data.loc[missing, field] for data in imputed])
        if field_kind(field) == "numeric":
            bins = np.histogram_bin_edges(pd.concat([observed, filled]).astype(float), bins=25)
            axis.hist(observed.astype(float), bins=bins, density=True, alpha=0.5, label="observed")
            axis.hist(filled.astype(float), bins=bins, density=True, alpha=0.5, label="imputed")
        else:
            levels = list(field_levels(field))
            width = 0.4
            positions = np.arange(len(levels))
            axis.bar(positions - width / 2, [(observed == v).mean() for v in levels], width, label="observed")
            axis.bar(positions + width / 2, [(filled == v).mean() if len(filled) else 0 for v in levels], width,
                     label="imputed")
            axis.set_xticks(positions, [str(v) for v in levels], rotation=30, fontsize=7)
        axis.set_title(f"{field} ({missing.mean():.0%} missing)", fontsize=9)
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
