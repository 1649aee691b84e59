"""A rendered PDF read page by page with poppler's pdftotext: what each page shows, and layout faults a reader sees
(text printed over other text, a table caption left at the foot of a page without its table)."""

import difflib
import re
import shutil
import subprocess
from html.parser import HTMLParser

PDFTOTEXT = shutil.which("pdftotext")
# Section headings ("8.1 Sensitivity") and captions ("Table 25:"), in the order a page shows them.
LANDMARK = re.compile(r"^\s*((?:Table|Figure) \d+:|\d+(?:\.\d+)* [A-Z][a-z]+)", re.M)
TABLE_CAPTION = re.compile(r"^Table \d+:")  # above its table; a figure caption sits below


def page_texts(pdf) -> list[str]:
    """Text of each page, laid out as printed."""
    layout = subprocess.run([PDFTOTEXT, "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return layout.split("\f")[:-1]


def landmarks(pdf) -> list[list[str]]:
    """Per page, the headings and captions on it: two renders that agree on these split their content alike."""
    return [[" ".join(mark.split()) for mark in LANDMARK.findall(text)] for text in page_texts(pdf)]


def boundary_shifts(first: list[list[str]], second: list[list[str]]) -> list[int]:
    """How far each page boundary lies apart in two renders' landmarks (0 where they split alike). Both must show
    the same landmarks in the same order on as many pages; a heading that one layout fits at the foot of a page
    and the other carries to the next shifts that boundary by one."""
    flat_first, flat_second = [m for page in first for m in page], [m for page in second for m in page]
    assert flat_first == flat_second, "\n".join(difflib.unified_diff(flat_first, flat_second, lineterm=""))
    assert len(first) == len(second), f"{len(first)} pages against {len(second)}"
    shifts, before_first, before_second = [], 0, 0
    for page_first, page_second in zip(first, second):
        before_first, before_second = before_first + len(page_first), before_second + len(page_second)
        shifts.append(abs(before_first - before_second))
    return shifts


def stranded_captions(pdf) -> list[tuple[int, str]]:
    """(page, caption) for a table caption among the last two lines above the page number: its table went on."""
    stranded = []
    for number, text in enumerate(page_texts(pdf), start=1):
        lines = [line.strip() for line in text.splitlines() if line.strip()][:-1]
        stranded += [(number, line) for line in lines[-2:] if TABLE_CAPTION.match(line)]
    return stranded


class _Words(HTMLParser):
    """Words with their boxes from `pdftotext -bbox`, one list per page."""

    def __init__(self):
        super().__init__()
        self.pages, self._box = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "page":
            self.pages.append([])
        elif tag == "word":
            self._box = tuple(float(dict(attrs)[key]) for key in ("xmin", "ymin", "xmax", "ymax"))

    def handle_data(self, data):
        if self._box is not None:
            self.pages[-1].append((*self._box, data))
            self._box = None


def words(pdf) -> list[list[tuple[float, float, float, float, str]]]:
    parser = _Words()
    parser.feed(subprocess.run([PDFTOTEXT, "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True).stdout)
    return parser.pages


def overprinted_words(pdf, tolerance: float = 0.5) -> list[tuple[int, str, str]]:
    """(page, word, word) for every two words whose boxes overlap: one printed on top of the other."""
    overlaps = []
    for number, page in enumerate(words(pdf), start=1):
        page.sort(key=lambda word: word[1])
        for index, (x0, y0, x1, y1, text) in enumerate(page):
            for bx0, by0, bx1, by1, other in page[index + 1 :]:
                if by0 >= y1 - tolerance:
                    break
                if min(x1, bx1) - max(x0, bx0) > tolerance and min(y1, by1) - max(y0, by0) > tolerance:
                    overlaps.append((number, text, other))
    return overlaps
