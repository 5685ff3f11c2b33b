"""Give each GPU job its own GPU on a multi-GPU machine when no scheduler does it for us.

SLURM sets ``CUDA_VISIBLE_DEVICES`` for a job that asked for ``--gpus=1``; Snakemake's local
executor does not. Locally, the default profile caps the global ``gpu`` resource at the number of
GPUs, so at most that many GPU jobs run at once, and each job claims one free index here with an
``fcntl`` lock on ``<lock_dir>/gpu<i>.lock``. The kernel releases the lock when the process exits
(even if it crashes or is killed), so a stale claim can never block a GPU.
"""

from __future__ import annotations

import fcntl
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from dreammotion.errors import InputError

VISIBLE_DEVICES_VARIABLE = "CUDA_VISIBLE_DEVICES"


def resolve_device(name: str) -> str:
    """A --device / config device name: "auto" is "cuda" when a GPU is visible, else "cpu"; any
    other name is passed to torch as it is. (Imports torch only for "auto": this module is used
    before a job has claimed its GPU.)"""
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class GpuClaim:
    """An exclusive claim on GPU `index`, held while `lock_file` stays open."""

    index: int
    lock_path: Path
    _lock_file: object = field(repr=False, default=None)

    def release(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def __enter__(self) -> "GpuClaim":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _try_lock(lock_path: Path):
    """Return the open, exclusively locked file, or None if another process holds it."""
    lock_file = open(lock_path, "a+")
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock_file.close()
        return None
    # Who holds it, for a human looking at the lock folder; the lock itself is what counts.
    lock_file.seek(0)
    lock_file.truncate()
    lock_file.write(f"{os.getpid()}\n")
    lock_file.flush()
    return lock_file


def claim_gpu(
    lock_dir: str | os.PathLike,
    num_gpus: int,
    *,
    timeout_s: float = 0.0,
    poll_s: float = 0.5,
) -> GpuClaim:
    """Claim the lowest free GPU index in ``range(num_gpus)``.

    Waits up to `timeout_s` seconds for one to become free, then raises ``TimeoutError``. The
    claim lasts until ``release()`` or until this process exits.
    """
    if num_gpus < 1:
        raise InputError(f"claim_gpu: num_gpus must be >= 1, got {num_gpus} (lock folder {lock_dir})")
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    while True:
        for index in range(num_gpus):
            lock_path = lock_dir / f"gpu{index}.lock"
            lock_file = _try_lock(lock_path)
            if lock_file is not None:
                return GpuClaim(index=index, lock_path=lock_path, _lock_file=lock_file)
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"all {num_gpus} GPUs are claimed in {lock_dir} (waited {timeout_s:.0f} s); "
                "is the gpu resource in the profile larger than the number of GPUs?"
            )
        time.sleep(poll_s)


def select_gpu_for_job(
    lock_dir: str | os.PathLike,
    num_gpus: int,
    *,
    timeout_s: float = 60.0,
    environ: dict | None = None,
) -> GpuClaim | None:
    """Set ``CUDA_VISIBLE_DEVICES`` to a claimed free GPU unless a scheduler already set it.

    Call this before torch initialises CUDA and keep the returned claim alive for the whole job.
    Returns None (and changes nothing) when ``CUDA_VISIBLE_DEVICES`` is already set, e.g. by
    SLURM, or when `num_gpus` is 0 (CPU run).
    """
    environ = os.environ if environ is None else environ
    if environ.get(VISIBLE_DEVICES_VARIABLE) or num_gpus == 0:
        return None
    claim = claim_gpu(lock_dir, num_gpus, timeout_s=timeout_s)
    environ[VISIBLE_DEVICES_VARIABLE] = str(claim.index)
    return claim
