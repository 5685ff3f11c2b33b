"""Interruptions, bad models and bad prompts: clear errors, nothing half-written, reruns resume."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from dreammotion.edit.io import load_latents, save_latents
from dreammotion.errors import InputError
from dreammotion.models import ModelLoadError, load_t2v
from conftest import encode_source

PY = [sys.executable, "-m", "dreammotion"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def _edit_cmd(latents, out_dir, ckpt, model_dir, iterations, failure=None):
    settings = json.dumps({"iterations": iterations, "checkpoint_every": 2, "seed": 3, "lr": 0.05})
    model = json.dumps({"pretrained": str(model_dir), "device": "cpu"})
    prefix = [*PY] + (["--failure-record", str(failure)] if failure else [])
    return [*prefix, "edit", "--latents", str(latents), "--masks", "none", "--source-prompt", "a red circle",
            "--target-prompt", "a blue circle", "--model", model, "--settings", settings, "--out-dir", str(out_dir),
            "--checkpoint", str(ckpt), "--no-progress"]


@pytest.fixture
def source_latents(tmp_path, tiny_model):
    path = tmp_path / "source.safetensors"
    save_latents(path, encode_source(tiny_model, seed=0))
    return path


def test_kill_9_during_edit_then_rerun_resumes_to_the_same_latents(tmp_path, tiny_model_dir, source_latents):
    iterations = 30
    reference = tmp_path / "reference"
    subprocess.run(_edit_cmd(source_latents, reference, tmp_path / "ref.pt", tiny_model_dir, iterations),
                   check=True, env=ENV, capture_output=True)

    out, ckpt = tmp_path / "edit", tmp_path / "edit.pt"
    proc = subprocess.Popen(_edit_cmd(source_latents, out, ckpt, tiny_model_dir, iterations), env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the edit finished before it could be killed; raise `iterations`"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert ckpt.exists()
    assert not (out / "edit.json").exists()  # nothing claims to be finished
    assert not (out / "latents.safetensors").exists() and not (out / "log.csv").exists()
    done = torch.load(ckpt, weights_only=False)["iteration"]
    assert 0 < done < iterations

    rerun = subprocess.run(_edit_cmd(source_latents, out, ckpt, tiny_model_dir, iterations), env=ENV,
                           capture_output=True, text=True, check=True)
    assert f"resuming from {ckpt} at iteration" in rerun.stdout
    info = json.loads((out / "edit.json").read_text())
    assert info["resumed_from_iteration"] >= done
    assert torch.equal(load_latents(out / "latents.safetensors")[0], load_latents(reference / "latents.safetensors")[0])
    assert not ckpt.exists()  # removed once the edit is complete: bounded disk


def test_missing_model_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_t2v(tmp_path / "no-such-model")


def test_wrong_kind_of_model_is_a_clear_error(tmp_path, tiny_model_dir):
    not_a_model = tmp_path / "images"
    not_a_model.mkdir()
    with pytest.raises(ModelLoadError, match="missing component folder.*unet/"):
        load_t2v(not_a_model)
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="is a file"):
        load_t2v(tmp_path / "file.bin")
    image_model = tmp_path / "image-model"
    import shutil

    shutil.copytree(tiny_model_dir, image_model)
    config = json.loads((image_model / "unet" / "config.json").read_text())
    config["_class_name"] = "UNet2DConditionModel"
    (image_model / "unet" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="not a UNet3DConditionModel"):
        load_t2v(image_model)


def test_overlong_prompt_is_refused_not_truncated(tiny_model):
    prompt = " ".join(["red"] * 40)  # the tiny tokenizer reads 16 tokens
    with pytest.raises(ValueError, match="needs 42 tokens.*at most 16"):
        tiny_model.encode_prompt([prompt])


def test_cli_reports_user_errors_without_traceback_and_records_the_failure(tmp_path, tiny_model_dir, source_latents):
    failure = tmp_path / "failures" / "row.edit.json"
    cmd = _edit_cmd(source_latents, tmp_path / "out", tmp_path / "x.pt", tmp_path / "missing-model", 2, failure=failure)
    result = subprocess.run(cmd, env=ENV, capture_output=True, text=True)
    assert result.returncode == 1
    assert "dreammotion edit: error:" in result.stderr and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    record = json.loads(failure.read_text())
    assert record["stage"] == "edit" and "does not exist" in record["error"]
    # the same command, now succeeding, removes the stale record
    ok = _edit_cmd(source_latents, tmp_path / "out", tmp_path / "x.pt", tiny_model_dir, 2, failure=failure)
    subprocess.run(ok, env=ENV, capture_output=True, check=True)
    assert not failure.exists()


def test_masks_with_wrong_frame_count_are_refused(tmp_path, tiny_model_dir, source_latents):
    from PIL import Image

    masks = tmp_path / "masks"
    masks.mkdir()
    for i in range(3):  # the video has 4 frames
        Image.new("L", (16, 16), 255).save(masks / f"{i:05d}.png")
    cmd = _edit_cmd(source_latents, tmp_path / "out", tmp_path / "x.pt", tiny_model_dir, 2)
    cmd[cmd.index("--masks") + 1] = str(masks)
    result = subprocess.run(cmd, env=ENV, capture_output=True, text=True)
    assert result.returncode == 1 and "holds 3 masks but the video has 4 frames" in result.stderr


def test_latent_file_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="nope.safetensors does not exist"):
        load_latents(tmp_path / "nope.safetensors")


def test_hub_id_not_in_cache_offline_is_named_at_once(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.time()
    with pytest.raises(ModelLoadError, match="'nobody/not-a-cached-model' is not in the cache while offline"):
        load_t2v("nobody/not-a-cached-model")
    assert time.time() - started < 5  # no retries
