"""Victim contact and consultation (report/force/_victims.qmd): this force's recorded rates beside the other forces',
from the national report's protected table (victims asked for communication and a say in the decision)."""

import pandas as pd

from cara_eval.common.disclosure import NOT_RECORDED, SUPPRESSED_SHARE
from cara_eval.report.data import ReportData
from cara_eval.report.formatting import Md, escape_markdown, is_true, percent
from cara_eval.report.sections.process import process_table

# Column of the published table: (case field, share column of process_measures.csv, what it measures in words).
MEASURES = {"Victim contacted": ("victim_contacted", "victim_contacted_share", "the victim was contacted"),
            "Victim consulted": ("victim_consulted", "victim_consulted_share",
                                 "the victim was consulted on the disposal")}


def victim_table(data: ReportData) -> pd.DataFrame:
    """Every force's rates (the national table), this force's row in bold."""
    table = process_table(data)
    own = data.force_name(data.force)
    table["Force"] = [Md(f"**{escape_markdown(name)} (this force)**") if name == own else name
                      for name in table["Force"]]
    return table


def victim_markdown(data: ReportData) -> str:
    """This force's rates in words beside the median of the other forces whose rates are published.

    A field the force never records is said so from the completeness table (published there as n/s); the rates
    table itself shows such a force as suppressed, since it hides a share whenever its count (zero) is hidden.
    """
    published = process_table(data).set_index("Force")
    measures = data.table("process_measures").set_index("force")
    completeness = data.table("completeness")
    never = completeness[completeness["force"].eq(data.force) & completeness["structural"].map(is_true)]["field"]
    name = data.force_name(data.force)
    others = [f for f in measures.index if f != data.force]
    sentences = []
    for label, (field, column, what) in MEASURES.items():
        own = published.loc[name, label] if name in published.index else NOT_RECORDED
        shown = [f for f in others if published.loc[data.force_name(f), label] not in (NOT_RECORDED, SUPPRESSED_SHARE)]
        median = pd.to_numeric(measures.loc[shown, column], errors="coerce").median() if shown else None
        comparison = (f"the median of the other forces that record it is {percent(median)}" if shown
                      else "no other force's rate is published")
        if own == NOT_RECORDED or field in set(never):
            sentences.append(f"{name} does not record whether {what}; {comparison}.")
        elif own == SUPPRESSED_SHARE:
            sentences.append(f"The share of {name}'s CARA cases in which {what} is not shown (too few cases "
                             f"recorded to publish it); {comparison}.")
        else:
            sentences.append(f"In {name}, {what} in {own} of CARA cases with contact recorded; {comparison}.")
    return " ".join(sentences)
