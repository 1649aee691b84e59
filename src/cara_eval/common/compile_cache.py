"""Point PyTensor at a compile directory before PyMC is imported.

Every imputation fits the same graph (data live in pm.Data containers), so the C code compiled by the
first fit is reused by the others, also across Snakemake jobs. On a SLURM node the cache goes to the
job's local scratch instead: a compile cache on a shared network home serialises jobs on its lock.
"""

import os
import tempfile
from pathlib import Path


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
