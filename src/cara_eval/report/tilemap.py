"""Hex tile map (cartogram) of the territorial police forces of England and Wales, without boundary files.

Each force is one hexagon at its approximate place (config/force_tiles.csv: a column and row of an offset grid,
odd rows shifted half a tile east, row 0 in the north), coloured by its partially pooled effect: the change in
reoffenders per 100 CARA cases, on a diverging scale centred on zero (blue: fewer). The tile shows the estimate and
its 90% interval; a thick black outline marks an interval that excludes zero. Tiles of forces without estimates are
drawn empty; forces with estimates but no tile are listed beside the map instead of failing, so the map works for
any subset of forces (the nine synthetic ones, a trial's made-up forces). One force can be highlighted (its own
report).
"""

from dataclasses import dataclass
from math import ceil, sqrt
from pathlib import Path

import pandas as pd
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import RegularPolygon

from cara_eval.report.formatting import effect_text

TILE_COLUMNS = ["force", "display_name", "label", "col", "row"]
EFFECT_COLUMNS = ["force", "mean", "q05", "q95"]
# Pointy-top hexagons one column apart touch edge to edge when their circumradius is 1/sqrt(3).
RADIUS = 1 / sqrt(3)
ROW_HEIGHT = 1.5 * RADIUS
COLOURS = colormaps["RdBu_r"]
EMPTY_EDGE = "#9a9a9a"
HIGHLIGHT = "#e08000"
# The colour scale spans at least 5 reoffenders per 100 either way (a large effect: the national estimates are about
# 4-5 fewer), so differences of a point or two between forces do not saturate the colours.
MIN_SCALE = 5.0
SCALE_LABEL = "Change in reoffenders per 100 CARA cases\n(partial pooling; blue: fewer)"


def load_tiles(path: str | Path) -> pd.DataFrame:
    """The tile positions, checked: one tile per force and one force per tile."""
    tiles = pd.read_csv(path, comment="#", dtype={"force": str, "display_name": str, "label": str})
    missing = [c for c in TILE_COLUMNS if c not in tiles.columns]
    if missing:
        raise ValueError(f"{path}: tile file lacks columns {missing} (expected {', '.join(TILE_COLUMNS)})")
    twice = tiles["force"][tiles["force"].duplicated()].tolist()
    if twice:
        raise ValueError(f"{path}: forces listed more than once: {', '.join(twice)}")
    shared = tiles[tiles.duplicated(["col", "row"], keep=False)]
    if not shared.empty:
        raise ValueError(f"{path}: forces share a tile: {', '.join(shared['force'])}")
    return tiles[TILE_COLUMNS]


def partially_pooled_effects(forest: pd.DataFrame) -> pd.DataFrame:
    """Each force's partially pooled risk difference per 100 from the forest table (model_pool's forest.csv)."""
    return forest.loc[forest["method"].eq("partial_pooling"), EFFECT_COLUMNS].reset_index(drop=True)


def tile_centre(col: int, row: int) -> tuple[float, float]:
    """Centre of a tile in plot units: one column is one unit, odd rows shift east by half a column."""
    return col + 0.5 * (row % 2), -row * ROW_HEIGHT


@dataclass
class TileMap:
    """The drawn map and what it shows, so a caller (or a test) can say which forces it placed."""

    figure: Figure
    coloured: list[str]  # forces with an estimate, on their tile
    empty: list[str]  # tiles without an estimate
    not_placed: list[str]  # forces with an estimate but no tile
    highlighted: str | None


def draw_tile_map(tiles: pd.DataFrame, effects: pd.DataFrame, highlight: str | None = None) -> TileMap:
    """Every tile, coloured where the force has an estimate; `highlight` outlines one force (its own report)."""
    effects = effects.drop_duplicates("force").set_index("force")
    limit = max(MIN_SCALE, ceil(effects["mean"].abs().max())) if len(effects) else MIN_SCALE
    norm = Normalize(-limit, limit)
    figure = Figure(figsize=(6.4, 6.4), dpi=150)
    ax = figure.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_aspect("equal")
    ax.axis("off")
    coloured, empty = [], []
    for tile in tiles.itertuples():
        x, y = tile_centre(int(tile.col), int(tile.row))
        effect = effects.loc[tile.force] if tile.force in effects.index else None
        (coloured if effect is not None else empty).append(tile.force)
        _draw_tile(ax, x, y, tile, effect, norm)
        if tile.force == highlight:
            ring = RegularPolygon((x, y), 6, radius=RADIUS * 1.06, facecolor="none", edgecolor=HIGHLIGHT, lw=3.2,
                                  zorder=4)
            ring.set_gid(f"highlight:{tile.force}")
            ax.add_patch(ring)
    not_placed = sorted(set(effects.index) - set(tiles["force"]))
    _legend(figure, ax, tiles, norm, highlight, not_placed)
    return TileMap(figure, coloured, empty, not_placed, highlight if highlight in set(tiles["force"]) else None)


def _draw_tile(ax, x: float, y: float, tile, effect: pd.Series | None, norm: Normalize) -> None:
    """One hexagon with its label; an estimate fills it and prints the mean and interval."""
    if effect is None:
        face, edge, width, text_colour = "white", EMPTY_EDGE, 0.6, EMPTY_EDGE
    else:
        excludes_zero = effect["q95"] < 0 or effect["q05"] > 0
        face = COLOURS(norm(effect["mean"]))
        edge, width = ("black", 2.0) if excludes_zero else ("#505050", 0.6)
        text_colour = "white" if abs(norm(effect["mean"]) - 0.5) > 0.3 else "black"
    hexagon = RegularPolygon((x, y), 6, radius=RADIUS * 0.96, facecolor=face, edgecolor=edge, lw=width, zorder=2)
    hexagon.set_gid(f"tile:{tile.force}")
    ax.add_patch(hexagon)
    bold = "bold" if effect is not None else "normal"
    label = ax.text(x, y + (0.11 if effect is not None else 0.0), tile.label, ha="center", va="center", fontsize=6.5,
                    fontweight=bold, color=text_colour, zorder=3)
    label.set_gid(f"label:{tile.force}")
    if effect is not None:
        estimate, low, high = (effect_text(effect[k], "risk_difference_per100") for k in ("mean", "q05", "q95"))
        ax.text(x, y - 0.06, estimate, ha="center", va="center", fontsize=6, color=text_colour, zorder=3)
        ax.text(x, y - 0.19, f"{low} to {high}", ha="center", va="center", fontsize=4.6, color=text_colour, zorder=3)


def _legend(figure: Figure, ax, tiles: pd.DataFrame, norm: Normalize, highlight: str | None,
            not_placed: list[str]) -> None:
    """Colour scale and key east of the northern tiles (the North Sea); forces without a tile beneath the map."""
    xs, ys = zip(*(tile_centre(int(c), int(r)) for c, r in zip(tiles["col"], tiles["row"])))
    north = [x for x, y in zip(xs, ys) if y > max(ys) - 4 * ROW_HEIGHT]
    key_x = max(north) + 0.9
    ax.set_xlim(min(xs) - 0.6, max(max(xs) + 0.6, key_x + 2.9))
    ax.set_ylim(min(ys) - (1.0 if not_placed else 0.6), max(ys) + 0.6)
    scale = ax.inset_axes((key_x, max(ys) - 0.05, 2.7, 0.14), transform=ax.transData)
    figure.colorbar(ScalarMappable(norm, COLOURS), cax=scale, orientation="horizontal")
    scale.tick_params(labelsize=6)
    scale.set_title(SCALE_LABEL, fontsize=6.5)
    key = ["Thick outline: 90% interval excludes 0", "Tile text: estimate, 90% interval",
           "Empty tile: no data from this force"]
    if highlight is not None:
        key.append(f"Orange ring: {_name(tiles, highlight)}")
    ax.text(key_x, max(ys) - 0.4, "\n".join(key), fontsize=6, va="top", ha="left")
    if not_placed:
        ax.text(min(xs) - 0.5, min(ys) - 0.75, f"Not placed (no tile listed): {', '.join(not_placed)}", fontsize=6.5,
                ha="left", va="bottom", wrap=True)


def _name(tiles: pd.DataFrame, force: str) -> str:
    names = tiles.set_index("force")["display_name"]
    return names.get(force, force)
