"""Ordering of dated folders. Kept out of `paths` on purpose: calibration replicates record the source of every
module they load, and a module they do not load can change without refitting the replicate store."""

import re
from pathlib import Path


def numeric_name_order(path: Path) -> list[tuple]:
    """Sort key reading the digit runs of a file or folder name as numbers: dated folders with a counter then sort
    as they were made (`2026-12-03.10` after `2026-12-03.9`, `...Z-10` after `...Z-9`), where text order would not."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.findall(r"\d+|\D+", path.name)]
