"""Several edits optimised as one batch (issue 16): each edit's result equals its one-by-one run."""

import pytest
import torch

from dreammotion.edit import EditConfig, dreammotion_edit
from dreammotion.edit.optimizer import EditJob, batch_groups, dreammotion_edit_batch, ssm_gradient
from dreammotion.errors import NumericalError

FRAMES, SIZE = 4, 16


@pytest.fixture(scope="module")
def clips(tiny_model):
    """Three different source clips with their own masks."""
    torch.manual_seed(3)
    sources = [tiny_model.encode_frames(torch.rand(FRAMES, 3, SIZE, SIZE) * 2 - 1) for _ in range(3)]
    masks = []
    for i in range(3):
        m = torch.zeros(FRAMES, SIZE, SIZE)
        m[:, 2 + i : 10 + i, 4:12 + i] = 1.0
        masks.append(m)
    return sources, masks


PROMPTS = [("a red circle", "a blue circle"), ("a green square", "a green triangle"), ("a red circle", "a red star")]


def _jobs(clips, configs, checkpoints=(None, None, None)):
    sources, masks = clips
    return [EditJob(sources[i], *PROMPTS[i], masks[i], configs[i], checkpoints[i], name=f"row{i}") for i in range(len(configs))]


def _alone(model, job):
    return dreammotion_edit(model, job.source_latents, job.source_prompt, job.target_prompt, job.masks, job.config,
                            progress=False)


def _close(got, alone, job):
    """Batched kernels round differently from one-video ones; a wrong update is off by O(1) of the change."""
    change = float((alone.latents - job.source_latents).abs().max())
    assert change > 0
    torch.testing.assert_close(got.latents, alone.latents, rtol=0, atol=1e-3 * change)


# Adam without the SSM terms: at iteration 0 (x == x_src) the SSM gradient is rounding noise (~1e-10),
# which Adam's per-element normalisation turns into full +-lr steps wherever the mask zeroes V-DDS, so
# two runs that round differently differ by lr there. SGD (the default) scales it by lr instead.
@pytest.mark.parametrize("optimizer, lambdas", [("sgd", 0.5), ("adam", 0.0)])
def test_batched_edits_equal_one_by_one_edits(tiny_model, clips, optimizer, lambdas):
    configs = [EditConfig(iterations=3, seed=s, optimizer=optimizer, lr=0.05, lambda_s=lambdas, lambda_t=lambdas)
               for s in (1, 2, 3)]
    jobs = _jobs(clips, configs)
    batched = dreammotion_edit_batch(tiny_model, jobs, progress=False)
    for job, got in zip(jobs, batched):
        alone = _alone(tiny_model, job)
        assert got.batch_size == 3 and alone.batch_size == 1
        assert [r["t"] for r in got.log] == [r["t"] for r in alone.log]
        assert not torch.equal(got.latents, job.source_latents)  # it did edit
        _close(got, alone, job)
        for key in ("loss_s", "loss_t", "vdds_grad_norm", "ssm_grad_norm"):
            assert got.log[-1][key] == pytest.approx(alone.log[-1][key], rel=1e-3, abs=1e-6), key
    # the edits are not the same edit: prompts, masks and seeds are each edit's own
    assert not torch.allclose(batched[0].latents, batched[1].latents)


def test_a_diverging_edit_fails_alone_and_the_others_go_on(tiny_model, clips):
    good = EditConfig(iterations=3, seed=1, lr=0.05)
    bad = EditConfig(iterations=3, seed=2, lr=1e6)  # per-edit settings may differ: lr is the optimiser's
    jobs = _jobs(clips, [good, bad, EditConfig(iterations=3, seed=3, lr=0.05)])
    results = dreammotion_edit_batch(tiny_model, jobs, progress=False)
    assert isinstance(results[1], NumericalError) and "diverged" in str(results[1])
    _close(results[0], _alone(tiny_model, jobs[0]), jobs[0])
    _close(results[2], _alone(tiny_model, jobs[2]), jobs[2])
    with pytest.raises(NumericalError):  # alone, the same edit raises
        _alone(tiny_model, jobs[1])


class _Killed(Exception):
    pass


def test_edits_resumed_at_different_iterations_share_a_batch(tiny_model, clips, tmp_path, monkeypatch):
    import dreammotion.edit.optimizer as opt

    configs = [EditConfig(iterations=4, seed=s, checkpoint_every=2, lr=0.05) for s in (1, 2)]
    checkpoints = (tmp_path / "a.pt", tmp_path / "b.pt")
    # Edit 0 runs alone until its first checkpoint (iteration 2), then is killed.
    save = opt._save_checkpoint
    calls = []

    def save_then_die(path, x, optimizer_, iteration, *rest):
        save(path, x, optimizer_, iteration, *rest)
        calls.append(iteration)
        raise _Killed

    monkeypatch.setattr(opt, "_save_checkpoint", save_then_die)
    with pytest.raises(_Killed):
        dreammotion_edit_batch(tiny_model, _jobs(clips, configs, checkpoints)[:1], progress=False)
    monkeypatch.setattr(opt, "_save_checkpoint", save)
    assert calls == [2] and checkpoints[0].exists()

    jobs = _jobs(clips, configs, checkpoints)[:2]
    results = dreammotion_edit_batch(tiny_model, jobs, progress=False)
    assert results[0].resumed_from == 2 and results[1].resumed_from is None
    assert len(results[0].log) == len(results[1].log) == 4
    for job, got in zip(jobs, results):
        _close(got, _alone(tiny_model, job), job)


def test_batch_groups_keep_apart_what_cannot_share_a_step(tiny_model, clips):
    sources, masks = clips
    base = EditConfig(iterations=2)
    jobs = [
        EditJob(sources[0], "a", "b", None, base),
        EditJob(sources[1], "a", "b", None, EditConfig(iterations=5, seed=9, lr=0.1)),  # per-edit fields only
        EditJob(sources[2], "a", "b", None, EditConfig(iterations=2, lambda_s=1.0)),  # another step
        EditJob(sources[0][:, :, :2], "a", "b", None, base),  # another shape
        EditJob(sources[0], "a", "b", None, EditConfig(iterations=2, window=2, window_overlap=1)),  # windows
        EditJob(sources[1], "a", "b", None, EditConfig(iterations=2, window=2, window_overlap=1)),
    ]
    assert batch_groups(jobs) == [[0, 1], [2], [3], [4], [5]]
    with pytest.raises(ValueError, match="cannot run as one batch"):
        dreammotion_edit_batch(tiny_model, jobs[:3], progress=False)


def test_ssm_gradient_scales_each_video_on_its_own():
    """float16 keys: one video's tiny key gradients must not underflow because another's are large."""
    torch.manual_seed(0)
    frames, hw, c = 2, 64, 8
    weight = torch.randn(c, c)
    config = EditConfig(lambda_s=1e-10, lambda_t=1e-10)
    small = torch.randn(1, frames, hw, c)
    large = torch.randn(1, frames, hw, c)
    source = torch.randn(2 * frames, hw, c) @ weight
    loud = EditConfig(lambda_s=1.0, lambda_t=1.0)

    def grads(x, cfg, src):
        keys = {"k": (x.reshape(-1, hw, c) @ weight).half()}
        return ssm_gradient(keys, {"k": src.half()}, x, cfg, frames)[0]

    x = torch.cat([small, large]).requires_grad_(True)
    alone = grads(small.clone().requires_grad_(True), config, source[:frames])
    both = grads(x, config, source)
    assert alone.abs().max() > 0
    torch.testing.assert_close(both[:1], alone)
    # loss-weighted per video: a batch's gradient is each video's own (sum over videos, not mean)
    alone_large = grads(large.clone().requires_grad_(True), loud, source[frames:])
    torch.testing.assert_close(grads(x, loud, source)[1:], alone_large)


# -- the command line and the workflow -----------------------------------------------------------------

import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from dreammotion.edit.io import load_latents, save_latents  # noqa: E402
from conftest import make_project, snakemake  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _dm(*args, cwd=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run([sys.executable, "-m", "dreammotion", *args], capture_output=True, text=True, env=env,
                          timeout=300, cwd=cwd)


def test_edit_batch_cli_stages_each_result_and_the_rows_jobs_take_them_over(tmp_path, tiny_model_dir, clips):
    sources, _ = clips
    model = json.dumps({"pretrained": str(tiny_model_dir), "device": "cpu"})
    jobs = []
    for i, (lr, seed) in enumerate([(0.05, 1), (1e6, 2)]):  # the second diverges
        save_latents(tmp_path / f"src{i}.safetensors", sources[i])
        jobs.append({"id": f"row{i}", "latents": str(tmp_path / f"src{i}.safetensors"), "masks": "none",
                     "source_prompt": PROMPTS[i][0], "target_prompt": PROMPTS[i][1],
                     "settings": {"iterations": 3, "lr": lr, "seed": seed},
                     "staged": str(tmp_path / "batch" / f"row{i}"), "checkpoint": str(tmp_path / f"row{i}.pt")})
    run = _dm("edit-batch", "--jobs", json.dumps(jobs), "--model", model, "--variant", "v",
              "--record", str(tmp_path / "batch" / "batch.json"), "--no-progress")
    assert run.returncode == 0, run.stderr[-3000:]
    record = json.loads((tmp_path / "batch" / "batch.json").read_text())
    assert [e["status"] for e in record["edits"]] == ["done", "failed"] and record["groups"] == [["row0", "row1"]]

    def row_job(i, out, **changes):
        job = {**jobs[i], **changes}
        return _dm("--failure-record", str(tmp_path / f"fail{i}.json"), "edit", "--staged", job["staged"], "--staged-only",
                   "--latents", job["latents"], "--masks", "none", "--source-prompt", job["source_prompt"],
                   "--target-prompt", job["target_prompt"], "--model", model, "--settings", json.dumps(job["settings"]),
                   "--id", job["id"], "--variant", "v", "--out-dir", str(out), "--no-progress")

    taken = row_job(0, tmp_path / "out0")
    assert taken.returncode == 0, taken.stderr[-3000:]
    assert "taken over" in taken.stdout
    info = json.loads((tmp_path / "out0" / "edit.json").read_text())
    assert info["batch_size"] == 2 and info["id"] == "row0"
    # the staged result is the one-by-one edit of that row
    alone = dreammotion_edit(load_tiny(tiny_model_dir), sources[0], *PROMPTS[0], None,
                             EditConfig(iterations=3, lr=0.05, seed=1), progress=False)
    batched, _ = load_latents(tmp_path / "out0" / "latents.safetensors")
    change = float((alone.latents - sources[0]).abs().max())
    torch.testing.assert_close(batched, alone.latents, rtol=0, atol=1e-3 * change)

    failed = row_job(1, tmp_path / "out1")
    assert failed.returncode == 1 and "diverged" in failed.stderr
    assert "diverged" in json.loads((tmp_path / "fail1.json").read_text())["error"]
    assert not (tmp_path / "out1" / "edit.json").exists()
    # another request (settings changed since the batch ran) is not taken over
    other = row_job(0, tmp_path / "out2", settings={"iterations": 3, "lr": 0.06, "seed": 1})
    assert other.returncode == 1 and "holds no result of this edit" in other.stderr


def load_tiny(folder):
    from dreammotion.models import load_t2v

    return load_t2v(folder)


@pytest.mark.slow
def test_workflow_with_batched_edits(tmp_path, tiny_model_dir):
    work = make_project(tmp_path, tiny_model_dir, extra_config={"edit_batch_size": 2})
    snakemake(work)
    results = work / "results"
    batch = json.loads((results / "batches" / "dreammotion" / "b0000" / "batch.json").read_text())
    assert [(e["id"], e["status"], e["batch_size"]) for e in batch["edits"]] == [
        ("red2blue", "done", 2), ("green2red", "done", 2)]
    for row in ("red2blue", "green2red"):
        info = json.loads((results / "edits" / "dreammotion" / row / "edit.json").read_text())
        assert info["batch_size"] == 2
        metrics = json.loads((results / "metrics" / "dreammotion" / f"{row}.json").read_text())
        assert metrics["metrics"]["runtime_s"]["value"] == pytest.approx(info["runtime_s"] / 2, rel=1e-6)
    assert not list(results.glob("checkpoints/*/*.pt"))
    assert "Nothing to be done" in (lambda r: r.stdout + r.stderr)(snakemake(work, "-n"))
    # A deleted edit is taken over again from the batch's staged result: the batch does not rerun.
    shutil.rmtree(results / "edits" / "dreammotion" / "green2red")
    dry = snakemake(work, "-n")
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", dry.stdout + dry.stderr, flags=re.M))  # the "Job stats" table
    assert counts.get("edit_from_batch") == "1" and "edit_batch" not in counts, counts
    snakemake(work)
    assert json.loads((results / "edits" / "dreammotion" / "green2red" / "edit.json").read_text())["batch_size"] == 2
