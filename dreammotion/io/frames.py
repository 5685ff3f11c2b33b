"""Folders of numbered PNG frames: the format every stage exchanges (``00000.png``, ``00001.png``...)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from dreammotion.utils.atomic import atomic_dir


def frame_paths(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"frame folder {folder} does not exist")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png" and p.stem.isdigit())
    if not paths:
        raise FileNotFoundError(f"frame folder {folder} holds no numbered PNG frames (00000.png, ...)")
    return paths


def read_frames(folder: str | Path) -> np.ndarray:
    """(F, H, W, 3) uint8 RGB."""
    frames = [np.asarray(Image.open(p).convert("RGB")) for p in frame_paths(folder)]
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise ValueError(f"frames in {folder} differ in size: {sorted(shapes)}")
    return np.stack(frames)


def read_masks(folder: str | Path) -> np.ndarray:
    """(F, H, W) float32 in [0, 1] (soft masks keep their feathering)."""
    masks = [np.asarray(Image.open(p).convert("L"), dtype=np.float32) / 255.0 for p in frame_paths(folder)]
    return np.stack(masks)


def write_frames(frames: np.ndarray, folder: str | Path) -> None:
    """Write (F, H, W, 3) uint8 RGB or (F, H, W) uint8 gray frames atomically as a numbered PNG folder."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        raise TypeError(f"write_frames expects uint8 frames, got {frames.dtype}")
    with atomic_dir(folder) as tmp:
        for i, frame in enumerate(frames):
            Image.fromarray(frame).save(tmp / f"{i:05d}.png")


def to_tensor(frames: np.ndarray):
    """uint8 (F, H, W, 3) -> float (F, 3, H, W) in [-1, 1]."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def to_uint8(frames) -> np.ndarray:
    """float (F, 3, H, W) in [-1, 1] -> uint8 (F, H, W, 3)."""
    x = ((frames.detach().float().cpu().clamp(-1, 1) + 1.0) * 127.5).round().byte()
    return x.permute(0, 2, 3, 1).numpy()
