"""The report renders from the result tables, says what they say, and publishes no small count; its PDF pages are
fit to send. The fallback renders always; Quarto renders too when `quarto` is on PATH (CI sets it up from
../shared/quarto), and then both renders must show the same pages."""

import json
import os
import re
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO
from pdf_pages import PDFTOTEXT, boundary_shifts, landmarks, overprinted_words, page_texts, stranded_captions
from report_inputs import ESTIMANDS, write_report_inputs

from cara_eval.common.disclosure import find_small_counts
from cara_eval.report.data import ReportData
from cara_eval.report.formatting import per100, per100_interval, sure_percent
from cara_eval.report.render import (
    KERNEL_START_ATTEMPTS,
    RenderError,
    number_crossrefs,
    parse_qmd,
    render_report,
    set_front_matter,
)
from cara_eval.report.sections.summary import summary_markdown

RUN_DATE = datetime(2026, 11, 26, 23, 40, tzinfo=UTC)
TITLE_DATE = "26 November 2026"
needs_pdftotext = pytest.mark.skipif(PDFTOTEXT is None, reason="pdftotext (poppler-utils) reads the PDF pages")
needs_quarto = pytest.mark.skipif(shutil.which("quarto") is None,
                                  reason="no `quarto` on PATH: .ci/run sets it up from ../shared/quarto (see README)")


def _render(root: Path, manifest: dict, name: str = "out", renderer: str = "fallback"):
    out = root / name
    render_report(REPO / "report", "cara_report.qmd", manifest, root / f"build_{name}", out / "cara_report.html",
                  out / "cara_report.pdf", RUN_DATE, renderer)
    return out


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    manifest = write_report_inputs(root / "results")
    out = _render(root, manifest)
    return root, manifest, out


def _text(html: str) -> str:
    """Visible text, one space between words (punctuation after inline markup such as </strong> kept tight)."""
    text = " ".join(re.sub(r"<[^>]+>", " ", html.replace("&lt;", "<").replace("&gt;", ">")).split())
    return re.sub(r" ([,.;])", r"\1", text)


def test_headline_numbers_in_the_html_equal_the_estimands_table(rendered):
    _, _, out = rendered
    text = _text((out / "cara_report.html").read_text())
    pooled = ESTIMANDS[ESTIMANDS["scope"].eq("pooled") & ESTIMANDS["estimand"].eq("risk_difference_per100")].iloc[0]
    new = ESTIMANDS[ESTIMANDS["scope"].eq("new_force")].iloc[0]
    fewer = round(-pooled["mean"])
    assert f"Out of 100 people given CARA, about {fewer} fewer reoffend within a year" in text
    assert f"between {round(-pooled['q95'])} and {round(-pooled['q05'])} fewer per 100" in text
    tenth = ESTIMANDS.loc[ESTIMANDS["estimand"].eq("pr_reduction_ge_10pct"), "mean"].iloc[0]
    assert (f"We are {round(100 * pooled['prob_reduction'])}% sure that CARA reduces reoffending, "
            f"and {round(100 * tenth)}% sure by at least a tenth") in text
    assert f"from {round(-new['q05'])} fewer to {round(new['q95'])} more" in text
    assert f"{round(100 * new['prob_reduction'])}%" in text


def test_methods_list_every_term_the_data_cannot_identify(rendered):
    _, _, out = rendered
    text = _text((out / "cara_report.html").read_text())
    assert "3 force(s) enter the model. 1 term(s) cannot be identified from these data" in text
    assert "covariate:female constant in every case (none female)" in text


def test_summary_words_follow_the_sign_and_size_of_the_effect(tmp_path):
    harmful = ESTIMANDS.copy()
    harmful.loc[0, ["mean", "q05", "q95", "prob_reduction", "gate_passed"]] = [2.6, 0.4, 4.9, 0.03, False]
    data = ReportData(write_report_inputs(tmp_path, harmful))
    text = summary_markdown(data)
    assert "about 3 more reoffend" in text and "between 0 and 5 more" in text and "We are 3% sure" in text
    assert "Provisional" in text and "Provisional" not in summary_markdown(ReportData(write_report_inputs(tmp_path)))
    assert per100(-0.4) == "about 0.4 fewer" and per100(0.02) == "about the same number"
    assert per100_interval(-3.2, 1.4) == "from 3 fewer to 1 more"
    assert sure_percent(0.9999) == ">99%" and sure_percent(0.001) == "<1%"


def test_no_count_below_the_threshold_is_published(rendered):
    root, manifest, out = rendered
    html = (out / "cara_report.html").read_text()
    # The inputs do hold small counts (7 CARA cases in Norfolk, 3 quarantined rows) ...
    accounting = pd.read_csv(manifest["tables"]["row_accounting"])
    assert (accounting.drop(columns="force") < 10).to_numpy().any()
    assert "&lt;10" in html
    # ... and every count column of every published table shows "<10" or a number >= 10.
    assert find_small_counts(html) == []
    assert html.count("(n)</th>") >= 8  # the scan had count columns to look at
    # The PDF was compiled from the Typst source, whose table cells are the same strings.
    typst = (root / "build_out" / "report.typ").read_text()
    assert "[7]" not in typst and "[\\<10]" in typst


@needs_pdftotext
def test_the_pdf_shows_the_suppression_marker(rendered):
    _, _, out = rendered
    pdf_text = "\n".join(page_texts(out / "cara_report.pdf"))
    assert "<10" in pdf_text and "Out of 100 people given CARA" in pdf_text


def test_failed_gate_is_highlighted_and_renderer_and_run_date_are_stated(rendered):
    _, _, out = rendered
    text = _text((out / "cara_report.html").read_text())
    assert re.search(r"imp2 1\.0800 120 800 3 FAILED", text)
    assert re.search(r"imp1 1\.0020 900 800 0 passed", text)
    assert "Fits that failed the convergence gate: imp2" in text
    assert "Renderer: fallback (nbclient + pandoc + typst, no Quarto CLI) (pandoc 3.9" in text
    assert "report rendered 2026-11-26T23:40:00+00:00" in text


def test_outputs_are_self_contained_and_a_real_pdf(rendered):
    _, _, out = rendered
    html = (out / "cara_report.html").read_text()
    # completeness, forest plot, force map, CEAC, sensitivity, planning: embedded
    assert html.count('src="data:image/png;base64,') == 6
    assert not re.search(r'src="(?!data:)', html)
    pdf = (out / "cara_report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page\b", pdf)) >= 5


def test_render_is_deterministic_given_the_run_date(rendered):
    root, manifest, out = rendered
    again = _render(root, manifest, "again")
    assert (again / "cara_report.html").read_bytes() == (out / "cara_report.html").read_bytes()
    assert (again / "cara_report.pdf").read_bytes() == (out / "cara_report.pdf").read_bytes()


def test_failing_cell_is_named_with_its_file_and_line(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "main.qmd").write_text("---\ntitle: t\n---\n\nText.\n\n{{< include _part.qmd >}}\n")
    (source / "_part.qmd").write_text("# Part\n\n```{python}\n#| label: tbl-broken\n1 / 0\n```\n")
    with pytest.raises(RenderError, match=r"cell 'tbl-broken' \(_part.qmd, line 3\) failed: ZeroDivisionError") as error:
        render_report(source, "main.qmd", {}, tmp_path / "build", tmp_path / "a.html", tmp_path / "a.pdf", RUN_DATE,
                      "fallback")
    assert "\x1b[" not in str(error.value)  # the log stays readable: no terminal colour codes


RENDERERS = ["fallback", pytest.param("quarto", marks=needs_quarto)]
# A real kernelspec named python3 whose first starts exit at once, as a kernel that lost its ports to another does.
DYING_KERNEL = """import os, runpy, sys
starts = os.environ["CARA_TEST_KERNEL_STARTS"]
with open(starts, "a") as file:
    file.write("start\\n")
if sum(1 for _ in open(starts)) <= int(os.environ["CARA_TEST_KERNEL_DEATHS"]):
    sys.exit(1)
runpy.run_module("ipykernel_launcher", run_name="__main__")
"""


@pytest.mark.parametrize("renderer", RENDERERS)
@pytest.mark.parametrize("deaths", [2, 3])
def test_a_kernel_that_dies_at_start_is_started_again_a_bounded_number_of_times(tmp_path, monkeypatch, renderer,
                                                                              deaths):
    kernel_dir = tmp_path / "jupyter" / "kernels" / "python3"
    kernel_dir.mkdir(parents=True)
    (tmp_path / "dying_kernel.py").write_text(DYING_KERNEL)
    (kernel_dir / "kernel.json").write_text(json.dumps(
        {"argv": [sys.executable, str(tmp_path / "dying_kernel.py"), "-f", "{connection_file}"],
         "display_name": "Python 3", "language": "python"}))
    starts = tmp_path / "starts.txt"
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("CARA_TEST_KERNEL_STARTS", str(starts))
    monkeypatch.setenv("CARA_TEST_KERNEL_DEATHS", str(deaths))
    source = tmp_path / "src"
    source.mkdir()
    (source / "main.qmd").write_text("---\ntitle: t\n---\n\n```{python}\nprint(6 * 7)\n```\n")
    html = tmp_path / "a.html"

    def render():
        render_report(source, "main.qmd", {}, tmp_path / "build", html, tmp_path / "a.pdf", RUN_DATE, renderer)

    if deaths < KERNEL_START_ATTEMPTS:
        render()
        assert "42" in html.read_text()
        assert starts.read_text().count("start") > deaths  # Quarto starts one kernel per format
    else:
        with pytest.raises(RenderError, match=f"kernel died at start in all {KERNEL_START_ATTEMPTS} attempts"):
            render()
        assert starts.read_text().count("start") == KERNEL_START_ATTEMPTS


def test_includes_expand_recursively_with_cell_options(tmp_path):
    (tmp_path / "main.qmd").write_text("---\ntitle: T\n---\nIntro\n\n{{< include _a.qmd >}}\n\nOutro\n")
    (tmp_path / "_a.qmd").write_text("A text\n{{< include _b.qmd >}}\n")
    (tmp_path / "_b.qmd").write_text('```{python}\n#| label: fig-x\n#| fig-cap: "A caption: with colon"\nx = 1\n```\n')
    front, blocks = parse_qmd(tmp_path / "main.qmd")
    assert front == {"title": "T"}
    assert [(b.kind, b.text if b.kind == "markdown" else b.options) for b in blocks] == [
        ("markdown", "Intro"),
        ("markdown", "A text"),
        ("code", {"label": "fig-x", "fig-cap": "A caption: with colon"}),
        ("markdown", "Outro"),
    ]
    assert blocks[2].origin == "_b.qmd, line 1"


def test_front_matter_title_is_set_in_place_so_cell_lines_still_point_at_the_source(tmp_path):
    qmd = tmp_path / "force.qmd"
    qmd.write_text('---\ntitle: "Feedback"  # named by the rule\ndate-format: "D MMMM YYYY"\n---\n\n'
                   "```{python}\n#| label: tbl-x\nx = 1\n```\n")
    before = parse_qmd(qmd)[1][0].origin
    set_front_matter(qmd, {"title": "Project CARA: feedback for Avon and Somerset"})
    front, blocks = parse_qmd(qmd)
    assert front == {"title": "Project CARA: feedback for Avon and Somerset", "date-format": "D MMMM YYYY"}
    assert blocks[0].origin == before == "force.qmd, line 6"
    with pytest.raises(RenderError, match="no front-matter line 'subtitle:' to set"):
        set_front_matter(qmd, {"subtitle": "x"})


def test_cross_references_are_numbered_in_order_of_appearance():
    markdown = "See @fig-b and @tbl-a.\n\n![Cap A](a.png){#fig-a}\n\n![Cap B](b.png){#fig-b width=100%}\n\n: T {#tbl-a}\n"
    html = number_crossrefs(markdown, prefix_captions=True)
    assert "See Figure 2 and Table 1." in html
    assert "![Figure 1: Cap A](a.png){#fig-a}" in html and ": Table 1: T" in html
    assert "![Cap B](b.png){#fig-b width=100%}" in number_crossrefs(markdown, prefix_captions=False)


def _workdir(root: Path) -> Path:
    """A workflow directory with the repo's config, tiny settings and the report's inputs already in results/."""
    import yaml
    from conftest import deep_merge, tiny_config

    shutil.copytree(REPO / "config", root / "config")
    config = deep_merge(tiny_config(), {"imputation": {"m": 2}})
    (root / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    for force in config["forces"]:
        mapping = root / "config" / "forces" / f"{force}.yaml"
        if not mapping.is_file():  # until the real mapping files exist: only what the report reads from them
            mapping.parent.mkdir(parents=True, exist_ok=True)
            mapping.write_text(yaml.safe_dump({"force": force, "display_name": force.title(),
                                               "design": {"comparison": "historical"}}))
    write_report_inputs(root / "results")
    # Raw folders as a real run has them, older than the seeded results: with a checkpoint in the workflow (the
    # leave-one-force-out refits) Snakemake resolves every rule's inputs, provenance's raw files among them.
    for force in config["forces"]:
        raw = root / config["raw_dir"] / force / f"{force}_cases.csv"
        raw.parent.mkdir(parents=True)
        raw.write_text("seeded\n")
        os.utime(raw, (0, 0))
    return root


def test_report_rule_renders_archives_and_reports_what_changed(tmp_path):
    from conftest import run_snakemake

    workdir = _workdir(tmp_path / "work")
    target = ["--allowed-rules=report_render", "results/report/cara_report.html"]
    run_snakemake(workdir, *target)
    archive = workdir / "results" / "report" / "archive"
    first = sorted(archive.iterdir())
    assert len(first) == 1 and {p.name for p in first[0].iterdir()} == {
        "cara_report.html", "cara_report.pdf", "run.json", "estimands.csv"}
    assert "This is the first archived run" in (workdir / "results/report/cara_report.html").read_text()

    # New data: a raw file's checksum and the pooled estimate move; the next report says so.
    run_json = workdir / "results/provenance/run.json"
    run_json.write_text(run_json.read_text().replace("a" * 64, "b" * 64))
    estimands = ESTIMANDS.copy()
    estimands.loc[0, "mean"] = -3.3
    estimands.to_csv(workdir / "results/model/any_reoffence/pooled/estimands.csv", index=False)
    run_snakemake(workdir, *target)
    assert len(list(archive.iterdir())) == 2  # the first render is kept
    text = _text((workdir / "results/report/cara_report.html").read_text())
    assert f"Compared with the previous run archived as {first[0].name}" in text
    assert "changed: data/raw/norfolk/norfolk_cases.xlsx (raw)" in text
    assert "risk difference per100 (pooled) -4.3 -3.3 +1" in text
    assert "about 3 fewer reoffend" in text
    assert (workdir / "logs/report_render/report.log").is_file()


def test_the_previous_run_is_the_last_archived_even_after_ten_renders_in_one_second(tmp_path):
    from cara_eval.report.archive import archive_run, latest_archive

    source = tmp_path / "run.json"
    source.write_text("{}")
    same_second = datetime(2026, 12, 4, 10, 0, 0, tzinfo=UTC)
    made = [archive_run(tmp_path / "archive", same_second, {"run.json": source}) for _ in range(12)]
    assert made[-1].name == "20261204T100000Z-11"
    assert latest_archive(tmp_path / "archive")["archived"] == made[-1].name  # text order would pick "-9"
    assert latest_archive(tmp_path / "absent") == {}


IDENTIFIER_FIELDS = ("crime_ref", "offender_id", "victim_id", "offender_name", "victim_name", "offender_dob")


def _raw_identifiers(workdir: Path) -> set[str]:
    """Every direct identifier in the raw synthetic extracts, read through each force's mapping file."""
    import yaml

    identifiers = set()
    for mapping_path in sorted((workdir / "config" / "forces").glob("*.yaml")):
        mapping = yaml.safe_load(mapping_path.read_text())
        cases = mapping["cases"]
        columns = cases.get("columns") or {}
        names = [field if cases.get("identity") else columns.get(field) for field in IDENTIFIER_FIELDS]
        path = workdir / "data" / "raw" / mapping["force"] / cases["file"]
        if not path.is_file():
            continue
        if cases["format"] == "excel":
            raw = pd.read_excel(path, sheet_name=cases.get("sheet") or 0, dtype=str)
        elif cases["format"] == "parquet":
            raw = pd.read_parquet(path).astype(str)
        else:
            raw = pd.read_csv(path, dtype=str, encoding=cases.get("encoding") or "utf-8",
                              sep=cases.get("delimiter") or ",")
        for name in names:
            if name and name in raw.columns:
                # Excel-serial dates of birth are bare numbers: only identifiers with letters or separators count.
                identifiers |= {v for v in raw[name].dropna() if len(v) >= 6 and not v.replace(".", "").isdigit()}
    return identifiers


@pytest.mark.slow
def test_real_pipeline_puts_no_identifier_in_results_and_no_small_count_in_the_report(tiny_run):
    """The whole tiny workflow, synthetic extracts to report: nothing personal anywhere under results/."""
    import pandas as pd
    import yaml

    workdir = tiny_run
    identifiers = _raw_identifiers(workdir)
    assert len(identifiers) > 100  # the scan has something to find
    outputs = [p for p in (workdir / "results").rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in outputs) and any(p.suffix == ".pdf" for p in outputs)
    texts = {}
    for path in outputs:
        if path.suffix == ".parquet":  # compressed on disk: scan the values, not the bytes
            texts[path] = pd.read_parquet(path).astype(str).to_csv(index=False)
        else:
            texts[path] = path.read_bytes().decode("utf-8", errors="ignore")
    leaks = [(str(p.relative_to(workdir)), i) for p, text in texts.items() for i in identifiers if i in text]
    assert leaks == []
    html = (workdir / "results" / "report" / "cara_report.html").read_text()
    threshold = yaml.safe_load((workdir / "config/config.yaml").read_text())["report"]["disclosure_threshold"]
    assert find_small_counts(html, threshold) == []


@pytest.mark.slow
@needs_pdftotext
def test_no_identifier_in_the_text_of_any_pdf(tiny_run):
    """The PDFs' bytes are compressed, so the scan above cannot read them: their text, page by page."""
    identifiers = _raw_identifiers(tiny_run)
    pdfs = sorted((tiny_run / "results").rglob("*.pdf"))
    assert pdfs and len(identifiers) > 100
    texts = {pdf: "\n".join(page_texts(pdf)) for pdf in pdfs}
    assert all(texts.values())
    assert [(str(pdf.relative_to(tiny_run)), i) for pdf, text in texts.items() for i in identifiers if i in text] == []


def _pdf_link(html: str) -> str:
    """Where the HTML report's link to its PDF points (Quarto: "Other Formats"; the fallback: the same words)."""
    return re.search(r'<a href="([^"]+)"[^>]*>(?:<i class="bi bi-file-pdf"></i>)?PDF</a>', html).group(1)


def _assert_pages_fit_to_send(out: Path):
    """Nothing overprinted, no caption without its table, the 31-row data specification split over pages."""
    pdf = out / "cara_report.pdf"
    assert overprinted_words(pdf) == []
    assert stranded_captions(pdf) == []
    pages = page_texts(pdf)
    spec_starts = next(i for i, text in enumerate(pages) if "The canonical case fields" in text)
    spec_ends = next(i for i, text in enumerate(pages) if re.search(r"^\s*event_observed\b", text, re.M))
    assert spec_ends > spec_starts
    assert TITLE_DATE in pages[0]


@needs_pdftotext
def test_pdf_pages_are_fit_to_send_and_the_html_links_its_pdf(rendered):
    _, _, out = rendered
    _assert_pages_fit_to_send(out)
    html = (out / "cara_report.html").read_text()
    assert (out / "cara_report.html").parent.joinpath(_pdf_link(html)).resolve() == (out / "cara_report.pdf").resolve()
    assert TITLE_DATE in html


@needs_pdftotext
def test_a_long_name_in_a_squeezed_table_wraps_instead_of_running_into_the_next_column(tmp_path):
    """Nine force columns squeeze the field column below the width of "workshop1_attended" (the fallback printed
    "workshop1_attended12%"); the header lets it break after an underscore, adding no character to the text."""
    import typst

    forces = ["Avon and Somerset", "Cambridgeshire", "Dorset", "Hampshire", "Leicestershire", "Norfolk",
              "Thames Valley", "West Midlands", "West Yorkshire"]
    cells = ", ".join(f"[{c}]" for c in ["Field", *forces, "workshop1\\_attended", *["12%"] * len(forces)])
    source = tmp_path / "table.typ"
    source.write_text((REPO / "report" / "cara_report_header.typ").read_text()
                      + f"\n#set page(paper: \"a4\", margin: 2cm)\n#table(columns: 10, {cells})\n")
    typst.compile(str(source), output=str(tmp_path / "table.pdf"))
    text = page_texts(tmp_path / "table.pdf")[0]
    assert "workshop1_attended12%" not in text.replace(" ", "")
    assert re.search(r"workshop1_\s+12%.*\n\s*attended", text)
    assert "\u200b" not in text
    assert overprinted_words(tmp_path / "table.pdf") == []


@needs_quarto
@needs_pdftotext
def test_quarto_renders_the_same_report_page_for_page(rendered):
    root, manifest, fallback = rendered
    quarto = _render(root, manifest, "quarto", "quarto")
    # Same headings and captions on as many pages; a boundary may move by one landmark (a heading one layout fits
    # at the foot of a page), never more: tables split alike.
    assert max(boundary_shifts(landmarks(quarto / "cara_report.pdf"), landmarks(fallback / "cara_report.pdf"))) <= 1
    _assert_pages_fit_to_send(quarto)
    html = (quarto / "cara_report.html").read_text()
    text = _text(html)
    assert "Renderer: Quarto (quarto " in text and TITLE_DATE in text
    assert "Out of 100 people given CARA, about 4 fewer reoffend within a year" in text
    assert find_small_counts(html) == [] and html.count("(n)</th>") >= 8
    assert (quarto / _pdf_link(html)).resolve() == (quarto / "cara_report.pdf").resolve()
    assert '<col style="width' not in html  # columns sized by their content, as in the fallback
    assert not re.search(r'src="(?!data:)', html)
