"""The hex map of the forces: the tile file lists the 43 territorial forces once each, and the map draws any subset
(one force, the nine synthetic ones, all 43 and forces without a tile), empty tiles grey, one force highlighted."""

import numpy as np
import pandas as pd
import pytest
from conftest import REPO
from matplotlib.colors import to_rgba

from cara_eval.report.tilemap import draw_tile_map, load_tiles, partially_pooled_effects

TILES = load_tiles(REPO / "config" / "force_tiles.csv")
SYNTHETIC = sorted(p.stem for p in (REPO / "config" / "forces").glob("*.yaml"))
WALES = {"dyfed_powys", "gwent", "north_wales", "south_wales"}


def effects(forces, means=None) -> pd.DataFrame:
    means = np.linspace(-6.0, 2.0, len(forces)) if means is None else np.asarray(means, dtype=float)
    return pd.DataFrame({"force": forces, "mean": means, "q05": means - 3.0, "q95": means + 3.0})


def drawn(tile_map, kind: str) -> dict:
    """The map's artists of one kind (tile, label, highlight) by force, from their gid."""
    ax = tile_map.figure.axes[0]
    artists = [*ax.patches, *ax.texts]
    return {a.get_gid().split(":", 1)[1]: a for a in artists if (a.get_gid() or "").startswith(f"{kind}:")}


def all_text(tile_map) -> str:
    return "\n".join(t.get_text() for ax in tile_map.figure.axes for t in ax.texts)


def test_tile_file_holds_the_43_territorial_forces_once_each_and_the_nine_synthetic_ids():
    assert len(TILES) == 43 and TILES["force"].is_unique
    assert not TILES.duplicated(["col", "row"]).any()
    assert WALES <= set(TILES["force"]) and {"metropolitan", "city_of_london"} <= set(TILES["force"])
    assert len(SYNTHETIC) == 9 and set(SYNTHETIC) <= set(TILES["force"])
    assert TILES["force"].str.fullmatch(r"[a-z0-9_]+").all()
    north = TILES.set_index("force")["row"]
    assert north["northumbria"] < north["west_yorkshire"] < north["west_midlands"] < north["hampshire"]


def test_a_tile_file_with_two_forces_on_one_tile_is_refused(tmp_path):
    broken = tmp_path / "tiles.csv"
    TILES.assign(col=TILES["col"].where(TILES["force"].ne("kent"), 4), row=TILES["row"].where(
        TILES["force"].ne("kent"), 9)).to_csv(broken, index=False)
    with pytest.raises(ValueError, match="forces share a tile: sussex, kent"):
        load_tiles(broken)


def test_one_force_is_coloured_and_highlighted_the_other_42_tiles_drawn_empty():
    tile_map = draw_tile_map(TILES, effects(["norfolk"], [-3.5]), highlight="norfolk")
    tiles, labels, rings = drawn(tile_map, "tile"), drawn(tile_map, "label"), drawn(tile_map, "highlight")
    assert len(tiles) == 43 and len(labels) == 43 and list(rings) == ["norfolk"]
    assert tile_map.coloured == ["norfolk"] and len(tile_map.empty) == 42 and tile_map.not_placed == []
    assert tile_map.highlighted == "norfolk"
    assert tiles["kent"].get_facecolor() == to_rgba("white") and tiles["kent"].get_linewidth() < 1
    red, _, blue, _ = tiles["norfolk"].get_facecolor()
    assert blue > red  # fewer reoffenders: the blue half of the scale
    assert tiles["norfolk"].get_linewidth() == 2.0  # its interval (-6.5 to -0.5) excludes zero
    assert "Orange ring: Norfolk" in all_text(tile_map) and "Not placed" not in all_text(tile_map)


def test_the_nine_synthetic_forces_are_coloured_with_their_estimates_in_the_tiles():
    tile_map = draw_tile_map(TILES, effects(SYNTHETIC))
    tiles = drawn(tile_map, "tile")
    assert sorted(tile_map.coloured) == SYNTHETIC and len(tile_map.empty) == 34 and tile_map.highlighted is None
    assert {f for f, t in tiles.items() if t.get_facecolor() != to_rgba("white")} == set(SYNTHETIC)
    assert drawn(tile_map, "highlight") == {}
    text = all_text(tile_map)
    assert "-6.0" in text and "-9.0 to -3.0" in text and "+2.0" in text  # first and last force's estimates


def test_all_43_forces_and_two_without_a_tile_are_listed_beside_the_map():
    forest = pd.concat([
        effects([*TILES["force"], "force_10", "trial_1"]).assign(method="partial_pooling"),
        effects([*TILES["force"]]).assign(method="no_pooling", mean=9.0),
        pd.DataFrame({"force": ["all"], "method": ["pooled"], "mean": [-4.0], "q05": [-6.0], "q95": [-2.0]}),
    ])
    tile_map = draw_tile_map(TILES, partially_pooled_effects(forest), highlight="force_10")
    assert len(tile_map.coloured) == 43 and tile_map.empty == [] and len(drawn(tile_map, "tile")) == 43
    assert tile_map.not_placed == ["force_10", "trial_1"]
    assert tile_map.highlighted is None and drawn(tile_map, "highlight") == {}  # no tile to ring
    assert "Not placed (no tile listed): force_10, trial_1" in all_text(tile_map)
    assert "+9.0" not in all_text(tile_map)  # the no-pooling rows are not the map's estimates
