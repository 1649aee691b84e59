"""Draw the hex map of the forces' partially pooled effects for the national report (results/report/force_map.png)."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

import logging

import pandas as pd

from cara_eval.report.tilemap import draw_tile_map, load_tiles, partially_pooled_effects

tile_map = draw_tile_map(load_tiles(snakemake.input.tiles), partially_pooled_effects(pd.read_csv(snakemake.input.forest)))
tile_map.figure.savefig(snakemake.output[0], dpi=tile_map.figure.dpi, bbox_inches="tight", metadata={"Software": None})
logging.info("force map: %d forces coloured, %d tiles empty, not placed: %s", len(tile_map.coloured),
             len(tile_map.empty), ", ".join(tile_map.not_placed) or "none")
