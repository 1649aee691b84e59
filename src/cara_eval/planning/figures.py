"""The planning figure: assurance and expected 90% width against added months, national or for one force."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from cara_eval.planning.precision import NATIONAL


def plot_assurance(precision: pd.DataFrame, target: float, force: str | None = None, names: dict | None = None,
                   path=None) -> Figure:
    """Two panels over added months: assurance (target marked) and expected width of the 90% interval.

    `force` None: every force in colour and the national estimate in black (the national report); a force key:
    that force in colour, the national estimate in black and the other forces in light grey (its own report).
    `names` maps force keys to display names. Saved to `path` (file or buffer) when given, without a software
    stamp, so the same table gives a byte-identical PNG."""
    names = names or {}
    fig = Figure(figsize=(8, 3.8), layout="constrained")
    assurance_ax, width_ax = fig.subplots(1, 2)
    forces = list(precision.loc[precision["scope"] == "force", "force"].unique())
    colours = {f: f"C{i % 10}" for i, f in enumerate(forces)}
    for key, part in precision.groupby("force", sort=False):
        part = part.sort_values("months_added")
        if key == NATIONAL:
            style = dict(color="black", lw=2.4, zorder=3, label="all forces (national)")
        elif force is None or key == force:
            style = dict(color=colours[key], lw=1.8 if key == force else 1.2, label=names.get(key, key))
        else:
            style = dict(color="lightgrey", lw=0.8)
        assurance_ax.plot(part["months_added"], part["assurance"], **style)
        width_ax.plot(part["months_added"], part["expected_width_90"], **style)
    if force is not None:
        assurance_ax.plot([], [], color="lightgrey", lw=0.8, label="other forces")
    assurance_ax.axhline(target, color="tab:red", lw=1, ls=":", label=f"assurance {target:.0%}")
    assurance_ax.set(xlabel="months of further data", ylabel="probability the 90% interval excludes zero",
                     ylim=(-0.02, 1.02), title="Assurance")
    width_ax.set(xlabel="months of further data", ylabel="expected width of the 90% interval (per 100)",
                 ylim=(0, None), title="Precision")
    assurance_ax.legend(frameon=False, fontsize=7, loc="lower right")
    if path is not None:
        fig.savefig(path, dpi=150, metadata={"Software": None})
    return fig
