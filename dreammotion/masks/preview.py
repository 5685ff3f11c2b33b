"""Preview of a mask stage result: the frames with the mask tinted, as an mp4 a person can watch."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from dreammotion.io.write import write_video

TINT_RGB = np.array([255, 0, 160], dtype=np.float32)  # magenta: rare in natural footage and in the suite
TINT_STRENGTH = 0.55
OUTLINE_RGB = (0, 255, 255)  # cyan outline of the binarised mask: visible even on a magenta-ish object


def overlay_masks(frames: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(F, H, W, 3) uint8: frames tinted in proportion to the (soft) mask, binary mask outlined."""
    alpha = TINT_STRENGTH * masks.astype(np.float32)[..., None]
    blended = frames.astype(np.float32) * (1.0 - alpha) + TINT_RGB * alpha
    overlay = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    for frame, mask in zip(overlay, masks):
        contours, _ = cv2.findContours((mask > 0.5).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(frame, contours, -1, OUTLINE_RGB, thickness=1)
    return overlay


def write_preview(frames: np.ndarray, masks: np.ndarray, path: str | Path, fps: float = 8.0) -> Path:
    """Write the frames and, beside them, the mask overlay to ``path`` (H.264 mp4, atomically).

    ``write_video`` upscales small clips (nearest neighbour) to a viewable size, keeping mask edges exact.
    """
    side_by_side = np.concatenate([frames, overlay_masks(frames, masks)], axis=2)
    write_video(side_by_side, path, fps=fps)
    return Path(path)
