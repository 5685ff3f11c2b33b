"""Exact-by-construction classifiers of the synthetic domain: which colour and which shape a clip shows.

No learned weights. For a clip (F, H, W, 3) uint8:

1. Background: of the domain's backgrounds (every colour x texture, rendered without object),
   the one that the most pixels of the clip match within ``DIFF_THRESHOLD``. It needs no prompt.
2. Object pixels: those that differ from that background by more than ``DIFF_THRESHOLD`` in some
   channel, kept only in each frame's largest connected region (so that isolated noise pixels of a
   generated sample do not count as object).
3. Colour: the palette colour (``OBJECT_COLOURS``) nearest to the median RGB of the object pixels.
4. Shape: for each frame's object mask, every candidate shape is rendered at the mask's centroid
   with the size that gives the mask's area; the shape whose render overlaps the mask best
   (intersection over union, averaged over frames) wins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dreammotion.synthetic.render import (
    BACKGROUND_COLOURS,
    OBJECT_COLOURS,
    SHAPES,
    SUPERSAMPLE,
    TEXTURES,
    ClipSpec,
    _inside,
    _pool,
    render_background,
    sample_grid,
)

DIFF_THRESHOLD = 48
MIN_PIXELS = 3
# Area of each shape in units of size**2 (from the inequalities in render._inside).
SHAPE_AREA = {
    "circle": math.pi,
    "square": (2 * 0.85) ** 2,
    "diamond": 2 * 1.2**2,
    "triangle": 3 * math.sqrt(3) / 4 * 1.25**2,
    "cross": 8 * 0.35 * 1.05 - 4 * 0.35**2,
}


@dataclass
class Classification:
    colour: str | None  # None: no object found
    shape: str | None
    object_pixels: int
    shape_iou: float


def candidate_backgrounds(size: int) -> dict[tuple[str, str], np.ndarray]:
    """(background, texture) -> (H, W, 3) int16 render of that empty background."""
    out = {}
    for background in BACKGROUND_COLOURS:
        for texture in TEXTURES:
            spec = ClipSpec(colour="red", background=background, texture=texture)
            out[(background, texture)] = np.round(render_background(spec, size)).astype(np.int16)
    return out


def match_background(clip: np.ndarray) -> tuple[tuple[str, str], np.ndarray]:
    """The domain background that most pixels of the clip match: ((colour, texture), (H, W, 3))."""
    clip = clip.astype(np.int16)
    best, best_count, best_image = None, -1, None
    for key, image in candidate_backgrounds(clip.shape[1]).items():
        count = int((np.abs(clip - image[None]).max(axis=-1) <= DIFF_THRESHOLD).sum())
        if count > best_count:
            best, best_count, best_image = key, count, image
    return best, best_image


def largest_region(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected region of a (H, W) bool mask (all False if the mask is empty)."""
    from scipy import ndimage

    labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if count <= 1:
        return mask
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (1 + int(np.argmax(sizes)))


def object_masks(clip: np.ndarray) -> np.ndarray:
    """(F, H, W) bool: per frame, the largest region of pixels that differ from the matched background."""
    _, background = match_background(clip)
    differs = np.abs(clip.astype(np.int16) - background[None]).max(axis=-1) > DIFF_THRESHOLD
    return np.stack([largest_region(frame) for frame in differs])


def classify_colour(clip: np.ndarray, masks: np.ndarray) -> str | None:
    if masks.sum() < MIN_PIXELS:
        return None
    rgb = np.median(clip[masks].astype(np.float64), axis=0)
    names = list(OBJECT_COLOURS)
    palette = np.array([OBJECT_COLOURS[n] for n in names], dtype=np.float64)
    return names[int(np.argmin(((palette - rgb) ** 2).sum(axis=1)))]


def _shape_iou(mask: np.ndarray, shape: str) -> float:
    size = mask.shape[0]
    ys, xs = np.nonzero(mask)
    cx, cy = (xs.mean() + 0.5) / size, (ys.mean() + 0.5) / size
    radius = math.sqrt(mask.sum() / SHAPE_AREA[shape]) / size
    axis = sample_grid(size)
    inside = _inside(shape, axis[None, :] - cx, axis[:, None] - cy, radius, np)
    rendered = _pool(inside.astype(np.float64), size, SUPERSAMPLE) >= 0.5
    union = np.logical_or(rendered, mask).sum()
    return float(np.logical_and(rendered, mask).sum() / union) if union else 0.0


def classify_shape(masks: np.ndarray) -> tuple[str | None, float]:
    usable = [m for m in masks if m.sum() >= MIN_PIXELS]
    if not usable:
        return None, 0.0
    scores = {shape: float(np.mean([_shape_iou(m, shape) for m in usable])) for shape in SHAPES}
    best = max(scores, key=scores.get)
    return best, scores[best]


def classify_clip(clip: np.ndarray) -> Classification:
    """Colour and shape of the moving object in a (F, H, W, 3) uint8 clip."""
    masks = object_masks(clip)
    shape, iou = classify_shape(masks)
    return Classification(classify_colour(clip, masks), shape, int(masks.sum()), iou)


# -- degradations the classifier is validated on (generated samples are not exact renders) ------

DEGRADATIONS: dict[str, dict] = {
    "none": {},
    "noise_5": {"noise": 5.0},
    "noise_10": {"noise": 10.0},
    "blur_0.6": {"blur": 0.6},
    "colour_shift_15": {"shift": 15.0},
    "all": {"noise": 8.0, "blur": 0.5, "shift": 10.0},
}


def degrade(clip: np.ndarray, rng: np.random.Generator, *, noise: float = 0.0, blur: float = 0.0,
            shift: float = 0.0) -> np.ndarray:
    """A (F, H, W, 3) uint8 clip with Gaussian blur (sigma in pixels), a global per-channel colour
    shift drawn from [-shift, shift] and Gaussian pixel noise of std `noise` (of 255), in that order."""
    from scipy import ndimage

    out = clip.astype(np.float64)
    if blur > 0:
        out = ndimage.gaussian_filter(out, sigma=(0, blur, blur, 0))
    if shift > 0:
        out = out + rng.uniform(-shift, shift, size=3)
    if noise > 0:
        out = out + rng.normal(0.0, noise, size=out.shape)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def validate(specs: list[ClipSpec], size: int = 32, frames: int = 8, seed: int = 0) -> dict[str, dict]:
    """Colour and shape accuracy of ``classify_clip`` on ground-truth renders of `specs` under each
    of ``DEGRADATIONS``: what the gate's numbers can be trusted for."""
    from dreammotion.synthetic.render import render

    renders = [render(s, size, frames)[0] for s in specs]
    report = {}
    for name, settings in DEGRADATIONS.items():
        rng = np.random.default_rng(seed)
        results = [classify_clip(degrade(clip, rng, **settings)) for clip in renders]
        report[name] = {
            "n": len(specs),
            "colour_accuracy": float(np.mean([r.colour == s.colour for r, s in zip(results, specs)])),
            "shape_accuracy": float(np.mean([r.shape == s.shape for r, s in zip(results, specs)])),
        }
    return report
