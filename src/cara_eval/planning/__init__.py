"""Precision planning: how much more data each force (and the country) needs before its answer is conclusive.

`accrual` projects each force's cases and events forward at its current monthly rate and follow-up; `precision`
turns those into the expected width of the 90% interval of the risk difference and the assurance (probability
that the interval excludes zero) by preposterior simulation from the fitted model; `figures` and `text` show
the result for the national report and for one force's report.
"""

from cara_eval.planning.figures import plot_assurance
from cara_eval.planning.precision import conclusive_table, precision_table
from cara_eval.planning.text import months_to_conclusive_markdown

__all__ = ["conclusive_table", "months_to_conclusive_markdown", "plot_assurance", "precision_table"]
