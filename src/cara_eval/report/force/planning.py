"""Months to a conclusive answer (report/force/_planning.qmd): this force's row of the national planning table,
with the national row beside it, and its own assurance and width curves (cara_eval.planning)."""

from cara_eval.planning import months_to_conclusive_markdown
from cara_eval.report.data import ReportData
from cara_eval.report.sections import planning


def is_planned(data: ReportData) -> bool:
    """Whether the planning stage has this force (a force outside the model has no effect to plan for)."""
    return data.force in set(data.table("planning_conclusive")["force"])


def planning_markdown(data: ReportData) -> str:
    """This force's answer in words, the definition, or why there is none."""
    if not is_planned(data):
        return (f"{data.force_name(data.force)} is not in the effectiveness model (see the effect section), so "
                "there is no estimate of its own to plan for.")
    own = months_to_conclusive_markdown(data.table("planning_conclusive"), data.config["planning"]["assurance_target"],
                                        data.force, data.force_name(data.force))
    return f"{own}\n\n{planning.definition_markdown(data)}"
