"""The workflow through the SLURM executor with profiles/slurm, on the one-node cluster of .ci/slurm/start_cluster.sh:
every job runs as a SLURM job with the CPUs and memory the profile asks for, and the numbers equal the local tiny run
(conftest's `tiny_run`, the same config and data run with `--cores 2`)."""

import os
import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import arviz as az
import pandas as pd
import pytest
import yaml
from conftest import REPO, make_workdir, run_snakemake
from test_envs import rule_blocks
from test_rerun_scope import job_blocks

pytestmark = pytest.mark.reads_tiny_run

SLURM_PROFILE = REPO / "profiles" / "slurm"
PROFILES = sorted((REPO / "profiles").glob("*/config.yaml"))
# At most 2 threads per job (the CI node has 2 CPUs; the profile gives fits 4), as in the local run. SLURM jobs start
# with an empty PyTensor compile cache, the local run's fits share a warm one: equal outputs show that this changes
# no draw.
PINNED_THREADS = ("--max-threads", "2")
# The CI cluster has no accounting database: job states come from squeue (slurm.conf keeps them 10 min).
CI_CLUSTER_ARGS = ("--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
                   "--seconds-between-status-checks", "2", "--jobs", "4")
TIME_LIMIT_SECONDS = 900
# Fields that record when a run happened, not what it computed.
RUN_DATE_FIELDS = {"run_date"}
COMPARED_SUFFIXES = {".csv", ".tsv", ".parquet", ".json", ".nc"}


def slurm_unavailable_reason() -> str | None:
    if os.environ.get("CARA_TEST_SLURM") != "1":
        return "CARA_TEST_SLURM is not 1 (.ci/run sets it and starts the cluster with .ci/slurm/start_cluster.sh)"
    if shutil.which("sinfo") is None:
        return "sinfo not found: no SLURM client installed (bash .ci/slurm/start_cluster.sh installs one)"
    probe = subprocess.run(["sinfo", "--noheader", "--format", "%T"], capture_output=True, text=True, timeout=20)
    if probe.returncode != 0 or not re.search(r"idle|mixed|allocated", probe.stdout):
        return f"sinfo shows no usable node: {probe.stdout.strip() or probe.stderr.strip()}"
    return None


@pytest.fixture(scope="module")
def slurm_targets() -> list[str]:
    """What both runs build: per-force jobs, two-thread imputation jobs, grouped jobs and the model fits pooled
    across imputations (the report itself carries its run date, so its numbers are compared in the tables)."""
    return ["results/ingest/cases.parquet", "results/ingest/row_accounting.csv", "results/quality/completeness.csv",
            "results/quality/case_mix.csv", "results/impute/cc.parquet",
            "results/model/any_reoffence/pooled/estimands.csv"]


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.parent.name)
def test_profile_names_only_rules_the_workflow_has(profile):
    """Snakemake ignores settings for unknown rules: a renamed rule would silently lose its threads or memory."""
    settings = yaml.safe_load(profile.read_text())
    named = set(settings.get("set-threads", {})) | set(settings.get("set-resources", {})) | set(settings.get("groups", {}))
    assert named, f"{profile} sets nothing per rule"
    unknown = named - set(rule_blocks())
    assert not unknown, f"{profile.parent.name} profile names rules that do not exist: {sorted(unknown)}"


def test_every_benchmarked_rule_has_cluster_resources():
    """Every rule that runs a job has a benchmark:, and on SLURM its own memory and time limits."""
    settings = yaml.safe_load((SLURM_PROFILE / "config.yaml").read_text())
    benchmarked = {rule for rule, (_, block) in rule_blocks().items() if re.search(r"^\s+benchmark:", block, re.M)}
    assert benchmarked == set(rule_blocks()) - {"calibration"}  # calibration: a target, it runs no job of its own
    lacking = {rule for rule in benchmarked if not {"mem_mb", "runtime"} <= set(settings["set-resources"].get(rule, {}))}
    assert not lacking, f"benchmarked rules without mem_mb and runtime in profiles/slurm: {sorted(lacking)}"
    for rule, resources in settings["set-resources"].items():  # retries get more memory and time
        assert all(re.fullmatch(r"\d+ \* attempt", str(resources[key])) for key in ("mem_mb", "runtime")), rule


@contextmanager
def time_limit(seconds: int):
    """Raise TimeoutError in the test after `seconds`; subprocess.run then kills the Snakemake it waits for."""
    def expire(signum, frame):
        raise TimeoutError(f"SLURM test exceeded {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def cancel_jobs_under(folder: Path) -> None:
    """Cancel SLURM jobs still queued or running in `folder` (left behind by a timeout or a failure)."""
    queue = subprocess.run(["squeue", "--noheader", "--states", "PENDING,RUNNING", "--format", "%i %Z"],
                           capture_output=True, text=True, timeout=20)
    job_ids = [line.split()[0] for line in queue.stdout.splitlines() if str(folder) in line]
    if job_ids:
        subprocess.run(["scancel", *job_ids], timeout=20, check=False)


def slurm_submissions(log_text: str) -> dict[str, str]:
    """Snakemake job id (or group id) -> SLURM job id, from the executor's own submission messages."""
    return dict(re.findall(r"^Job (\S+) has been submitted with SLURM jobid (\d+)", log_text, re.M))


def submitted_rule_jobs(log_text: str) -> dict[str, tuple[str, int, int]]:
    """Snakemake job id -> (rule, threads, mem_mb) for non-local jobs, from the main log's rule blocks."""
    jobs = {}
    for match in re.finditer(r"^([ \t]*)rule (\w+):\n((?:\1[ \t]+\S.*\n)*)", log_text, re.M):
        body = match.group(3)
        threads = re.search(r"^\s+threads: (\d+)$", body, re.M)
        mem_mb = re.search(r"\bmem_mb=(\d+)", body)
        jobs[re.search(r"^\s+jobid: (\S+)$", body, re.M).group(1)] = (
            match.group(2), int(threads.group(1)) if threads else 1, int(mem_mb.group(1)))
    return jobs


def squeue_jobs(job_ids) -> dict[str, dict[str, str]]:
    """State, CPUs and memory of finished SLURM jobs (the CI cluster keeps them in squeue for MinJobAge)."""
    out = subprocess.run(["squeue", "--noheader", "--states", "all", "--jobs", ",".join(job_ids),
                          "--format", "%i|%T|%C|%m"], capture_output=True, text=True, timeout=20, check=True).stdout
    return {i: {"state": s, "cpus": c, "memory": m} for i, s, c, m in (line.split("|") for line in out.splitlines())}


def comparable(path: Path):
    """A result file as data, without its run-date fields: a DataFrame, a dict, or an InferenceData."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path).drop(columns=RUN_DATE_FIELDS, errors="ignore")
    if path.suffix in {".csv", ".tsv"}:
        return pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",").drop(columns=RUN_DATE_FIELDS, errors="ignore")
    if path.suffix == ".json":
        return {k: v for k, v in yaml.safe_load(path.read_text()).items() if k not in RUN_DATE_FIELDS}
    return az.from_netcdf(path)


def assert_same_numbers(local: Path, slurm: Path) -> None:
    expected, actual = comparable(local), comparable(slurm)
    if isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(actual, expected, check_exact=True)
    elif isinstance(expected, dict):
        assert actual == expected
    else:
        assert expected.groups() == actual.groups()
        for group in expected.groups():  # Dataset.equals compares values and coordinates, not attrs (timings)
            assert without_timings(expected[group]).equals(without_timings(actual[group])), (
                f"{local.name}: group {group} differs")


def without_timings(dataset):
    """Sampler statistics minus the per-draw wall-clock timings, which differ between any two runs."""
    timings = [name for name in dataset.data_vars if "perf_counter" in name or "process_time" in name]
    return dataset.drop_vars(timings)


@pytest.fixture(scope="module")
def slurm_and_local_runs(tmp_path_factory, slurm_targets, request):
    """The tiny workflow run with profiles/slurm in a fresh directory (removed after), beside the local tiny run."""
    reason = slurm_unavailable_reason()
    if reason:
        pytest.skip(reason)
    local_dir = request.getfixturevalue("tiny_run")
    root = tmp_path_factory.mktemp("slurm")
    slurm_dir = make_workdir(root / "slurm")
    try:
        with time_limit(TIME_LIMIT_SECONDS):
            started = time.monotonic()
            slurm_run = run_snakemake(slurm_dir, "--profile", str(SLURM_PROFILE), *CI_CLUSTER_ARGS,
                                      *PINNED_THREADS, *slurm_targets)
            wall_seconds = time.monotonic() - started
        print(f"SLURM run wall time: {wall_seconds:.1f} s")
        yield {"local": local_dir, "slurm": slurm_dir, "log": slurm_run.stdout + slurm_run.stderr,
               "wall_seconds": wall_seconds}
    finally:
        cancel_jobs_under(root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slurm
@pytest.mark.slow
def test_every_job_ran_as_a_completed_slurm_job(slurm_and_local_runs, record_property):
    log = slurm_and_local_runs["log"]
    record_property("slurm_wall_seconds", round(slurm_and_local_runs["wall_seconds"], 1))
    submitted = slurm_submissions(log)
    assert submitted, "Snakemake reported no SLURM submission"
    # What the main process sent to SLURM equals what ran inside the SLURM jobs' own logs.
    sent = Counter(job_blocks(log, "rule"))
    slurm_logs = (slurm_and_local_runs["slurm"] / "logs" / "slurm").rglob("*.log")
    ran = Counter(block for path in slurm_logs for block in job_blocks(path.read_text(), "localrule"))
    assert sent and ran == sent
    states = squeue_jobs(submitted.values())
    assert {job["state"] for job in states.values()} == {"COMPLETED"}, states


@pytest.mark.slurm
@pytest.mark.slow
def test_slurm_jobs_get_the_cpus_and_memory_the_profile_asks_for(slurm_and_local_runs):
    log = slurm_and_local_runs["log"]
    submitted = slurm_submissions(log)
    rule_jobs = submitted_rule_jobs(log)
    single = {jobid: slurm_id for jobid, slurm_id in submitted.items() if jobid in rule_jobs}
    assert single, "no single-rule SLURM job to check"
    allocated = squeue_jobs(single.values())
    profile = yaml.safe_load((SLURM_PROFILE / "config.yaml").read_text())
    for jobid, slurm_id in single.items():
        rule, threads, mem_mb = rule_jobs[jobid]
        assert int(allocated[slurm_id]["cpus"]) == threads, (rule, allocated[slurm_id])
        assert allocated[slurm_id]["memory"] == f"{mem_mb}M", (rule, allocated[slurm_id])
        if "mem_mb" in profile["set-resources"].get(rule, {}):  # set-resources wins over a rule's own resources
            first_attempt = int(profile["set-resources"][rule]["mem_mb"].split("*")[0])
            assert mem_mb == first_attempt, f"{rule}: asks {mem_mb} MB, profile says {first_attempt}"


@pytest.mark.slurm
@pytest.mark.slow
def test_slurm_outputs_equal_the_local_run(slurm_and_local_runs, slurm_targets):
    local, slurm = slurm_and_local_runs["local"], slurm_and_local_runs["slurm"]

    def result_files(root):
        return sorted(p.relative_to(root) for p in (root / "results").rglob("*") if p.suffix in COMPARED_SUFFIXES)

    built = result_files(slurm)
    assert {Path(t) for t in slurm_targets if Path(t).suffix in COMPARED_SUFFIXES} <= set(built)
    assert set(built) <= set(result_files(local)), "the SLURM run wrote results the local run did not"
    for relative in built:
        assert_same_numbers(local / relative, slurm / relative)
