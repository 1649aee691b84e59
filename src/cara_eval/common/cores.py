"""Pin a fitting job to cores of its own.

JAX's CPU client spreads a fit over every core the process may use, so two one-thread fits side by side on 2 cores
each keep about 1.5 cores busy and slow each other down: two imp1 fits took 158 s together, 119 s with each pinned to
its own core, the same draws bit for bit (README, Benchmarks). Snakemake gives a job a thread count, not cores, so
jobs claim cores by locking one file per core; a lock is freed when its job's process ends. Where SLURM binds a task
to its CPUs the process is held there already; a job that finds too few free cores runs unpinned, never waits.
"""

import fcntl
import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

# Open lock files of the cores this process holds: kept for the process's life, since closing one frees its core.
_held_locks = []


def default_lock_dir() -> Path:
    """One folder per user: another user's jobs on a shared node neither block nor read these locks."""
    return Path(tempfile.gettempdir()) / f"cara-eval-cores-{os.getuid()}"


def _try_lock(path: Path):
    handle = open(path, "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def claim_cores(threads: int, lock_dir: Path | None = None) -> set[int]:
    """Hold this process to `threads` of its allowed cores that no other job holds; call it before JAX starts.

    Returns the cores the process may use afterwards: the claimed ones, or all allowed ones when the job may use
    them all already or fewer than `threads` are free."""
    if not hasattr(os, "sched_getaffinity"):  # macOS has no affinity masks: its jobs run unpinned
        return set(range(os.cpu_count() or 1))
    allowed = sorted(os.sched_getaffinity(0))
    if threads >= len(allowed):
        return set(allowed)
    lock_dir = lock_dir or default_lock_dir()
    lock_dir.mkdir(parents=True, exist_ok=True)
    claimed = {}
    for core in allowed:
        if handle := _try_lock(lock_dir / f"{core}.lock"):
            claimed[core] = handle
            if len(claimed) == threads:
                break
    if len(claimed) < threads:
        for handle in claimed.values():
            handle.close()
        log.info("%d of %d cores free: running unpinned", len(claimed), threads)
        return set(allowed)
    _held_locks.extend(claimed.values())
    os.sched_setaffinity(0, claimed)
    log.info("pinned to cores %s", sorted(claimed))
    return set(claimed)
