import json
import os
import subprocess

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")


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


# -- video test helpers (test_frames.py, test_video_inputs.py) -------------------------------------------

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


# -- metrics records (test_tables.py, test_paper_tables.py) ----------------------------------------------


def write_metrics_records(folder, records) -> list[str]:
    """Write each record as FOLDER/metrics/VARIANT/ID.json, as the metrics stage lays them out; their paths."""
    paths = []
    for r in records:
        path = folder / "metrics" / r["variant"] / f"{r['id']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(r))
        paths.append(str(path))
    return paths
