"""Dataset names of the impute stage; kept free of heavy imports because the Snakefile reads them at parse time."""


def mnar_label(delta: float) -> str:
    """How an MNAR delta appears in dataset names: 0, 0.5, 1, -0.25."""
    return f"{delta:g}"
