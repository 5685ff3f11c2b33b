"""GPU claiming with file locks (dreammotion.utils.devices): no GPU needed, only the locks."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from dreammotion.errors import InputError
from dreammotion.utils.devices import claim_gpu, select_gpu_for_job

HOLD_LOCK_SCRIPT = """
import sys, time
from dreammotion.utils.devices import claim_gpu
claim = claim_gpu(sys.argv[1], int(sys.argv[2]))
print(claim.index, flush=True)
time.sleep(60)
"""


def test_claims_distinct_indices_then_reuses_released(tmp_path):
    first = claim_gpu(tmp_path, 2)
    second = claim_gpu(tmp_path, 2)
    assert (first.index, second.index) == (0, 1)
    with pytest.raises(TimeoutError, match="all 2 GPUs are claimed"):
        claim_gpu(tmp_path, 2, timeout_s=0.2, poll_s=0.05)
    first.release()
    with claim_gpu(tmp_path, 2) as third:
        assert third.index == 0
    second.release()


def test_claim_held_by_other_process_is_freed_when_it_dies(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK_SCRIPT, str(tmp_path), "2"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "0"
        claim = claim_gpu(tmp_path, 2)
        assert claim.index == 1  # 0 is held by the other process
        claim.release()
    finally:
        holder.kill()  # SIGKILL: no cleanup code runs, the kernel drops the lock
        holder.wait()
    start = time.monotonic()
    with claim_gpu(tmp_path, 2, timeout_s=5, poll_s=0.05) as claim:
        assert claim.index == 0
    assert time.monotonic() - start < 5


def test_waits_until_a_gpu_is_free(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK_SCRIPT.replace("time.sleep(60)", "time.sleep(1)"), str(tmp_path), "1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "0"
        start = time.monotonic()
        with claim_gpu(tmp_path, 1, timeout_s=20, poll_s=0.05) as claim:
            waited = time.monotonic() - start
        assert claim.index == 0
        assert 0.3 < waited < 20
    finally:
        holder.kill()
        holder.wait()


def test_select_gpu_sets_visible_devices(tmp_path):
    environ: dict[str, str] = {}
    claim = select_gpu_for_job(tmp_path, 2, environ=environ)
    assert claim is not None and environ["CUDA_VISIBLE_DEVICES"] == "0"
    other_env: dict[str, str] = {}
    other = select_gpu_for_job(tmp_path, 2, environ=other_env)
    assert other_env["CUDA_VISIBLE_DEVICES"] == "1"
    claim.release()
    other.release()


def test_select_gpu_respects_scheduler_and_cpu_runs(tmp_path):
    environ = {"CUDA_VISIBLE_DEVICES": "3"}  # e.g. set by SLURM
    assert select_gpu_for_job(tmp_path, 2, environ=environ) is None
    assert environ["CUDA_VISIBLE_DEVICES"] == "3"
    cpu_env: dict[str, str] = {}
    assert select_gpu_for_job(tmp_path, 0, environ=cpu_env) is None
    assert "CUDA_VISIBLE_DEVICES" not in cpu_env
    assert not list(tmp_path.glob("*.lock"))


def test_rejects_nonpositive_gpu_count(tmp_path):
    with pytest.raises(InputError, match=str(tmp_path)):
        claim_gpu(tmp_path, 0)
