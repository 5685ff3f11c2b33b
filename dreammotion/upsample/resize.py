"""Spatial resizing of uint8 clips with Lanczos filtering (the `resize` method, and the input of `v2v`)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from dreammotion.errors import InputError

RESIZE_FILTER = "lanczos"  # recorded in upsample.json


def target_size(height: int, width: int, scale: int, *, target_height: int | None = None,
                target_width: int | None = None) -> tuple[int, int]:
    """Output (height, width): explicit `target_height`/`target_width` win (e.g. 576x320 -> 1024x576),
    otherwise the input size times the integer `scale`."""
    if (target_height is None) != (target_width is None):
        raise InputError("give both --height and --width, or neither (then --scale applies)")
    if target_height is not None:
        if target_height < 1 or target_width < 1:
            raise InputError(f"target size must be positive, got {target_height}x{target_width}")
        return int(target_height), int(target_width)
    if scale < 1:
        raise InputError(f"--scale must be an integer >= 1, got {scale}")
    return height * scale, width * scale


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """(F, h, w, 3) uint8 -> (F, height, width, 3) uint8, Lanczos per frame (Pillow).

    A frame already at the target size is returned unchanged (Pillow would still filter it)."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise TypeError(f"resize_frames expects uint8 frames (F, H, W, 3), got {frames.dtype} {frames.shape}")
    if frames.shape[1:3] == (height, width):
        return frames.copy()
    resized = [np.asarray(Image.fromarray(f).resize((width, height), Image.Resampling.LANCZOS)) for f in frames]
    return np.stack(resized)
