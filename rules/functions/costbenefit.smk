"""Decisions of the costbenefit stage (its get_* functions), kept apart from its rules."""


def get_costbenefit_outputs():
    """The cost-benefit deliverables the report reads."""
    return [
        "results/costbenefit/summary.csv",
        "results/costbenefit/ceac.csv",
        "results/costbenefit/ceac.png",
        "results/costbenefit/unit_costs.csv",
    ]
