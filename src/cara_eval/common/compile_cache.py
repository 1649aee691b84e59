"""Point PyTensor at a compile directory before PyMC is imported; start a fitting job (`start_fitting_job`).

Every imputation fits the same graph (data live in pm.Data containers), so the C code compiled by the
first fit is reused by the others, also across Snakemake jobs. On a SLURM node the cache goes to the
job's local scratch instead: a compile cache on a shared network home serialises jobs on its lock.
"""

import os
import tempfile
from pathlib import Path

from cara_eval.common.cores import claim_cores


def compile_dir_for_job(configured: str) -> Path:
    """The configured shared cache on a workstation; job-local scratch inside a SLURM job."""
    job_id = os.environ.get("SLURM_JOB_ID")
    if job_id:
        return Path(os.environ.get("TMPDIR") or tempfile.gettempdir()) / f"pytensor-{job_id}"
    return Path(configured).expanduser().resolve()


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
