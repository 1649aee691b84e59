"""Statistical disclosure control for every count of people or cases the report publishes.

Published outputs (the report and anything under results/report/) must not let a reader single out a small
group. Primary suppression hides every count below the threshold (zero included: "none" is also a small group
for a force). Secondary suppression then closes the arithmetic loophole: wherever a published sum (a row total
such as rows_read = clean + ineligible + quarantined, or a column total row such as "All forces") has exactly
one hidden cell, that cell could be recovered by subtraction, so the next-smallest visible cell of the same sum
is hidden too, repeated until no sum has a single hidden cell. Model quantities (effects, R-hat, ESS,
probabilities) and dates are not counts and are never passed through here.

Published tables mark their count columns by a header ending in "(n)"; `find_small_counts` scans rendered HTML
for count cells that slipped through (a header "... (n)" in the first column marks every column as counts).
"""

from collections.abc import Hashable, Mapping, Sequence
from html.parser import HTMLParser

import numpy as np
import pandas as pd

COUNT_MARK = "(n)"
NOT_RECORDED = "not recorded"
SUPPRESSED_SHARE = "suppressed"


def suppressed_label(threshold: int) -> str:
    """How a hidden count is printed: "<10" for the default threshold."""
    return f"<{threshold}"


def _sum_groups(
    table: pd.DataFrame, columns: Sequence[str], row_totals: Mapping[str, Sequence[str]], total_row: Hashable | None
) -> list[tuple[list[tuple[int, int]], tuple[int, int] | None]]:
    """Every published sum as (parts, total) cell positions; the total is the cell to hide last."""
    col = {c: j for j, c in enumerate(columns)}
    groups = []
    for total, parts in row_totals.items():
        for i in range(len(table)):
            groups.append(([(i, col[p]) for p in parts], (i, col[total])))
    if total_row is not None:
        t = table.index.get_loc(total_row)
        body = [i for i in range(len(table)) if i != t]
        for j in range(len(columns)):
            groups.append(([(i, j) for i in body], (t, j)))
    return groups


def suppression_mask(
    table: pd.DataFrame,
    count_columns: Sequence[str],
    threshold: int = 10,
    *,
    row_totals: Mapping[str, Sequence[str]] | None = None,
    total_row: Hashable | None = None,
) -> pd.DataFrame:
    """True where a count must be hidden: below `threshold` (primary) or recoverable from a sum (secondary).

    `row_totals` maps a total column to the part columns it sums within each row; `total_row` is the index label
    of a row holding each column's sum over the other rows. Missing counts (NaN: not recorded) are not hidden.
    """
    values = table[list(count_columns)].to_numpy(dtype=float)
    recorded = ~np.isnan(values)
    hidden = recorded & (values < threshold)
    groups = [
        ([c for c in parts if recorded[c]], total if recorded[total] else None)
        for parts, total in _sum_groups(table, list(count_columns), row_totals or {}, total_row)
    ]
    membership: dict[tuple[int, int], list[int]] = {}
    for number, (parts, total) in enumerate(groups):
        for cell in [*parts, *([total] if total else [])]:
            membership.setdefault(cell, []).append(number)

    def exposed(number: int) -> bool:
        parts, total = groups[number]
        return sum(hidden[c] for c in [*parts, *([total] if total else [])]) == 1

    changed = True
    while changed:
        changed = False
        for number, (parts, total) in enumerate(groups):
            if not exposed(number):
                continue
            candidates = [c for c in parts if not hidden[c]] or ([total] if total and not hidden[total] else [])
            if candidates:
                # Prefer a cell that also protects another exposed sum, then the smallest: fewer cells hidden.
                def cost(cell, number=number):
                    return (-sum(exposed(g) for g in membership[cell] if g != number), values[cell], cell)

                hidden[min(candidates, key=cost)] = True
                changed = True
    return pd.DataFrame(hidden, index=table.index, columns=list(count_columns))


def protect_counts(
    table: pd.DataFrame,
    count_columns: Sequence[str],
    threshold: int = 10,
    *,
    row_totals: Mapping[str, Sequence[str]] | None = None,
    total_row: Hashable | None = None,
    derived: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """A publishable copy: counts as text ("<10" where hidden), other columns unchanged.

    `derived` maps a column computed from a count (a share of those cases) to that count column: where the count
    is hidden the share is hidden too, since a share of a small denominator gives the count away.
    """
    mask = suppression_mask(table, count_columns, threshold, row_totals=row_totals, total_row=total_row)
    published = table.copy()
    for column in count_columns:
        values = table[column]
        text = values.map(lambda v: NOT_RECORDED if pd.isna(v) else f"{int(v):,}")
        published[column] = text.where(~mask[column], suppressed_label(threshold))
    for column, count_column in (derived or {}).items():
        published[column] = published[column].astype(object).where(~mask[count_column], SUPPRESSED_SHARE)
    return published


class _TableCells(HTMLParser):
    """Collects the text of every cell of every HTML table, row by row."""

    def __init__(self):
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th") and self.tables:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self.tables and self.tables[-1]:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def find_small_counts(html: str, threshold: int = 10) -> list[str]:
    """Count cells in rendered HTML tables that show a number below the threshold (empty list = safe)."""
    parser = _TableCells()
    parser.feed(html)
    problems = []
    for number, rows in enumerate(parser.tables, start=1):
        if not rows:
            continue
        header, body = rows[0], rows[1:]
        if header and header[0].endswith(COUNT_MARK):
            count_cols = range(1, len(header))
        else:
            count_cols = [j for j, h in enumerate(header) if h.endswith(COUNT_MARK)]
        for row in body:
            for j in count_cols:
                cell = row[j] if j < len(row) else ""
                digits = cell.replace(",", "")
                if digits.isdigit() and int(digits) < threshold:
                    problems.append(f"table {number}, column '{header[j]}', row '{row[0]}': {cell}")
    return problems
