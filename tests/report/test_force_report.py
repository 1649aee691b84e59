"""Every force gets its own feedback report from a real Snakemake run of the tiny config: a flag-only force
(Cambridgeshire), a force with small cells (Norfolk: a handful of CARA cases) and a complete one (Hampshire). The
reports say what the results tables say, publish no small count and fit on two to four pages."""

import re
from html import unescape

import pandas as pd
import pytest
import yaml
from conftest import deep_merge, make_workdir, run_snakemake, tiny_config
from pdf_pages import PDFTOTEXT, overprinted_words, page_texts, stranded_captions
from report_inputs import write_report_inputs

from cara_eval.common.disclosure import find_small_counts
from cara_eval.planning import months_to_conclusive_markdown
from cara_eval.report.data import ReportData
from cara_eval.report.force.effect import effect_markdown, effect_table
from cara_eval.report.force.planning import is_planned, planning_markdown
from cara_eval.report.formatting import effect_cell, per100, per100_interval

FORCES = {"hampshire": "Hampshire", "norfolk": "Norfolk", "cambridgeshire": "Cambridgeshire"}
FLAG_ONLY, SMALL = "cambridgeshire", "norfolk"


@pytest.fixture(scope="module")
def force_run(tmp_path_factory):
    """The tiny config with a flag-only force in place of West Yorkshire; only what the force reports need."""
    config = deep_merge(tiny_config(), {"forces": list(FORCES)})
    workdir = make_workdir(tmp_path_factory.mktemp("force_reports") / "work", config)
    targets = [f"results/report/forces/{force}.{ext}" for force in FORCES for ext in ("html", "pdf")]
    run_snakemake(workdir, *targets, "results/report/force_map.png")
    return workdir


def _text(html: str) -> str:
    """Visible text of an HTML page, one space between words."""
    text = " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())
    return re.sub(r" ([,.;)])", r"\1", text).replace("’", "'")


def _html(workdir, force) -> str:
    return (workdir / "results" / "report" / "forces" / f"{force}.html").read_text()


@pytest.mark.slow
def test_every_force_gets_a_report_from_one_job_each(force_run):
    for force, name in FORCES.items():
        html = _html(force_run, force)
        assert f"Project CARA: feedback for {name}" in _text(html)
        assert html.count('src="data:image/png;base64,') == 2  # the planning figure and the map, embedded
        assert (force_run / "results/report/forces" / f"{force}.pdf").read_bytes().startswith(b"%PDF")
        assert (force_run / "benchmarks/report_force" / f"{force}.tsv").is_file()
        assert (force_run / "logs/report_force" / f"{force}.log").is_file()
    log = (force_run / "logs/report_force_map/force_map.log").read_text()
    assert "force map: 3 forces coloured, 40 tiles empty, not placed: none" in log


@pytest.mark.slow
def test_effects_in_words_are_the_forest_tables(force_run):
    forest = pd.read_csv(force_run / "results/model/any_reoffence/pooled/forest.csv")
    rows = forest.set_index(["force", "method"])
    pooled = forest[forest["method"].eq("pooled")].iloc[0]
    for force, name in FORCES.items():
        text = _text(_html(force_run, force))
        alone, partial = rows.loc[(force, "no_pooling")], rows.loc[(force, "partial_pooling")]
        assert f"Of 100 CARA cases like {name}'s, {per100(alone['mean'])} reoffended within a year" in text
        assert f"plausible range: {per100_interval(alone['q05'], alone['q95'])} per 100" in text
        assert (f"the estimate for {name} is {per100(partial['mean'])} per 100 "
                f"({per100_interval(partial['q05'], partial['q95'])})") in text
        assert f"Nationally, {per100(pooled['mean'])} per 100 CARA cases" in text
        assert effect_cell(partial["mean"], partial["q05"], partial["q95"]) in text  # "+0.0", never "-0.0"


@pytest.mark.slow
def test_months_to_a_conclusive_answer_are_the_planning_tables(force_run):
    conclusive = pd.read_csv(force_run / "results/planning/months_to_conclusive.csv")
    target = yaml.safe_load((force_run / "config/config.yaml").read_text())["planning"]["assurance_target"]
    for force, name in FORCES.items():
        text = _text(_html(force_run, force))
        assert "How much more data until the answer is conclusive" in text
        assert _text(months_to_conclusive_markdown(conclusive, target, force, name)) in text
        row = conclusive[conclusive["force"].eq(force)].iloc[0]  # the force's own row, not the national one
        assert f"{name}'s own estimate" in text and f"{row['current_q05']:.1f} to {row['current_q95']:.1f}" in text


@pytest.mark.slow
def test_no_small_count_is_published_and_the_small_force_shows_the_marker(force_run):
    threshold = yaml.safe_load((force_run / "config/config.yaml").read_text())["report"]["disclosure_threshold"]
    accounting = pd.read_csv(force_run / "results/ingest/row_accounting.csv").set_index("force")
    process = pd.read_csv(force_run / "results/quality/process_measures.csv").set_index("force")
    assert accounting.loc[SMALL, "ineligible"] < threshold and process.loc[SMALL, "n_cara"] < threshold
    for force in FORCES:
        html = _html(force_run, force)
        assert find_small_counts(html, threshold) == []
        assert html.count("(n)</th>") >= 3  # the scan had count columns to look at
    text = _text(_html(force_run, SMALL))
    assert re.search(rf"Not eligible for CARA <{threshold} \S", text)
    assert re.search(rf"Norfolk \(this force\) <{threshold} <{threshold} suppressed suppressed", text)
    assert "The share of Norfolk's CARA cases in which the victim was contacted is not shown" in text


@pytest.mark.slow
@pytest.mark.skipif(PDFTOTEXT is None, reason="pdftotext (poppler-utils) reads the PDF pages")
def test_the_small_forces_pdf_shows_the_marker_not_the_count(force_run):
    threshold = yaml.safe_load((force_run / "config/config.yaml").read_text())["report"]["disclosure_threshold"]
    pdf = "\n".join(page_texts(force_run / "results/report/forces" / f"{SMALL}.pdf"))
    assert f"<{threshold}" in pdf and not re.search(r"Not eligible for CARA\s+[0-9]\s", pdf)


@pytest.mark.slow
def test_a_flag_only_force_is_told_what_dated_reoffences_would_add(force_run):
    text = _text(_html(force_run, FLAG_ONLY))
    assert "reoffence_count n/s" in text and "harm n/s" in text
    assert re.search(r"reoffence_count not supplied dated reoffences: the risk's shape over the year and time to "
                     r"first reoffence; the number of reoffences \(secondary outcome\)", text)
    assert re.search(r"ethnicity not supplied fewer values imputed from the other forces' cases", text)
    complete = _text(_html(force_run, "hampshire"))
    assert "nothing to add" in complete and "What recording it would add" not in complete


@pytest.mark.slow
@pytest.mark.skipif(PDFTOTEXT is None, reason="pdftotext (poppler-utils) reads the PDF pages")
def test_pdf_reports_are_two_to_four_pages_fit_to_send(force_run):
    for force in FORCES:
        pdf = force_run / "results/report/forces" / f"{force}.pdf"
        pages = page_texts(pdf)
        assert 2 <= len(pages) <= 4, f"{force}: {len(pages)} pages"
        assert overprinted_words(pdf) == [] and stranded_captions(pdf) == []



@pytest.mark.slow
def test_the_default_run_renders_every_forces_report_and_the_national_map(tiny_run):
    forces = tiny_config()["forces"]
    reports = sorted(p.name for p in (tiny_run / "results/report/forces").iterdir())
    assert reports == sorted(f"{force}.{ext}" for force in forces for ext in ("html", "pdf"))
    national = _text((tiny_run / "results/report/cara_report.html").read_text())
    assert "Effects on the map" in national and "43 territorial police forces" in national
    log = (tiny_run / "logs/report_force_map/force_map.log").read_text()
    assert f"force map: {len(forces)} forces coloured, {43 - len(forces)} tiles empty, not placed: none" in log


def test_a_force_outside_the_model_is_told_why_and_shown_the_national_estimate(tmp_path):
    """A force without comparison cases enters no fit: no forest rows, its term left out with the reason."""
    manifest = write_report_inputs(tmp_path)
    forest = pd.read_csv(manifest["tables"]["forest"])
    forest[~forest["force"].eq("norfolk")].to_csv(manifest["tables"]["forest"], index=False)
    terms = pd.read_csv(manifest["tables"]["terms"])
    terms.loc[terms["term"].eq("force:norfolk"), ["included", "reason"]] = [False, "no comparison cases"]
    terms.to_csv(manifest["tables"]["terms"], index=False)
    data = ReportData({**manifest, "force": "norfolk"})
    assert effect_markdown(data) == ("Norfolk's cases could not enter the effect model (no comparison cases), so "
                                     "there is no estimate for it yet. Nationally, about 4 fewer per 100 CARA cases "
                                     "(between 2 and 7 fewer; 90% interval).")
    assert effect_table(data)["Estimate"].tolist() == ["National average (all forces)"]
    conclusive = pd.read_csv(manifest["tables"]["planning_conclusive"])
    conclusive[~conclusive["force"].eq("norfolk")].to_csv(manifest["tables"]["planning_conclusive"], index=False)
    assert not is_planned(data)
    assert planning_markdown(data).startswith("Norfolk is not in the effectiveness model")
