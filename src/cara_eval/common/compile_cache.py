"""Point PyTensor at a compile directory before PyMC is imported; start a fitting job (`start_fitting_job`).

What a fit compiles is kept there for the next job: PyTensor's C code (PyMC's own helpers) and numba's machine code
for the `nutpie` sampler's log density (`numba/`). Numba keeps each operation of the graph, so a fit on new data (the
next imputation, a data update) compiles in 11.5 s instead of 32 s, and the same data again in 6 s (default data;
README, Benchmarks). On a SLURM node the directory is the job's local scratch instead, since a compile cache on a
shared network home serialises jobs on PyTensor's lock; its `numba/` links to the shared one, which takes no lock:
numba writes every cache file under a unique temporary name and renames it, so jobs on many nodes can share it.
"""

import os
import tempfile
from pathlib import Path

from cara_eval.common.cores import claim_cores


def compile_dir_for_job(configured: str) -> Path:
    """The configured shared cache on a workstation; inside a SLURM job, job-local scratch whose `numba/` is the
    shared cache's."""
    shared = Path(configured).expanduser().resolve()
    job_id = os.environ.get("SLURM_JOB_ID")
    if not job_id:
        return shared
    local = Path(os.environ.get("TMPDIR") or tempfile.gettempdir()) / f"pytensor-{job_id}"
    local.mkdir(parents=True, exist_ok=True)
    (shared / "numba").mkdir(parents=True, exist_ok=True)
    try:
        (local / "numba").symlink_to(shared / "numba", target_is_directory=True)
    except FileExistsError:  # an earlier fit of this job (or one started beside it in a job group) made it
        pass
    return local


def use_compile_dir(path: str) -> None:
    """Set PyTensor's base_compiledir unless the user already chose one in PYTENSOR_FLAGS."""
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    if "base_compiledir" not in flags:
        directory = compile_dir_for_job(path)
        directory.mkdir(parents=True, exist_ok=True)
        os.environ["PYTENSOR_FLAGS"] = ",".join(filter(None, [flags, f"base_compiledir={directory}"]))


def start_fitting_job(compile_dir: str, threads: int) -> None:
    """A fitting job's first step, before PyMC or JAX is imported: the compile cache, then a core of its own
    (cara_eval.common.cores), so the threads JAX starts inherit the job's CPU affinity."""
    use_compile_dir(compile_dir)
    claim_cores(threads)
