"""Disclosure control: small counts hidden, and no hidden count recoverable from the published totals."""

import numpy as np
import pandas as pd

from cara_eval.common.disclosure import find_small_counts, protect_counts, suppression_mask


def _accounting():
    table = pd.DataFrame(
        {
            "force": ["a", "b", "c"],
            "clean": [120, 40, 300],
            "ineligible": [4, 30, 25],
            "quarantined": [15, 12, 2],
        }
    ).set_index("force")
    table.insert(0, "rows_read", table.sum(axis=1))
    return table


def test_primary_suppression_hides_every_count_below_threshold_and_nothing_else():
    table = pd.DataFrame({"n": [0, 1, 9, 10, 11, 250]}, index=list("uvwxyz"))
    published = protect_counts(table, ["n"], threshold=10)
    assert published["n"].tolist() == ["<10", "<10", "<10", "10", "11", "250"]


def test_threshold_is_configurable():
    table = pd.DataFrame({"n": [4, 5, 6]}, index=list("abc"))
    assert protect_counts(table, ["n"], threshold=5)["n"].tolist() == ["<5", "5", "6"]


def test_row_total_forces_the_next_smallest_part_in_that_row_to_be_hidden():
    table = _accounting()
    mask = suppression_mask(
        table, ["rows_read", "clean", "ineligible", "quarantined"], row_totals={"rows_read": ["clean", "ineligible", "quarantined"]}
    )
    # Row a: ineligible=4 is primary; rows_read - clean - quarantined would recover it, so the next-smallest
    # part (quarantined=15) goes too, not the larger clean=120 and not the total.
    assert mask.loc["a"].tolist() == [False, False, True, True]
    # Row c: quarantined=2 primary, ineligible=25 is next-smallest.
    assert mask.loc["c"].tolist() == [False, False, True, True]
    # Row b has nothing small: untouched.
    assert not mask.loc["b"].any()


def test_column_total_row_forces_a_second_hidden_cell_in_that_column():
    table = pd.DataFrame({"cara": [5, 40, 60], "comparison": [30, 45, 80]}, index=["x", "y", "z"])
    table.loc["All forces"] = table.sum()
    mask = suppression_mask(table, ["cara", "comparison"], total_row="All forces")
    assert mask["cara"].tolist() == [True, True, False, False]  # 5 primary, 40 next-smallest in the column
    assert not mask["comparison"].any()


def test_secondary_suppression_cascades_until_no_sum_has_one_hidden_cell():
    table = pd.DataFrame({"p": [3, 50, 70], "q": [40, 20, 90]}, index=["x", "y", "z"])
    table["total"] = table["p"] + table["q"]
    table.loc["All"] = table.sum()
    mask = suppression_mask(table, ["total", "p", "q"], row_totals={"total": ["p", "q"]}, total_row="All")
    hidden = mask.to_numpy()
    # Every published sum, row-wise and column-wise, has zero or at least two hidden cells.
    for i in range(len(table)):
        assert hidden[i, 1:].sum() + hidden[i, 0] != 1
    for j in range(3):
        assert hidden[:, j].sum() != 1
    # x: p=3 primary, q=40 its row partner; y: the column partners of both (p=50, q=20); totals stay visible.
    assert hidden.tolist() == [[False, True, True], [False, True, True], [False, False, False], [False, False, False]]


def test_hidden_cell_cannot_be_recovered_by_subtraction():
    table = _accounting()
    count_columns = ["rows_read", "clean", "ineligible", "quarantined"]
    published = protect_counts(table, count_columns, row_totals={"rows_read": count_columns[1:]})
    hidden = {}
    for force, row in published.iterrows():
        shown = [row[c] for c in count_columns]
        assert shown.count("<10") != 1, (force, shown)
        hidden[force] = shown.count("<10")
    # a (4 ineligible) and c (2 quarantined) have a small count, hidden with a partner; b has none.
    assert hidden["a"] >= 2 and hidden["c"] >= 2 and hidden["b"] == 0


def test_not_recorded_is_not_a_small_count_and_derived_shares_follow_their_count():
    table = pd.DataFrame(
        {"n_recorded": [np.nan, 4, 80], "contacted_share": [np.nan, 0.75, 0.9]}, index=["a", "b", "c"]
    )
    published = protect_counts(table, ["n_recorded"], derived={"contacted_share": "n_recorded"})
    assert published["n_recorded"].tolist() == ["not recorded", "<10", "80"]
    assert published.loc["b", "contacted_share"] == "suppressed"
    assert published.loc["c", "contacted_share"] == 0.9


def test_scanner_finds_small_counts_only_in_count_columns():
    html = """
    <table><tr><th>Force</th><th>Cases (n)</th><th>Share</th></tr>
    <tr><td>a</td><td>&lt;10</td><td>3</td></tr><tr><td>b</td><td>1,204</td><td>0.5</td></tr></table>
    <table><tr><th>Reason (n)</th><th>a</th><th>b</th></tr><tr><td>repeat</td><td>7</td><td>12</td></tr></table>
    """
    assert find_small_counts(html) == ["table 2, column 'a', row 'repeat': 7"]


def test_secondary_suppression_prefers_a_cell_that_closes_two_sums_at_once():
    # Cases by force and arm with row totals and an "All" row: hiding Norfolk's 5 CARA cases needs a second cell in
    # its row and its column. Choosing Hampshire's comparison cell (not the smaller West Yorkshire one) closes
    # Hampshire's row and the comparison column together, so West Yorkshire stays fully published.
    table = pd.DataFrame({"cara": [97, 5, 141], "comparison": [92, 25, 90]}, index=["h", "n", "w"])
    table["total"] = table.sum(axis=1)
    table.loc["All"] = table.sum()
    mask = suppression_mask(table, ["cara", "comparison", "total"], row_totals={"total": ["cara", "comparison"]},
                            total_row="All")
    assert mask.to_numpy().tolist() == [[True, True, False], [True, True, False], [False, False, False],
                                        [False, False, False]]
