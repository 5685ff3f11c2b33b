"""DDIM sampling from a text-to-video model with classifier-free guidance (for sample grids and gates)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dreammotion.models.ddim import ddim_scheduler, guided_ddim
from dreammotion.models.loading import T2VModel


@torch.no_grad()
def sample_clips(
    model: T2VModel,
    prompts: list[str],
    *,
    frames: int = 8,
    steps: int = 30,
    guidance_scale: float = 5.0,
    seed: int = 0,
    batch: int = 16,
) -> np.ndarray:
    """Generate one clip per prompt: uint8 (N, F, H, W, 3). DDIM (eta 0) over the model's schedule."""
    unet_cfg = model.unet.config
    generator = torch.Generator("cpu").manual_seed(seed)
    empty = model.encode_prompt([""])
    outputs = []
    for start in range(0, len(prompts), batch):
        chunk = prompts[start : start + batch]
        cond = model.encode_prompt(chunk)
        shape = (len(chunk), unet_cfg.out_channels, frames, unet_cfg.sample_size, unet_cfg.sample_size)
        latents = torch.randn(shape, generator=generator)
        scheduler = ddim_scheduler(model, steps)
        latents = guided_ddim(model, latents, scheduler.timesteps, scheduler, cond,
                              empty.expand(len(chunk), -1, -1), guidance_scale=guidance_scale)
        for clip_latents in latents:
            pixels = model.decode_latents(clip_latents[None].to(model.dtype))  # (F, 3, H, W) in [-1, 1]
            outputs.append(((pixels.permute(0, 2, 3, 1) + 1) * 127.5).round().clamp(0, 255).byte().cpu().numpy())
    return np.stack(outputs)


def save_grid(clips: np.ndarray, path: str | Path, scale: int = 2) -> None:
    """PNG grid: one row per clip, one column per frame, pixels enlarged `scale` times."""
    from PIL import Image

    from dreammotion.utils.atomic import atomic_path

    n, f, h, w, _ = clips.shape
    grid = clips.transpose(0, 2, 1, 3, 4).reshape(n * h, f * w, 3)
    image = Image.fromarray(grid).resize((f * w * scale, n * h * scale), Image.NEAREST)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
