"""The conditioned second stage: a video-to-video refiner that reads the low-resolution clip.

A cascaded model's super-resolution stage (SR3, Imagen, Show-1) is not an unconditional
high-resolution prior run at a strength: it denoises the high-resolution clip while seeing the
upsampled low-resolution one, concatenated to its input channels. The shipped 64x64 refiner is such
a UNet3D: its input has twice the latent channels of its output (noisy latents + the latents of the
Lanczos-upsampled 32x32 clip), so ``takes_condition(unet)`` tells the two kinds apart from the
model's own config, and ``second_stage.json`` in its folder records how it was trained.

Training (``python -m dreammotion.prior.train_refiner``) and inference must see the same
conditioning clip, so the training batches are upsampled by ``lanczos_upsample_torch``, a torch
twin of Pillow's Lanczos resize (``resize_frames``, what the workflow runs), equal to it within one
grey level.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

REFINER_FILE = "second_stage.json"


def takes_condition(unet) -> bool:
    """True for a UNet whose input is its output's latents plus a conditioning clip's latents."""
    return int(unet.config.in_channels) == 2 * int(unet.config.out_channels)


def read_refiner_info(folder: str | Path) -> dict:
    """The training record of a conditioned second stage ({} when the folder has none)."""
    from dreammotion.records import read_json_object

    path = Path(folder) / REFINER_FILE
    return read_json_object(path, "second-stage record") if path.is_file() else {}


def residual_scale(folder: str | Path | None, unet) -> float:
    """The factor of a residual refiner (its output latents are condition + x / factor), or 0 for a
    model that generates the clip itself (every unconditioned model)."""
    if not takes_condition(unet) or folder is None:
        return 0.0
    return float(read_refiner_info(folder).get("residual_scale", 0.0))


def _lanczos3(x: np.ndarray) -> np.ndarray:
    return np.where(np.abs(x) < 3, np.sinc(x) * np.sinc(x / 3), 0.0)


def lanczos_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) weights of Pillow's Lanczos resampling along one axis (support 3,
    widened by the scale when downsampling; taps past the border dropped and renormalised)."""
    scale = size_in / size_out
    stretch = max(scale, 1.0)
    support = 3.0 * stretch
    weights = np.zeros((size_out, size_in))
    for i in range(size_out):
        centre = (i + 0.5) * scale
        first = max(int(centre - support + 0.5), 0)
        last = min(int(centre + support + 0.5), size_in)
        taps = np.arange(first, last)
        w = _lanczos3((taps - centre + 0.5) / stretch)
        weights[i, taps] = w / w.sum()
    return weights


def lanczos_upsample_torch(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(..., h, w) grey levels in [0, 255] -> (..., height, width), as Pillow does it: the horizontal
    pass, rounding and clipping to 8 bits, then the vertical pass, rounded and clipped again."""
    h, w = frames.shape[-2:]
    rows = torch.as_tensor(lanczos_matrix(h, height), dtype=torch.float32, device=frames.device)
    cols = torch.as_tensor(lanczos_matrix(w, width), dtype=torch.float32, device=frames.device)
    wide = (frames.float() @ cols.T).round().clamp(0, 255)
    return (rows @ wide).round().clamp(0, 255)
