"""The compile cache (cara_eval.common.compile_cache): where a job compiles, and numba's cache reused by later jobs,
with real processes and real numba compiles."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cara_eval.common.compile_cache import compile_dir_for_job

TESTS = Path(__file__).resolve().parents[1]


def test_a_workstation_job_compiles_in_the_configured_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    assert compile_dir_for_job(str(tmp_path / "shared")) == tmp_path / "shared"


def test_a_slurm_job_compiles_in_local_scratch_and_shares_numbas_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("TMPDIR", str(tmp_path / "node"))
    for _ in range(2):  # a second process of the same job finds the link made
        directory = compile_dir_for_job(str(tmp_path / "shared"))
    assert directory == tmp_path / "node" / "pytensor-4242"
    assert (directory / "numba").is_symlink() and (directory / "numba").resolve() == tmp_path / "shared" / "numba"
    (directory / "numba" / "entry").write_text("compiled")
    assert (tmp_path / "shared" / "numba" / "entry").read_text() == "compiled"


def fit_with_numba(compile_dir: Path, seed: int) -> str:
    """A fresh process fits a small model with the numba sampler (`nutpie`), compiling in `compile_dir`; returns
    numba's cache log (NUMBA_DEBUG_CACHE)."""
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(TESTS)!r})
        from cara_eval.common.compile_cache import use_compile_dir
        use_compile_dir({str(compile_dir)!r})
        from model_simulation import simulate_cases
        from cara_eval.model.cells import CellSpec, build_cells
        from cara_eval.model.effectiveness import build_model, sample
        import yaml
        priors = yaml.safe_load(open("config/config.yaml"))["model"]["priors"]
        cells = build_cells(simulate_cases(n_per_force=100, flag_forces=("charlie",), seed={seed}), CellSpec())
        model = build_model(cells, priors, likelihood="grouped")
        sample(model, "nutpie", 1, 5, 5, 1)
    """)
    environment = {**os.environ, "NUMBA_DEBUG_CACHE": "1", "PYTENSOR_FLAGS": ""}
    environment.pop("SLURM_JOB_ID", None)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment,
                         cwd=TESTS.parent)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout + run.stderr


def density_log(log: str, action: str) -> list[str]:
    """Cache log lines of the compiled log density (PyTensor names a whole graph's function numba_funcified_fgraph)."""
    return [line for line in log.splitlines() if f"[cache] data {action}" in line and "numba_funcified_fgraph" in line]


@pytest.mark.slow
def test_a_later_job_reuses_numbas_compiled_operations_and_the_same_datas_density(tmp_path):
    first = fit_with_numba(tmp_path, seed=1)
    assert density_log(first, "saved") and not density_log(first, "loaded")
    # New data (another imputation): the graph's operations come from the cache, its density is compiled anew.
    new_data = fit_with_numba(tmp_path, seed=2)
    assert "[cache] data loaded" in new_data and density_log(new_data, "saved")
    # The same data again (a rerun): the whole density comes from the cache.
    same_data = fit_with_numba(tmp_path, seed=1)
    assert density_log(same_data, "loaded") and not density_log(same_data, "saved")
