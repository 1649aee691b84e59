"""Render the Quarto report to self-contained HTML and PDF, with Quarto or with the engines Quarto drives.

With `quarto` on PATH (a cluster module, the conda env, or ../shared/quarto on developer machines and in CI) the
report is rendered by Quarto (HTML with embedded resources, PDF through Quarto's Typst format). Otherwise the same
.qmd goes through the same steps by hand: includes expanded, converted to a notebook, executed by a Jupyter kernel
(nbclient + ipykernel), outputs turned back into markdown (figures as PNG files, tables as pipe tables), then pandoc
writes HTML (`--embed-resources --standalone`) and Typst, and the `typst` package compiles the PDF. Both read the
same format options and include the same Typst header and CSS, so their pages agree (tests/report/test_render.py).
Output depends only on the inputs and the run date (stamped into the title block and the PDF metadata).
"""

import atexit
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from base64 import b64decode
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path

import nbformat
import yaml

INCLUDE = re.compile(r"^\{\{<\s*include\s+(\S+)\s*>\}\}\s*$")
PAGEBREAK = "{{< pagebreak >}}"
TYPST_PAGEBREAK = "```{=typst}\n#pagebreak()\n```"
CELL_START = re.compile(r"^```\{python\}\s*$")
CELL_END = re.compile(r"^```\s*$")
OPTION = re.compile(r"^#\|\s?(.*)$")
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")
DATE_TOKENS = re.compile(r"YYYY|MMMM|MMM|MM|DD|D")
TYPST_PAGE_OPTIONS = ("papersize", "margin", "fontsize")
# jupyter_client's words when a kernel process exits before it answers. It failed a CI run once (2026-12-02), while
# two force reports started kernels in the same second: most likely two kernels handed the same free port. A fresh
# start picks new ports, so a render whose kernel died so is retried, never more than this often.
KERNEL_DIED_AT_START = "Kernel died before replying to kernel_info"
KERNEL_START_ATTEMPTS = 3
log = logging.getLogger(__name__)


class RenderError(RuntimeError):
    """A render failed; the message names the cell or tool so the report author can fix it."""


class KernelDiedAtStart(RenderError):
    """The Jupyter kernel exited before it answered: a start-up race, not an error in the report."""


def retry_kernel_start(render_once):
    """Call `render_once` again, with a new kernel, each time its kernel died at start (KERNEL_START_ATTEMPTS)."""
    for attempt in range(1, KERNEL_START_ATTEMPTS + 1):
        try:
            return render_once()
        except KernelDiedAtStart as error:
            if attempt == KERNEL_START_ATTEMPTS:
                raise RenderError(f"the Jupyter kernel died at start in all {attempt} attempts:\n{error}") from None
            log.warning("the Jupyter kernel died at start (attempt %d of %d); starting another", attempt,
                        KERNEL_START_ATTEMPTS)


@dataclass
class Block:
    """A stretch of the document: markdown, or one python cell with its `#|` options and where it came from."""

    kind: str
    text: str
    origin: str
    options: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"'{self.options['label']}' ({self.origin})" if "label" in self.options else f"({self.origin})"


def split_front_matter(text: str) -> tuple[dict, str]:
    """YAML header and body of a .qmd file (partials have no header)."""
    if text.startswith("---\n"):
        end = text.index("\n---", 4)
        return yaml.safe_load(text[4:end]) or {}, text[end + 4 :].lstrip("\n")
    return {}, text


def parse_qmd(path: str | Path) -> tuple[dict, list[Block]]:
    """Front matter and blocks of a .qmd, with `{{< include >}}` expanded recursively like Quarto does."""
    path = Path(path)
    front, body = split_front_matter(path.read_text())
    return front, _blocks(body, path, first_line=len(path.read_text().splitlines()) - len(body.splitlines()) + 1)


def _blocks(body: str, path: Path, first_line: int) -> list[Block]:
    blocks, markdown, cell, cell_line = [], [], None, 0

    def flush_markdown():
        if "".join(markdown).strip():
            blocks.append(Block("markdown", "\n".join(markdown).strip("\n"), f"{path.name}"))
        markdown.clear()

    for number, line in enumerate(body.splitlines(), start=first_line):
        if cell is not None:
            if CELL_END.match(line):
                blocks.append(_code_block(cell, f"{path.name}, line {cell_line}"))
                cell = None
            else:
                cell.append(line)
        elif CELL_START.match(line):
            flush_markdown()
            cell, cell_line = [], number
        elif match := INCLUDE.match(line):
            flush_markdown()
            included = path.parent / match.group(1)
            if not included.is_file():
                raise RenderError(f"{path.name}, line {number}: included file {included} does not exist.")
            blocks += _blocks(split_front_matter(included.read_text())[1], included, first_line=1)
        else:
            markdown.append(line)
    if cell is not None:
        raise RenderError(f"{path.name}, line {cell_line}: python cell is never closed with ```.")
    flush_markdown()
    return blocks


def _code_block(lines: list[str], origin: str) -> Block:
    option_lines = []
    for line in lines:
        if not (match := OPTION.match(line)):
            break
        option_lines.append(match.group(1))
    options = yaml.safe_load("\n".join(option_lines)) or {}
    return Block("code", "\n".join(lines), origin, options)


def to_notebook(blocks: list[Block]) -> nbformat.NotebookNode:
    """A notebook of the blocks; each code cell remembers its label and origin for error messages."""
    cells = []
    for block in blocks:
        if block.kind == "code":
            metadata = {"cara": {"name": block.name, **block.options}}
            cells.append(nbformat.v4.new_code_cell(block.text, metadata=metadata))
        else:
            cells.append(nbformat.v4.new_markdown_cell(block.text))
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return notebook


def execute_notebook(notebook: nbformat.NotebookNode, workdir: Path, env: dict, timeout: int = 600):
    """Run every code cell in a fresh kernel; a failing cell raises RenderError naming its label and origin."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    def execute_once():
        client = NotebookClient(
            notebook, kernel_name="python3", timeout=timeout, resources={"metadata": {"path": str(workdir)}}
        )
        try:
            client.execute(env=env, cwd=str(workdir))
        except RuntimeError as error:
            if KERNEL_DIED_AT_START in str(error):
                # nbclient leaves its exit-time cleanup of the dead kernel registered; at exit it would fail
                # with a bare AssertionError in the rule's log
                atexit.unregister(client._cleanup_kernel)
                raise KernelDiedAtStart(str(error)) from None
            raise

    try:
        retry_kernel_start(execute_once)
    except CellExecutionError as error:
        errors = [
            (cell, output) for cell in notebook.cells if cell.cell_type == "code"
            for output in cell.get("outputs", []) if output.output_type == "error"
        ]
        cell, output = errors[0] if errors else (None, None)
        name = cell.metadata["cara"]["name"] if cell is not None else "(unknown cell)"
        detail = f"{output.ename}: {output.evalue}" if output is not None else ""
        traceback = ANSI_COLOUR.sub("", str(error))
        raise RenderError(f"Report cell {name} failed: {detail}\n{traceback}") from None
    return notebook


def notebook_to_markdown(notebook: nbformat.NotebookNode, front: dict, figure_dir: Path) -> str:
    """The executed document as markdown: outputs in place of code, figures written as PNG files."""
    echo_default = bool((front.get("execute") or {}).get("echo", False))
    parts = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown":
            parts.append(cell.source)
            continue
        options = cell.metadata["cara"]
        if options.get("echo", echo_default):
            parts.append(f"```python\n{cell.source}\n```")
        if options.get("output", True) is False:
            continue
        for number, output in enumerate(cell.get("outputs", [])):
            parts.append(_output_markdown(output, options, figure_dir, f"cell{index:03d}-{number}"))
    return "\n\n".join(p for p in parts if p)


def _output_markdown(output, options: dict, figure_dir: Path, stem: str) -> str:
    if output.output_type == "stream":
        return f"```\n{output.text.rstrip()}\n```" if output.name == "stdout" else ""
    data = output.get("data", {})
    if "image/png" in data:
        path = figure_dir / f"{stem}.png"
        path.write_bytes(b64decode(data["image/png"]))
        label = options.get("label", "")
        attributes = f"#{label} " if label.startswith("fig-") else ""
        return f"![{options.get('fig-cap', '')}]({figure_dir.name}/{path.name}){{{attributes}width=100%}}"
    if "text/markdown" in data:
        text = data["text/markdown"]
        if "tbl-cap" in options:
            text += f"\n\n: {options['tbl-cap']} {{#{options.get('label', stem)}}}"
        return text
    if "text/plain" in data:
        return f"```\n{data['text/plain']}\n```"
    return ""


def number_crossrefs(markdown: str, prefix_captions: bool) -> str:
    """Quarto-style "Figure N" / "Table N" numbering and @fig-/@tbl- references, as plain text.

    Typst numbers captions itself (in the same order), so only the HTML captions get the prefix.
    """
    numbers = {}

    def caption(label: str, text: str) -> str:
        return f"{numbers[label]}: {text}" if prefix_captions else text

    def figure(match):
        numbers[match.group(3)] = f"Figure {sum(k.startswith('fig-') for k in numbers) + 1}"
        return f"![{caption(match.group(3), match.group(1))}]({match.group(2)}){{#{match.group(3)}{match.group(4)}}}"

    def table(match):
        numbers[match.group(2)] = f"Table {sum(k.startswith('tbl-') for k in numbers) + 1}"
        return f": {caption(match.group(2), match.group(1))}"

    markdown = re.sub(r"!\[([^\]]*)\]\(([^)]+)\)\{#(fig-[\w-]+)([^}]*)\}", figure, markdown)
    markdown = re.sub(r"^: (.*) \{#(tbl-[\w-]+)\}$", table, markdown, flags=re.M)
    return re.sub(r"@((?:fig|tbl)-[\w-]+)", lambda m: numbers.get(m.group(1), m.group(1)), markdown)


def pandoc(markdown_path: Path, output: Path, to: str, extra: list[str]) -> None:
    import pypandoc

    # --columns: pipe tables keep their natural column widths (pandoc would otherwise fix them from the width of
    # the widest source line, squeezing short columns until their text overlaps in the PDF).
    command = [pypandoc.get_pandoc_path(), str(markdown_path), "-f", "markdown-citations", "-t", to, "--standalone",
               "--columns=100000", "-o", str(output), *extra]
    proc = subprocess.run(command, cwd=markdown_path.parent, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RenderError(f"pandoc -t {to} failed:\n{proc.stderr}")


def title_date(front: dict, run_date: datetime) -> str:
    """The run date as Quarto writes it under the title: the document's `date-format` (dayjs tokens)."""
    fields = {"YYYY": f"{run_date:%Y}", "MMMM": f"{run_date:%B}", "MMM": f"{run_date:%b}", "MM": f"{run_date:%m}",
              "DD": f"{run_date:%d}", "D": str(run_date.day)}
    return DATE_TOKENS.sub(lambda match: fields[match.group()], front.get("date-format", "YYYY-MM-DD"))


def _metadata_args(front: dict, to: str, run_date: datetime) -> list[str]:
    """Title block and the format's toc / numbering options, read from the same YAML Quarto reads."""
    options = _format_options(front, to)
    args = ["--metadata", f"date={title_date(front, run_date)}"]
    if options.get("toc"):
        args += ["--toc", f"--toc-depth={options.get('toc-depth', 3)}"]
    if options.get("number-sections"):
        args.append("--number-sections")
    for key in ("title", "subtitle"):
        if key in front:
            args += ["--metadata", f"{key}={front[key]}"]
    return args


def render_fallback(qmd: Path, html_out: Path, pdf_out: Path, run_date: datetime, env: dict) -> None:
    """Quarto's pipeline by hand: expand, execute, assemble markdown, pandoc to HTML and Typst, typst to PDF."""
    import typst

    build = qmd.parent
    front, blocks = parse_qmd(qmd)
    notebook = execute_notebook(to_notebook(blocks), build, env)
    figure_dir = build / "figures_out"
    figure_dir.mkdir(exist_ok=True)
    markdown = notebook_to_markdown(notebook, front, figure_dir)
    html_markdown = number_crossrefs(markdown, prefix_captions=True).replace(PAGEBREAK, "")
    typst_markdown = number_crossrefs(markdown, prefix_captions=False).replace(PAGEBREAK, TYPST_PAGEBREAK)
    (build / "report.html.md").write_text(html_markdown)
    (build / "report.typ.md").write_text(typst_markdown)
    html_options = _format_options(front, "html")
    css = [f"--css={c}" for c in _as_list(html_options.get("css"))]
    if "max-width" in html_options:  # pandoc's own page CSS (off once --css is given) carries the page width
        css += ["--variable=document-css", f"--variable=maxwidth={html_options['max-width']}"]
    links = build / "format-links.html"  # Quarto lists the PDF under "Other Formats"; the fallback says the same
    links.write_text(f'<nav class="format-links">Other formats: <a href="{pdf_link(html_out, pdf_out)}">PDF</a></nav>\n')
    pandoc(build / "report.html.md", html_out, "html5",
           [*_metadata_args(front, "html", run_date), "--embed-resources", *css, f"--include-before-body={links}"])
    typst_source = build / "report.typ"
    typst_options = _format_options(front, "typst")
    headers = [f"--include-in-header={h}" for h in _as_list(typst_options.get("include-in-header"))]
    style = typst_options.get("syntax-highlighting")
    highlighting = [f"--syntax-highlighting={style}"] if style else []
    page = build / "typst-page.yaml"  # page options reach pandoc's typst template as metadata, as in Quarto
    page.write_text(yaml.safe_dump({k: typst_options[k] for k in TYPST_PAGE_OPTIONS if k in typst_options}))
    pandoc(build / "report.typ.md", typst_source, "typst",
           [*_metadata_args(front, "typst", run_date), *headers, *highlighting, f"--metadata-file={page}"])
    try:
        typst.compile(str(typst_source), output=str(pdf_out), root=str(build), timestamp=int(run_date.timestamp()))
    except Exception as error:  # typst raises its own error types with the source location in the message
        raise RenderError(f"typst could not compile {typst_source}: {error}") from None


def _format_options(front: dict, to: str) -> dict:
    return ((front.get("format") or {}).get(to) or {})


def _as_list(value) -> list:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def pdf_link(html_out: Path, pdf_out: Path) -> str:
    """Where the HTML report's "Other Formats" link finds the PDF (they are usually side by side)."""
    return Path(os.path.relpath(pdf_out, html_out.parent)).as_posix()


def render_quarto(qmd: Path, html_out: Path, pdf_out: Path, run_date: datetime, env: dict) -> None:
    """Quarto does everything; the same .qmd's format options apply (embed-resources, typst, date-format).

    The code runs once. Asked for both formats in one call, Quarto executes every cell once per format: a force
    report took 9.5 s that way, against 6.0 s for the HTML alone and 1.6 s for the PDF from the executed notebook.
    So the HTML render keeps its executed notebook (`keep-ipynb`), and the PDF is rendered from that notebook, which
    Quarto does not execute. The cells' outputs do not depend on the format (the fallback renders both formats
    from one execution too), and the PDF's pages are the same to the pixel.
    Each file is written beside the .qmd and then moved: `--output` would make Quarto's "Other Formats" link point
    at the HTML itself. The link is given explicitly (the "html" entry, never linked, stops Quarto adding its own
    "Typst" link).
    """
    format_links = f"format-links:[html, {{text: PDF, href: '{pdf_link(html_out, pdf_out)}', icon: file-pdf}}]"
    metadata = ["-M", f"date:{run_date:%Y-%m-%d}", "-M", format_links]

    def render_html():
        for stale in (qmd.with_suffix(".ipynb"), *qmd.parent.glob(f"{qmd.stem}.quarto_ipynb*")):  # a failed attempt's
            stale.unlink(missing_ok=True)
        quarto_render(qmd, "html", [*metadata, "-M", "keep-ipynb:true"], env)

    retry_kernel_start(render_html)
    notebook = executed_notebook(qmd)
    quarto_render(notebook, "typst", metadata, env)
    shutil.move(qmd.with_suffix(".html"), html_out)
    shutil.move(notebook.with_suffix(".pdf"), pdf_out)


def quarto_render(source: Path, to: str, arguments: list[str], env: dict) -> None:
    """`quarto render source --to <to>` in the source's folder; a failure raises with Quarto's own words."""
    proc = subprocess.run(["quarto", "render", source.name, "--to", to, *arguments], cwd=source.parent,
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        failure = KernelDiedAtStart if KERNEL_DIED_AT_START in proc.stdout + proc.stderr else RenderError
        raise failure(f"quarto render {source.name} --to {to} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")


def executed_notebook(qmd: Path) -> Path:
    """The notebook Quarto kept after executing `qmd`, as <stem>.ipynb (Quarto renders an .ipynb without executing it).

    Quarto 1.5 and later keep it as <stem>.quarto_ipynb, earlier versions as <stem>.ipynb.
    """
    notebook = qmd.with_suffix(".ipynb")
    kept = qmd.with_suffix(".quarto_ipynb")
    if kept.exists():
        kept.rename(notebook)
    if not notebook.exists():
        raise RenderError(f"Quarto kept no executed notebook of {qmd.name} (keep-ipynb); looked for {kept.name} "
                          f"and {notebook.name}.")
    return notebook


def renderer_info(use_quarto: bool) -> dict:
    """Which renderer and versions produced the report (printed in its appendix)."""
    import pypandoc

    if use_quarto:
        version = subprocess.run(["quarto", "--version"], capture_output=True, text=True).stdout.strip()
        return {"name": "Quarto", "versions": {"quarto": version}}
    versions = {"pandoc": pypandoc.get_pandoc_version()}
    versions |= {name: metadata.version(name) for name in ("nbclient", "ipykernel", "typst")}
    return {"name": "fallback (nbclient + pandoc + typst, no Quarto CLI)", "versions": versions}


def use_quarto(choice: str) -> bool:
    """`auto` uses Quarto when it is on PATH; `quarto` insists on it; `fallback` never uses it."""
    found = shutil.which("quarto") is not None
    if choice == "quarto" and not found:
        raise RenderError("config report.renderer is 'quarto' but no `quarto` is on PATH.")
    return found if choice == "auto" else choice == "quarto"


def set_front_matter(qmd: Path, values: dict) -> None:
    """Replace top-level front-matter lines (`title: ...`) in place, one line each, so cell line numbers hold."""
    lines = qmd.read_text().splitlines(keepends=True)
    end = lines.index("---\n", 1) if lines and lines[0] == "---\n" and "---\n" in lines[1:] else 0
    for key, value in values.items():
        found = [i for i in range(1, end) if lines[i].startswith(f"{key}:")]
        if not found:
            raise RenderError(f"{qmd.name}: no front-matter line '{key}:' to set.")
        lines[found[0]] = f"{key}: {json.dumps(value)}\n"  # a JSON string is a YAML string
    qmd.write_text("".join(lines))


def render_report(
    source_dir: Path, main: str, manifest: dict, build: Path, html_out: Path, pdf_out: Path, run_date: datetime,
    renderer: str = "auto", shared: tuple[Path, ...] = (), front_matter: dict | None = None,
) -> dict:
    """Copy the report sources and figures into `build`, write the manifest, render both formats.

    `shared`: files from elsewhere copied beside the sources (a force report uses the national report's CSS and
    Typst header, so every report looks alike). `front_matter`: values set in the main file's front matter (a force
    report's title names its force). Returns the renderer description the appendix printed.
    """
    if build.exists():
        shutil.rmtree(build)
    shutil.copytree(source_dir, build)
    for path in shared:
        shutil.copyfile(path, build / Path(path).name)
    if front_matter:
        set_front_matter(build / main, front_matter)
    (build / "figures").mkdir(exist_ok=True)
    for name, path in manifest.get("figures", {}).items():
        shutil.copyfile(path, build / "figures" / f"{name}.png")
    quarto = use_quarto(renderer)
    manifest = {**manifest, "renderer": renderer_info(quarto), "rendered_at": run_date.isoformat(timespec="seconds")}
    (build / "_inputs.json").write_text(json.dumps(manifest, indent=2, default=str))
    html_out.parent.mkdir(parents=True, exist_ok=True)
    pdf_out.parent.mkdir(parents=True, exist_ok=True)
    render = render_quarto if quarto else render_fallback
    render(build / main, Path(html_out).resolve(), Path(pdf_out).resolve(), run_date, kernel_env())
    return manifest["renderer"]


def kernel_env() -> dict:
    """Environment for the kernel: cara_eval importable (also from a rule's scripts/ link), no hash salt."""
    import cara_eval

    package_parent = str(Path(cara_eval.__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (package_parent, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "PYTHONHASHSEED": "0", "QUARTO_PYTHON": sys.executable}
