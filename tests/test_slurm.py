"""Workflows really submitted through SLURM: a one-node cluster from tests/slurm/cluster.sh.

Run alone with ``pytest -m slurm``. The cluster needs root and apt (or SLURM already installed);
without them the tests skip with the reason, except under CI (env CI=true) where they fail.
The node declares 2 fake GPUs (gres on copies of /dev/null), so rules asking for ``gpu: 1``
really go through SLURM's GPU scheduling, then run on the CPU.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
CLUSTER_SCRIPT = REPO / "tests" / "slurm" / "cluster.sh"
TOY_SNAKEFILE = REPO / "tests" / "slurm" / "toy" / "Snakefile"
SLURM_PROFILE_ARGS = [
    "--workflow-profile", str(REPO / "profiles" / "slurm"),
    "--profile", str(REPO / "profiles" / "ci-slurm"),
]  # fmt: skip
SUBMITTED_LINE = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def _cannot_run(reason: str):
    """Skip locally; in CI a cluster that cannot come up is a failure, never a skip."""
    if _in_ci():
        pytest.fail(f"SLURM cluster unavailable in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def slurm_cluster(request):
    """Bring the one-node cluster up; take it down afterwards only if this fixture started it."""
    wanted = "slurm" in request.config.getoption("markexpr", "") or os.environ.get("DREAMMOTION_TEST_SLURM") == "1"
    if not (wanted or _in_ci()):
        # A plain `pytest` must not install and start daemons as root as a side effect.
        pytest.skip("starts a SLURM cluster: run with `pytest -m slurm` or DREAMMOTION_TEST_SLURM=1 (make test)")
    if os.geteuid() != 0:
        _cannot_run("tests/slurm/cluster.sh needs root")
    if shutil.which("sbatch") is None and shutil.which("apt-get") is None:
        _cannot_run("SLURM is not installed and apt-get is not available to install it")
    was_running = subprocess.run([CLUSTER_SCRIPT, "status"], capture_output=True).returncode == 0
    up = subprocess.run(["timeout", "-k", "10", "600", CLUSTER_SCRIPT, "up"], capture_output=True, text=True)
    if up.returncode != 0:
        _cannot_run(f"cluster.sh up failed (exit {up.returncode}): {up.stderr[-2000:]}")
    yield
    if not was_running:
        subprocess.run(["timeout", "-k", "10", "120", CLUSTER_SCRIPT, "down"], check=False)


def run_snakemake(snakefile: Path, workdir: Path, extra: list[str], timeout_s: int) -> subprocess.CompletedProcess:
    """Run Snakemake with a hard timeout (it ignores SIGTERM while waiting on SLURM)."""
    command = ["timeout", "-k", "10", str(timeout_s), *SNAKEMAKE,
               "--snakefile", str(snakefile), "--directory", str(workdir), *extra]  # fmt: skip
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    result = subprocess.run(command, capture_output=True, text=True, cwd=workdir, env=env)
    (workdir / "snakemake.log").write_text(result.stdout + result.stderr)
    if result.returncode in (124, 137):  # killed: cancel its jobs and release the lock
        job_ids = [job_id for job_id, _ in SUBMITTED_LINE.findall(result.stdout + result.stderr)]
        if job_ids:
            subprocess.run(["scancel", *job_ids], check=False)
        subprocess.run([*SNAKEMAKE, "--snakefile", str(snakefile), "--directory", str(workdir), "--unlock"],
                       capture_output=True, cwd=workdir, check=False)  # fmt: skip
    return result


def submitted_jobs(result: subprocess.CompletedProcess) -> dict[int, Path]:
    """SLURM job id -> its log file, from Snakemake's 'submitted with SLURM jobid' lines."""
    return {int(job_id): Path(log) for job_id, log in SUBMITTED_LINE.findall(result.stdout + result.stderr)}


def slurm_job_fields(job_id: int) -> dict[str, str]:
    """`scontrol show job` as a dict; finished jobs stay visible for MinJobAge (300 s)."""
    shown = subprocess.run(["scontrol", "show", "job", str(job_id)], capture_output=True, text=True, check=True)
    return dict(re.findall(r"(\w[\w/:]*)=(\S*)", shown.stdout))


def output_files(workdir: Path) -> dict[str, bytes]:
    """Every file under results/ except logs, which name hosts, job ids and times."""
    results = workdir / "results"
    return {
        str(path.relative_to(workdir)): path.read_bytes()
        for path in sorted(results.rglob("*"))
        if path.is_file() and "logs" not in path.relative_to(results).parts
    }


def assert_ran_through_slurm(result: subprocess.CompletedProcess, workdir: Path) -> dict[int, Path]:
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    jobs = submitted_jobs(result)
    assert jobs, "no 'submitted with SLURM jobid' line in Snakemake's log"
    for job_id, log in jobs.items():
        assert log.is_file() and log.parent.is_relative_to(workdir / ".snakemake" / "slurm_logs"), log
        assert log.stem == str(job_id)
        fields = slurm_job_fields(job_id)
        assert fields["JobState"] == "COMPLETED", (job_id, fields["JobState"])
        assert fields["Partition"] == "debug"
    return jobs


def test_toy_workflow_through_slurm(slurm_cluster, tmp_path):
    local_dir, slurm_dir = tmp_path / "local", tmp_path / "slurm"
    local_dir.mkdir()
    slurm_dir.mkdir()
    local = run_snakemake(TOY_SNAKEFILE, local_dir, ["--cores", "2"], timeout_s=120)
    assert local.returncode == 0, local.stderr[-4000:]
    assert "SLURM jobid" not in local.stdout + local.stderr

    result = run_snakemake(TOY_SNAKEFILE, slurm_dir, SLURM_PROFILE_ARGS, timeout_s=300)
    jobs = assert_ran_through_slurm(result, slurm_dir)

    # Both videos' `frames` jobs went into ONE group job; edit x2 and tables on their own.
    kinds = sorted(log.relative_to(slurm_dir / ".snakemake" / "slurm_logs").parts[0] for log in jobs.values())
    assert kinds == ["group_prepare_frames", "rule_edit", "rule_edit", "rule_tables"]
    # The edit jobs asked SLURM for a GPU (profiles/slurm: gpu: 1) and got one of the fake ones.
    edit_ids = [job_id for job_id, log in jobs.items() if "rule_edit" in log.parts]
    for job_id in edit_ids:
        assert slurm_job_fields(job_id).get("TresPerJob") == "gres:gpu:1"
    for env_log in sorted((slurm_dir / "results" / "logs" / "edit").glob("*.env")):
        match = re.fullmatch(r"CUDA_VISIBLE_DEVICES=([01]) SLURM_JOB_ID=(\d+)\n", env_log.read_text())
        assert match, env_log.read_text()
        assert int(match.group(2)) in edit_ids

    assert output_files(slurm_dir) == output_files(local_dir)


# --------------------------------------------------------------------------- the real workflow

def write_tiny_project(folder: Path, model: Path) -> Path:
    """A 1-row manifest of a tiny generated clip and a small config using `model`; returns it."""
    import numpy as np
    from PIL import Image

    clip = folder / "clip"
    clip.mkdir()
    for index in range(6):  # a red square moving right on gray
        frame = np.full((32, 32, 3), 128, np.uint8)
        frame[10:20, 4 + 2 * index : 14 + 2 * index] = (220, 30, 30)
        Image.fromarray(frame).save(clip / f"{index:05d}.png")
    (folder / "manifest.csv").write_text(
        "id,video,source_prompt,target_prompt,mask,seed\n"
        "row1,clip,a red square moving right,a blue circle moving right,none,0\n"
    )
    # The Snakefile's `configfile: config/config.yaml` is read from the working directory, as it
    # would be in a user's project; config.yaml then overrides what a tiny run needs.
    (folder / "config").mkdir()
    shutil.copy(REPO / "config" / "config.yaml", folder / "config" / "config.yaml")
    config = f"""\
manifest: {folder / "manifest.csv"}
model: {{pretrained: {model}, device: cpu}}
frames: {{num_frames: 4, height: 16, width: 16}}
masks: {{method: none}}
edit: {{iterations: 2}}
upsample: {{method: none}}
"""
    (folder / "config.yaml").write_text(config)
    return folder / "config.yaml"


def test_real_workflow_through_slurm(slurm_cluster, tmp_path):
    snakefile = REPO / "Snakefile"
    assert snakefile.is_file(), f"{snakefile} does not exist yet"
    from dreammotion.models.tiny import save_tiny_t2v

    model = save_tiny_t2v(tmp_path / "model", vae="pixelshuffle")  # one model: same prompt-cache keys
    local_dir, slurm_dir = tmp_path / "local", tmp_path / "slurm"
    for workdir in (local_dir, slurm_dir):
        workdir.mkdir()
        write_tiny_project(workdir, model)
    common = ["--configfile", "config.yaml"]
    local = run_snakemake(snakefile, local_dir, [*common, "--workflow-profile", str(REPO / "profiles" / "default"),
                                                 "--cores", "2"], timeout_s=300)  # fmt: skip
    assert local.returncode == 0, (local.stdout + local.stderr)[-6000:]

    result = run_snakemake(snakefile, slurm_dir, [*common, *SLURM_PROFILE_ARGS], timeout_s=590)
    jobs = assert_ran_through_slurm(result, slurm_dir)
    edit_ids = [job_id for job_id, log in jobs.items() if "rule_edit" in log.parts]
    assert len(edit_ids) == 1 and slurm_job_fields(edit_ids[0]).get("TresPerJob") == "gres:gpu:1"

    local_files, slurm_files = output_files(local_dir), output_files(slurm_dir)
    assert sorted(slurm_files) == sorted(local_files)
    # Pixels and tensors must match exactly; json/csv/mp4 may carry timings or encoder metadata.
    exact = [name for name in local_files if name.endswith((".png", ".npy"))]
    assert exact, "no frames among the outputs"
    assert {name: slurm_files[name] for name in exact} == {name: local_files[name] for name in exact}
    # safetensors headers list metadata in no fixed order: compare the tensors themselves
    from safetensors.torch import load_file

    tensors = [name for name in local_files if name.endswith(".safetensors")]
    assert tensors, "no latents among the outputs"
    for name in tensors:
        a, b = load_file(local_dir / name), load_file(slurm_dir / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
