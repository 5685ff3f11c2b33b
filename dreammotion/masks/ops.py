"""Small mask operations shared by the segmenters: propagation order, boxes, components, drift, softening."""

from __future__ import annotations

import cv2
import numpy as np

from dreammotion.masks.spec import spec_error

# A frame's mask area more than this factor above or below the previous frame's is flagged as drift.
DEFAULT_AREA_JUMP = 2.0


def propagation_order(num_frames: int, prompt_frame: int) -> list[tuple[int, int]]:
    """(frame, source frame) pairs: forward from the prompt frame to the end, then backward to frame 0.

    Each frame is segmented with the prompt taken from its source frame's mask, so a prompt on a
    middle frame reaches both ends of the clip.
    """
    forward = [(i, i - 1) for i in range(prompt_frame + 1, num_frames)]
    backward = [(i, i + 1) for i in range(prompt_frame - 1, -1, -1)]
    return forward + backward


def elliptical_kernel(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Bounding box (x0, y0, x1, y1) of a binary mask, x1/y1 exclusive; None when empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def largest_component(mask: np.ndarray) -> np.ndarray:
    """Keep the largest 8-connected component of a binary mask (drops stray specks)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 2:  # background plus at most one component
        return mask.astype(bool)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == largest


def empty_mask_error(context: str, spec_text: str, method: str, frame: int):
    return spec_error(
        context,
        f"mask spec {spec_text!r} gave an empty mask on frame {frame} (method {method}); "
        "check that the box/points cover the object on the prompt frame, or provide masks with file:PATH",
    )


def check_not_empty(masks: np.ndarray, context: str, spec_text: str, method: str) -> None:
    for i, mask in enumerate(masks):
        if not mask.any():
            raise empty_mask_error(context, spec_text, method, i)


def find_drift(masks: np.ndarray, order: list[tuple[int, int]], area_jump: float = DEFAULT_AREA_JUMP) -> list[dict]:
    """Flags where a propagated mask's area jumps by more than ``area_jump``x, or a mask is empty.

    A jump usually means the tracker lost the object or spilled into the background. These are
    warnings for a person to look at the preview; an empty mask is turned into an error by the caller.
    """
    areas = masks.reshape(len(masks), -1).sum(axis=1)
    flags = []
    for frame, source in order:
        area, source_area = int(areas[frame]), int(areas[source])
        if area == 0:
            flags.append({"frame": frame, "from_frame": source, "kind": "empty", "area": 0, "source_area": source_area})
        elif source_area > 0:
            ratio = area / source_area
            if ratio > area_jump or ratio < 1.0 / area_jump:
                flags.append(
                    {"frame": frame, "from_frame": source, "kind": "area_jump", "area": area,
                     "source_area": source_area, "ratio": round(ratio, 4)}
                )
    return flags


def dilate_masks(masks: np.ndarray, radius: int) -> np.ndarray:
    """Grow binary masks by ``radius`` pixels (elliptical kernel); radius 0 returns them unchanged."""
    if radius <= 0:
        return masks.astype(bool)
    kernel = elliptical_kernel(radius)
    return np.stack([cv2.dilate(m.astype(np.uint8), kernel) > 0 for m in masks])


def feather_masks(masks: np.ndarray, radius: int) -> np.ndarray:
    """Soften mask edges over about ``radius`` pixels: Gaussian blur (sigma radius/2), float32 in [0, 1]."""
    soft = masks.astype(np.float32)
    if radius <= 0:
        return soft
    size = 2 * radius + 1
    blurred = [cv2.GaussianBlur(m, (size, size), sigmaX=radius / 2.0, borderType=cv2.BORDER_REPLICATE) for m in soft]
    return np.clip(np.stack(blurred), 0.0, 1.0).astype(np.float32)
