import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

REPO = Path(__file__).parents[1]


def load_bench_script(relative: str, name: str):
    """A script under bench/ (not a package) imported as module `name`, for its tests."""
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random text-to-video model (pixel-shuffle autoencoder) saved in diffusers layout."""
    from dreammotion.models.tiny import save_tiny_t2v

    return save_tiny_t2v(tmp_path_factory.mktemp("models") / "tiny-ps", vae="pixelshuffle")


@pytest.fixture(scope="session")
def tiny_kl_model_dir(tmp_path_factory):
    """A tiny random text-to-video model with an AutoencoderKL, ZeroScope's structure."""
    from dreammotion.models.tiny import save_tiny_t2v

    return save_tiny_t2v(tmp_path_factory.mktemp("models") / "tiny-kl", vae="kl")


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    from dreammotion.models import load_t2v

    return load_t2v(tiny_model_dir)


def edit_inputs(model, frames: int, size: int, seed: int):
    """One edit's inputs on a tiny model: (model, x_src, prompt embeddings, mask of ones, x away from
    x_src (so that the SSM losses are > 0) with grad, noise)."""
    import torch

    from dreammotion.edit.optimizer import PromptEmbeddings

    torch.manual_seed(seed)
    x_src = model.encode_frames(torch.rand(frames, 3, size, size) * 2 - 1)
    emb = PromptEmbeddings(*(model.encode_prompt([p])[0] for p in ("a blue square", "a red circle", "")))
    mask = torch.ones(1, 1, *x_src.shape[2:])
    x = (x_src + 0.3 * torch.randn_like(x_src)).requires_grad_(True)
    return model, x_src, emb, mask, x, torch.randn_like(x_src)


def encode_source(model, seed: int, frames: int = 4, size: int = 16):
    """Source latents on a tiny model: FRAMES random SIZE x SIZE frames in [-1, 1] drawn after
    `torch.manual_seed(SEED)`, encoded."""
    import torch

    torch.manual_seed(seed)
    return model.encode_frames(torch.rand(frames, 3, size, size) * 2 - 1)


@pytest.fixture(scope="module")
def source(tiny_model):
    """Source latents of 4 random 16 x 16 frames (seed 1) on the tiny model, once per test module
    (the edit never changes its source latents in place)."""
    return encode_source(tiny_model, seed=1)


# -- video test helpers (test_frames.py, test_video_inputs.py; random_clip also test_report.py, test_upsample.py) ---

RED, GREEN, BLUE, WHITE, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)


def run_ffmpeg(*args: str) -> None:
    from dreammotion.io.ffmpeg_tool import ffmpeg_binary

    subprocess.run([ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args], check=True)


def quadrant_image(height: int = 32, width: int = 64) -> np.ndarray:
    """Top-left red, top-right green, bottom-left blue, bottom-right white."""
    image = np.zeros((height, width, 3), np.uint8)
    image[: height // 2, : width // 2] = RED
    image[: height // 2, width // 2 :] = GREEN
    image[height // 2 :, : width // 2] = BLUE
    image[height // 2 :, width // 2 :] = WHITE
    return image


def assert_colour(pixel: np.ndarray, colour: tuple[int, int, int], tolerance: int = 40) -> None:
    assert np.abs(pixel.astype(int) - np.array(colour)).max() <= tolerance, (pixel, colour)


def random_clip(frames: int, height: int, width: int, seed: int = 0, rng: np.random.Generator | None = None) -> np.ndarray:
    """Random uint8 frames (FRAMES, HEIGHT, WIDTH, 3): every frame differs. Drawn from RNG when given
    (successive calls then differ), else from a fresh generator seeded SEED (the same clip for the same arguments)."""
    rng = np.random.default_rng(seed) if rng is None else rng
    return rng.integers(0, 256, (frames, height, width, 3), dtype=np.uint8)


# -- metrics records (test_tables.py, test_paper_tables.py, test_benchmark_report.py) ------------------------


def write_metrics_records(folder, records) -> list[str]:
    """Write each record as FOLDER/metrics/VARIANT/ID.json, as the metrics stage lays them out; their paths."""
    paths = []
    for r in records:
        path = folder / "metrics" / r["variant"] / f"{r['id']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(r))
        paths.append(str(path))
    return paths


def metric(value, **details):
    """An ok metric entry; DETAILS add fields (clip_model, substitute_for, ...)."""
    return {"value": value, "status": "ok", "reason": None, **details}


MISSING = {"value": None, "status": "missing", "reason": "CLIP folder /m/clip does not exist"}
FAILED = {"value": None, "status": "failed", "reason": "RuntimeError: tracker exploded"}


def record(edit_id, variant, metrics, **extra):
    """A metrics record (dreammotion.metrics/1) of one edit with these METRICS; EXTRA overrides fields."""
    base = {
        "schema": "dreammotion.metrics/1", "id": edit_id, "variant": variant, "status": "ok", "error": None,
        "source_prompt": "a dog running", "target_prompt": "a cat running", "settings": {"lr": 0.1, "iterations": 200},
        "runtime_s": 10.0, "peak_memory_mib": 1000.0, "final_losses": {"vdds": 0.5}, "metrics": metrics,
    }
    base.update(extra)
    return base


# -- the workflow on a tiny project (test_workflow.py, test_batch_edit.py, test_layout.py, test_progress.py,
# test_report.py, test_upsample.py) -------------------------------------------------------------------------

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def write_clip(folder: Path, colour, frames=4, size=16):
    folder.mkdir(parents=True)
    for i in range(frames):
        a = np.full((size, size, 3), 90, np.uint8)
        a[4:10, 2 + i : 8 + i] = colour
        Image.fromarray(a).save(folder / f"{i:05d}.png")


# Reaches the edit unchanged (the tiny vocabulary lacks ';', '$(' ...: the test config only warns about them).
SHELL_PROMPT = '"a ""blue"" square; $(id) & `x`"'


def make_project(tmp_path: Path, model_dir: Path, *, extra_config: dict | None = None, rows: str | None = None):
    write_clip(tmp_path / "clips" / "red square", (220, 30, 30))
    write_clip(tmp_path / "clips" / "green", (30, 200, 30))
    (tmp_path / "manifest.csv").write_text(
        rows
        or "id,video,source_prompt,target_prompt,mask,seed\n"
        f'red2blue,clips/red square,a red square,{SHELL_PROMPT},"box=1,3,11,11@0",1\n'
        "green2red,clips/green,a green square,a red square,none,2\n"
    )
    config = {
        "manifest": "manifest.csv",
        "model": {"pretrained": str(model_dir), "device": "cpu"},
        "frames": {"num_frames": 4, "height": 16, "width": 16},
        "edit": {"iterations": 2, "checkpoint_every": 1},
        "metrics": {"clip": {"pretrained": None}, "motion": {"tracker": "lucas-kanade"}},
        "validation": {"unknown_words": "warn"},
    }
    for key, value in (extra_config or {}).items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


def snakemake(workdir: Path, *args, check=True, configfile=True):
    cmd = [*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           *(["--configfile", str(workdir / "config.yaml")] if configfile else []), "--cores", "2", *args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, env=env, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed ({result.returncode}):\n{result.stderr[-5000:]}")
    return result


def prior_trainer_args(tmp_path, *extra: str, batch: int = 2):
    """dreammotion.prior.train's arguments for a tiny prior under tmp_path (test_attention.py, test_prior_cuda.py)."""
    import argparse

    from dreammotion.prior import train

    parser = argparse.ArgumentParser()
    train.add_arguments(parser)
    return parser.parse_args(["--out", str(tmp_path / "m"), "--preset", "tiny", "--batch", str(batch), *extra])
