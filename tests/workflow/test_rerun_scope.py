"""Rerun scope after data and config updates, and resume after a crash (issue "HPC and data updates").

Each scenario copies one complete run of the tiny config, makes one change, and asks Snakemake's own dry run
which jobs it would run: a force's new extract reruns that force's ingest and everything pooled downstream, a
prior reruns the fits but no ingest or imputation, and a run killed mid-fit resumes without redoing finished fits.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, make_workdir, run_snakemake, tiny_config

pytestmark = [pytest.mark.slow, pytest.mark.reads_tiny_run]

EXTRA_FORCE = "dorset"
POOLED_RULES = ("impute_dataset", "model_fit", "model_pool", "report_render")
RESUME_TIME_LIMIT_SECONDS = 600


def job_blocks(log_text: str, kind: str = "(?:local)?rule") -> list[tuple[str, str, int]]:
    """(rule, wildcards, threads) of every job block (`rule X:` / `localrule X:`) in a Snakemake log or dry run."""
    blocks = []
    for match in re.finditer(rf"^([ \t]*){kind} (\w+):\n((?:\1[ \t]+\S.*\n)*)", log_text, re.M):
        body = match.group(3)
        wildcards = re.search(r"^\s+wildcards: (.*)$", body, re.M)
        threads = re.search(r"^\s+threads: (\d+)$", body, re.M)
        blocks.append((match.group(2), wildcards.group(1) if wildcards else "",
                       int(threads.group(1)) if threads else 1))
    return blocks


def planned(workdir: Path, *args: str) -> dict[str, set[str]]:
    """Rule -> wildcards of the jobs a dry run would execute (the default target's own `all` left out)."""
    jobs = {}
    for rule, wildcards, _ in job_blocks(run_snakemake(workdir, "--dry-run", *args).stdout):
        if rule != "all":
            jobs.setdefault(rule, set()).add(wildcards)
    return jobs


def built_rules(workdir: Path) -> set[str]:
    """Rules in the default target's DAG, i.e. the rules the complete run built (Snakemake's own summary)."""
    summary = run_snakemake(workdir, "--detailed-summary").stdout.splitlines()
    return {row.split("\t")[2] for row in summary[summary.index(next(r for r in summary if r.startswith("output_file"))) + 1:]
            if row.count("\t") >= 2}


def require_rules(built: set[str], *rules: str) -> None:
    missing = [rule for rule in rules if rule not in built]
    assert not missing, f"not in the default target (get_final_output): {', '.join(missing)}"


def write_config(workdir: Path, config: dict) -> None:
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def read_config(workdir: Path) -> dict:
    return yaml.safe_load((workdir / "config" / "config.yaml").read_text())


@pytest.fixture(scope="module")
def extra_force_raw(tmp_path_factory) -> Path:
    """Raw extract of a force the tiny config does not analyse, to add later."""
    config = tiny_config()
    config["forces"] = [*config["forces"], EXTRA_FORCE]
    workdir = make_workdir(tmp_path_factory.mktemp("extra_force") / "work", config)
    return workdir / config["raw_dir"] / EXTRA_FORCE


@pytest.fixture(scope="module")
def built(request, extra_force_raw) -> set[str]:
    """Rules the complete tiny run built (each scenario names the rules it is about)."""
    return built_rules(request.getfixturevalue("tiny_run"))


@pytest.fixture
def updated_run(request, built, tmp_path) -> Path:
    """A private copy of the complete tiny run (mtimes and Snakemake's metadata kept), which a test may change."""
    copy = tmp_path / "work"
    shutil.copytree(request.getfixturevalue("tiny_run"), copy, symlinks=True)
    return copy


def test_complete_run_copy_has_nothing_to_do(updated_run, built):
    assert "ingest_force" in built
    assert planned(updated_run) == {}


def test_one_force_extract_changes_reruns_that_force_and_pooled_steps(updated_run, built):
    require_rules(built, "ingest_force", *POOLED_RULES)
    config = read_config(updated_run)
    changed, *others = config["forces"]
    extract = sorted((updated_run / config["raw_dir"] / changed).iterdir())[0]
    time.sleep(1)  # a later mtime than the run's outputs, on file systems with 1 s resolution
    with extract.open("ab") as handle:
        handle.write(b"\n")
    jobs = planned(updated_run)
    assert jobs["ingest_force"] == {f"force={changed}"}, f"only {changed}, not {others}, needs ingesting again"
    for rule in POOLED_RULES:
        assert rule in jobs, f"{rule} does not rerun after {changed}'s extract changed"


def test_report_text_change_reruns_only_the_render(updated_run, built):
    require_rules(built, "report_render")
    summary = run_snakemake(updated_run, "--detailed-summary").stdout
    rows = [line.split("\t") for line in summary.splitlines()[1:] if "\treport_render\t" in line]
    inputs = {name for row in rows for name in row[4].split(",")}
    report_text = [name for name in inputs if "/report/" in name and not name.startswith("results/")]
    assert report_text, f"report_render declares no report text among its inputs: {sorted(inputs)}"
    # The text lives in the repository; making the rendered outputs older is the same as making the text newer.
    for row in rows:
        os.utime(updated_run / row[0], (1_000_000_000, 1_000_000_000))
    assert set(planned(updated_run)) == {"report_render"}


def first_prior(model_config: dict) -> tuple[str, str]:
    """(prior name, parameter) of the first numeric scale parameter under config model.priors."""
    for name, spec in model_config["priors"].items():
        if isinstance(spec.get("sigma"), (int, float)):
            return name, "sigma"
    raise AssertionError("config model.priors has no prior with a numeric sigma")


def test_prior_change_reruns_fits_and_report_not_ingest_or_imputation(updated_run, built):
    require_rules(built, "ingest_force", "impute_dataset", "model_fit", "model_pool", "report_render")
    config = read_config(updated_run)
    name, parameter = first_prior(config["model"])
    config["model"]["priors"][name][parameter] *= 2
    write_config(updated_run, config)
    jobs = planned(updated_run)
    assert "ingest_force" not in jobs and "impute_dataset" not in jobs and "impute_mnar" not in jobs
    fits = list((updated_run / "results" / "model").glob("*/*/idata.nc"))
    assert len(jobs["model_fit"]) == len(fits), "every fit must rerun after a prior changed"
    for rule in ("model_pool", "report_render"):
        assert rule in jobs, f"{rule} does not rerun after a prior changed"


def test_added_force_runs_its_ingest_and_reruns_pooled_steps(updated_run, built, extra_force_raw):
    require_rules(built, "ingest_force", *POOLED_RULES)
    config = read_config(updated_run)
    assert EXTRA_FORCE not in config["forces"]
    shutil.copytree(extra_force_raw, updated_run / config["raw_dir"] / EXTRA_FORCE)
    config["forces"] = [*config["forces"], EXTRA_FORCE]
    write_config(updated_run, config)
    jobs = planned(updated_run)
    assert jobs["ingest_force"] == {f"force={EXTRA_FORCE}"}
    for rule in POOLED_RULES:
        assert rule in jobs, f"{rule} does not rerun after {EXTRA_FORCE} was added"


def snakemake_command(workdir: Path, *args: str) -> list[str]:
    """The command conftest.run_snakemake runs, for a run this test must kill part-way."""
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
            "--configfile", str(workdir / "config" / "config.yaml"), *args]


def kill_during_second_fit(workdir: Path) -> str:
    """Refit every model and SIGKILL the run whole (Snakemake and its jobs) once one fit has finished and the next
    has started: a crashed node or a killed login session. Returns the run's log."""
    proc = subprocess.Popen(snakemake_command(workdir, "--cores", "2", "--forcerun", "model_fit"), cwd=workdir,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            env=dict(os.environ, PYTHONHASHSEED="0"))
    lines, second_fit, deadline = [], False, time.monotonic() + RESUME_TIME_LIMIT_SECONDS
    try:
        for line in proc.stdout:
            lines.append(line)
            if re.match(r"(?:local)?rule model_fit:", line) and any("(Rule: model_fit)" in seen for seen in lines):
                second_fit = True
            if second_fit and re.match(r"\s+wildcards:", line):
                time.sleep(3)  # well inside the next fit: its outputs may be partly written
                break
            if time.monotonic() > deadline:
                raise AssertionError("no second model_fit started in time:\n" + "".join(lines[-40:]))
        else:
            pytest.skip("the run finished before a second model_fit started: nothing to kill")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return "".join(lines)


def test_run_killed_during_fitting_resumes_without_redoing_finished_fits(updated_run, built):
    require_rules(built, "model_fit", "model_pool")
    model_dir = updated_run / "results" / "model"
    uninterrupted = {p: pd.read_csv(p) for p in model_dir.glob("*/pooled/estimands.csv")}
    assert uninterrupted

    log = kill_during_second_fit(updated_run)
    started = [wc for rule, wc, _ in job_blocks(log) if rule == "model_fit"]
    finished = re.findall(r"Finished jobid: (\d+) \(Rule: model_fit\)", log)
    assert len(started) == len(finished) + 1 == 2
    killed = dict(pair.split("=") for pair in started[-1].split(", "))
    killed_fit = model_dir / killed["outcome"] / killed["dataset"]
    after_kill = {p: p.stat().st_mtime_ns for p in model_dir.glob("*/*/idata.nc")}

    # Snakemake removed the fit's old outputs when it started; a file the kill left half-written (made sure of
    # here) never passes for a complete one.
    killed_fit.mkdir(parents=True, exist_ok=True)
    with (killed_fit / "idata.nc").open("ab") as partial:
        partial.write(b"half-written")
    refused = run_snakemake(updated_run, "--dry-run", check=False)
    assert refused.returncode != 0 and "IncompleteFilesException" in refused.stderr + refused.stdout

    # The next invocation (after releasing the dead run's lock) redoes only what had not finished.
    run_snakemake(updated_run, "--unlock")
    jobs = planned(updated_run, "--rerun-incomplete")
    assert "ingest_force" not in jobs and "impute_dataset" not in jobs
    assert jobs["model_fit"] == {started[-1]}, "only the fit the kill interrupted runs again"
    run_snakemake(updated_run, "--rerun-incomplete")
    assert planned(updated_run) == {}
    untouched = {p for p, mtime in after_kill.items() if p.stat().st_mtime_ns == mtime}
    assert untouched == {p for p in after_kill if p.parent != killed_fit}, "a finished fit ran again"
    assert (killed_fit / "idata.nc").is_file()
    for path, estimands in uninterrupted.items():  # same seed and threads: the numbers of the uninterrupted run
        pd.testing.assert_frame_equal(pd.read_csv(path), estimands)
