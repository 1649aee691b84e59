"""Core claims of fitting jobs (cara_eval.common.cores), with real processes, locks and affinity masks."""

import os
import subprocess
import sys
import textwrap

import pytest

from cara_eval.common.cores import claim_cores

ALLOWED = sorted(os.sched_getaffinity(0))
needs_two_cores = pytest.mark.skipif(len(ALLOWED) < 2, reason="needs two cores to claim one of")


def holder(lock_dir, threads):
    """A job process that claims cores, prints them and keeps them until its stdin closes."""
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from cara_eval.common.cores import claim_cores
        print(sorted(claim_cores({threads}, Path({str(lock_dir)!r}))), flush=True)
        sys.stdin.read()
    """)
    process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return process, eval(process.stdout.readline())


def run_claim(lock_dir, threads):
    """Cores a fresh process may use after claiming, read from its own affinity mask."""
    code = (f"import os; from pathlib import Path; from cara_eval.common.cores import claim_cores; "
            f"claim_cores({threads}, Path({str(lock_dir)!r})); print(sorted(os.sched_getaffinity(0)))")
    return eval(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


@needs_two_cores
def test_jobs_side_by_side_get_different_cores_and_a_finished_job_frees_its_core(tmp_path):
    first, first_cores = holder(tmp_path, 1)
    try:
        second_cores = run_claim(tmp_path, 1)
        assert len(first_cores) == 1 and len(second_cores) == 1
        assert first_cores != second_cores
    finally:
        first.communicate("")
    assert run_claim(tmp_path, 1) == [ALLOWED[0]]


@needs_two_cores
def test_a_job_that_finds_too_few_free_cores_runs_unpinned_without_waiting(tmp_path):
    holders = [holder(tmp_path, 1) for _ in ALLOWED]
    try:
        assert sorted(core for _, cores in holders for core in cores) == ALLOWED
        assert run_claim(tmp_path, 1) == ALLOWED
    finally:
        for process, _ in holders:
            process.communicate("")


def test_a_job_allowed_all_its_threads_keeps_its_cores_and_takes_no_lock(tmp_path):
    assert claim_cores(len(ALLOWED), tmp_path) == set(ALLOWED)
    assert sorted(os.sched_getaffinity(0)) == ALLOWED
    assert not any(tmp_path.iterdir())
