"""Display and wording shared by every report section, so a number reads the same wherever it appears.

Tables are shown as pipe tables with every cell escaped (`Md` marks intended markdown); count columns carry the
"(n)" mark (`count_label`) so the rendered report can be scanned for leaks.
"""

import re
from io import BytesIO

import pandas as pd
from matplotlib.figure import Figure

from cara_eval.common.disclosure import COUNT_MARK

ALL_FORCES = "All forces"
HEADLINE = "risk_difference_per100"
ARM_LABELS = {"cara": "CARA", "comparison": "Comparison"}


def show(table: pd.DataFrame) -> None:
    """Display a table in the report (a markdown output, which Quarto and the fallback both pass through)."""
    from IPython.display import Markdown, display

    display(Markdown(markdown_table(table)))


def show_figure(figure: Figure) -> None:
    """Display a figure as PNG bytes: independent of the kernel's matplotlib backend, byte-stable across runs."""
    from IPython.display import Image, display

    buffer = BytesIO()
    figure.savefig(buffer, format="png", dpi=figure.dpi, bbox_inches="tight", metadata={"Software": None})
    display(Image(buffer.getvalue()))


def show_image(png: bytes) -> None:
    """Display PNG bytes made by a stage's own plotting function (one figure code path for results and report)."""
    from IPython.display import Image, display

    display(Image(png))


def show_text(markdown: str) -> None:
    from IPython.display import Markdown, display

    display(Markdown(markdown))


def count_label(text: str) -> str:
    """Header of a published count column: the "(n)" mark is what the disclosure scan looks for."""
    return f"{text} {COUNT_MARK}"


class Md(str):
    """Text that is meant as markdown (bold, code) in a table cell; every other cell is escaped."""


MARKDOWN_SPECIALS = re.compile(r"([\\`*_\[\]^~<>$@|#])")


def escape_markdown(text: str) -> str:
    """Data shown literally: "^[a-z]+$" or "a_b" must not turn into superscript, links or emphasis."""
    return text if isinstance(text, Md) else MARKDOWN_SPECIALS.sub(r"\\\1", str(text))


def markdown_table(table: pd.DataFrame) -> str:
    """A pipe table (renders the same through Quarto and through pandoc to HTML and Typst).

    Cells are printed exactly as formatted here: no re-parsing of "1.002" or "<10" as numbers, data escaped.
    """
    escaped = table.map(escape_markdown)
    escaped.columns = [escape_markdown(c) for c in table.columns]
    return escaped.to_markdown(index=False, disable_numparse=True)


def number(spec: str):
    """A formatter for one column: the value in `spec` format, or empty where it is missing."""
    return lambda value: "" if pd.isna(value) else format(value, spec)


def percent(share) -> str:
    """A share as a whole percentage; text such as "not recorded" or "suppressed" passes through."""
    if isinstance(share, str) or pd.isna(share):
        return share if isinstance(share, str) else ""
    return f"{100 * share:.0f}%"


def sure_percent(probability: float) -> str:
    """A posterior probability as "P%", never claiming certainty a finite sample cannot give."""
    p = 100 * probability
    if p >= 99.5:
        return ">99%"
    if p < 0.5:
        return "<1%"
    return f"{p:.0f}%"


def per100(value: float) -> str:
    """A risk difference per 100 in words: "about 4 fewer" / "about 0.4 more"."""
    size = abs(value)
    amount = f"{size:.0f}" if size >= 1 else f"{size:.1f}"
    if amount in ("0", "0.0"):
        return "about the same number"
    return f"about {amount} {'fewer' if value < 0 else 'more'}"


def per100_interval(low: float, high: float) -> str:
    """A 90% interval of a risk difference per 100 in words."""
    if high < 0:
        return f"between {-high:.0f} and {-low:.0f} fewer"
    if low > 0:
        return f"between {low:.0f} and {high:.0f} more"
    return f"from {-low:.0f} fewer to {high:.0f} more"


def forces_text(n: int) -> str:
    return f"{n} force" if n == 1 else f"{n} forces"


def is_true(value) -> bool:
    """A boolean read back from CSV (True / "True" / 1)."""
    return str(value).lower() in ("true", "1")


def gate_text(passed) -> str:
    return "passed" if is_true(passed) else Md("**FAILED**")


RATIO_ESTIMANDS = ("odds_ratio", "rate_ratio", "risk_ratio")


def effect_text(value: float, estimand: str) -> str:
    """Ratios to two decimals, differences per 100 signed to one, so one estimand reads alike in every table."""
    if pd.isna(value):
        return ""
    if estimand in RATIO_ESTIMANDS:
        return f"{value:.2f}"
    return f"{round(value, 1) + 0.0:+.1f}"  # + 0.0: no "-0.0"


def interval_text(low: float, high: float, estimand: str) -> str:
    if pd.isna(low) or pd.isna(high):
        return ""
    return f"{effect_text(low, estimand)} to {effect_text(high, estimand)}"


def effect_cell(mean: float, low: float, high: float, estimand: str = HEADLINE) -> str:
    if pd.isna(mean):
        return "not estimable"
    return f"{effect_text(mean, estimand)} ({interval_text(low, high, estimand)})"
