"""Weight-free masks: OpenCV GrabCut on the prompt frame, then tracked frame to frame.

Prompt frame: the box (or the foreground points' bounding box plus a margin) is probable
foreground, everything outside it sure background; inside the box, colours that are common outside
it start as probable background, and clicked points are sure foreground/background. GrabCut
(``GC_INIT_WITH_MASK``, a few iterations) then learns a background and a foreground colour model.

Tracking: every next frame starts from its neighbour's mask (eroded core sure foreground, the rest
probable foreground, a ``track_radius`` band around it probable background, the rest sure
background) and is cut once with the prompt frame's colour models frozen. An object that moves
less than ``track_radius`` pixels per frame is followed. The largest connected component is kept.

Small frames are upscaled (nearest neighbour) to a short side of at least WORKING_SHORT_SIDE for
the cut and the masks scaled back by area: at 32 px GrabCut's smoothness term otherwise dominates
and shaves thin parts off. GrabCut separates colours, so it suits objects whose colours differ from
the background (the synthetic suite, the demo, CI); use SAM for real footage.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from dreammotion.masks.ops import elliptical_kernel, empty_mask_error, largest_component, propagation_order
from dreammotion.masks.spec import BoxPrompt, PointsPrompt, PromptSpec, spec_error

FIRST_FRAME_ITERATIONS = 5
WORKING_SHORT_SIDE = 128
# A colour is "common outside the box" if this fraction of the outside pixels has it.
COMMON_COLOUR_FRACTION = 0.002
# Use the background-colour hint only if it leaves this fraction of the box as probable foreground.
MIN_DISTINCT_FRACTION = 0.05

# GrabCut's Gaussian mixture colour models (background, foreground), as OpenCV stores them.
ColourModels = tuple[np.ndarray, np.ndarray]


def default_track_radius(height: int, width: int) -> int:
    """Search band around the previous mask: 10% of the short side, at least 4 pixels."""
    return max(4, round(0.1 * min(height, width)))


def default_points_margin(height: int, width: int) -> int:
    """Margin around the points' bounding box that GrabCut may grow into: 20% of the short side."""
    return max(4, round(0.2 * min(height, width)))


def working_scale(height: int, width: int) -> int:
    """Integer upscaling that GrabCut works at, so that the short side is at least WORKING_SHORT_SIDE."""
    return max(1, -(-WORKING_SHORT_SIDE // min(height, width)))


def _scale_prompt(prompt: PromptSpec, factor: int) -> PromptSpec:
    """The prompt in the coordinates of frames upscaled by ``factor``."""
    if isinstance(prompt, BoxPrompt):
        return dataclasses.replace(prompt, box=tuple(v * factor for v in prompt.box))
    scaled = tuple(((x + 0.5) * factor, (y + 0.5) * factor) for x, y in prompt.points)  # pixel centres
    return dataclasses.replace(prompt, points=scaled)


def segment_with_grabcut(
    frames: np.ndarray,
    prompt: PromptSpec,
    *,
    track_radius: int | None = None,
    context: str = "",
) -> tuple[np.ndarray, dict]:
    """Binary masks (F, H, W) bool for RGB ``frames`` (F, H, W, 3) uint8, and a report of the settings."""
    num_frames, height, width = frames.shape[:3]
    radius = default_track_radius(height, width) if track_radius is None else int(track_radius)
    factor = working_scale(height, width)
    if factor > 1:
        size = (width * factor, height * factor)
        frames = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_NEAREST) for f in frames])
        prompt = _scale_prompt(prompt, factor)
    masks = np.zeros(frames.shape[:3], dtype=bool)
    masks[prompt.frame], colour_models = _segment_prompt_frame(frames[prompt.frame], prompt, context)
    if not masks[prompt.frame].any():
        raise empty_mask_error(context, prompt.text, "grabcut", prompt.frame)
    for frame, source in propagation_order(num_frames, prompt.frame):
        masks[frame] = _track(frames[frame], masks[source], radius * factor, colour_models, prompt, frame, context)
        if not masks[frame].any():
            raise empty_mask_error(context, prompt.text, "grabcut", frame)
    if factor > 1:  # back to frame size: a pixel is object if most of its upscaled block is
        masks = np.stack([cv2.resize(m.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA) >= 0.5 for m in masks])
    report = {
        "first_frame_iterations": FIRST_FRAME_ITERATIONS,
        "track_radius": radius,
        "working_scale": factor,
        "colour_models": "learned on the prompt frame, frozen while tracking",
    }
    return masks, report


def _segment_prompt_frame(frame_rgb: np.ndarray, prompt: PromptSpec, context: str) -> tuple[np.ndarray, ColourModels]:
    """Mask of the prompt frame and the colour models (background, foreground GMMs) GrabCut learned."""
    height, width = frame_rgb.shape[:2]
    if isinstance(prompt, BoxPrompt):
        x0, y0, x1, y1 = _pixel_box(prompt.box, height, width)
        if x1 - x0 >= width and y1 - y0 >= height:
            raise spec_error(
                context,
                f"mask spec {prompt.text!r}: the box covers the whole frame, so GrabCut has no background "
                "to learn from; draw a tighter box",
            )
    else:
        x0, y0, x1, y1 = _points_box(prompt, height, width)
    region = np.zeros((height, width), dtype=bool)
    region[y0:y1, x0:x1] = True
    grabcut_labels = np.full((height, width), cv2.GC_BGD, dtype=np.uint8)
    grabcut_labels[region] = cv2.GC_PR_FGD
    # Colours seen outside the box are probably background inside it too. Without this, GrabCut's
    # foreground model, first learned from the whole box, can adopt a flat background shade (a
    # checker cell inside the box) and keep it.
    inside_background_like = region & _background_like(frame_rgb, region)
    if (region & ~inside_background_like).sum() >= MIN_DISTINCT_FRACTION * region.sum():
        grabcut_labels[inside_background_like] = cv2.GC_PR_BGD
    if isinstance(prompt, PointsPrompt):
        _mark_points(grabcut_labels, prompt)
    colour_models = (np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64))
    _run_grabcut(frame_rgb, grabcut_labels, colour_models, cv2.GC_INIT_WITH_MASK, FIRST_FRAME_ITERATIONS,
                 prompt, prompt.frame, context)
    return largest_component(_foreground(grabcut_labels)), colour_models


def _background_like(frame_rgb: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Pixels whose colour (quantised to 16 levels per channel, +-1 level) is common outside ``region``."""
    levels = (frame_rgb // 16).astype(np.int64)
    bins = levels[..., 0] * 256 + levels[..., 1] * 16 + levels[..., 2]
    outside = bins[~region]
    counts = np.bincount(outside, minlength=16**3).reshape(16, 16, 16)
    common = counts >= max(3, COMMON_COLOUR_FRACTION * len(outside))
    # Grow the set of common colours by one level in every direction (noise crosses bin edges).
    padded = np.pad(common, 1)
    grown = np.zeros_like(common)
    for dr in range(3):
        for dg in range(3):
            for db in range(3):
                grown |= padded[dr : dr + 16, dg : dg + 16, db : db + 16]
    return grown.reshape(-1)[bins]


def _track(
    frame_rgb: np.ndarray,
    previous: np.ndarray,
    radius: int,
    colour_models: ColourModels,
    prompt: PromptSpec,
    frame: int,
    context: str,
) -> np.ndarray:
    """Segment ``frame_rgb`` near the ``previous`` mask with the prompt frame's colour models.

    The colour models stay frozen (GC_EVAL_FREEZE_MODEL, one graph cut): re-learning them from the
    previous mask, which after motion holds background pixels, lets small objects fade away.
    """
    previous_u8 = previous.astype(np.uint8)
    kernel = elliptical_kernel(radius)
    core = cv2.erode(previous_u8, kernel) > 0
    reach = cv2.dilate(previous_u8, kernel) > 0
    grabcut_labels = np.full(previous.shape, cv2.GC_BGD, dtype=np.uint8)
    grabcut_labels[reach] = cv2.GC_PR_BGD
    grabcut_labels[previous] = cv2.GC_PR_FGD
    grabcut_labels[core] = cv2.GC_FGD
    _run_grabcut(frame_rgb, grabcut_labels, colour_models, cv2.GC_EVAL_FREEZE_MODEL, 1, prompt, frame, context)
    return largest_component(_foreground(grabcut_labels))


def _points_box(prompt: PointsPrompt, height: int, width: int) -> tuple[int, int, int, int]:
    """The region GrabCut searches for a points prompt: the foreground points' bounding box plus a margin."""
    margin = default_points_margin(height, width)
    xs = [x for x, _ in prompt.positive_points()]
    ys = [y for _, y in prompt.positive_points()]
    x0, y0 = max(0, int(min(xs)) - margin), max(0, int(min(ys)) - margin)
    x1, y1 = min(width, int(max(xs)) + 1 + margin), min(height, int(max(ys)) + 1 + margin)
    return x0, y0, x1, y1


def _mark_points(labels: np.ndarray, prompt: PointsPrompt) -> None:
    """Clicked points are sure foreground / background, as small discs rather than single pixels."""
    dot = max(1, min(labels.shape) // 64)
    for (x, y), label in zip(prompt.points, prompt.labels):
        cv2.circle(labels, (int(x), int(y)), dot, int(cv2.GC_FGD if label == 1 else cv2.GC_BGD), thickness=-1)


def _run_grabcut(frame_rgb, labels, colour_models, mode, iterations, prompt, frame, context) -> None:
    """cv2.grabCut in place on ``labels`` and ``colour_models``; OpenCV failures name the row and frame."""
    frame_bgr = np.ascontiguousarray(frame_rgb[..., ::-1])
    background_model, foreground_model = colour_models
    # GrabCut seeds its colour models with k-means on OpenCV's global RNG: fix it for reproducible masks.
    cv2.setRNGSeed(0)
    try:
        cv2.grabCut(frame_bgr, labels, None, background_model, foreground_model, iterations, mode)
    except cv2.error as err:
        reason = getattr(err, "msg", str(err)).strip()
        raise spec_error(
            context,
            f"mask spec {prompt.text!r}: GrabCut failed on frame {frame} ({reason}); "
            "the box may cover the whole frame or the mask may have drifted onto the background",
        ) from None


def _foreground(labels: np.ndarray) -> np.ndarray:
    return (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)


def _pixel_box(box: tuple[float, float, float, float], height: int, width: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    return max(0, int(np.floor(x0))), max(0, int(np.floor(y0))), min(width, int(np.ceil(x1))), min(height, int(np.ceil(y1)))
