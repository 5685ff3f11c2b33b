"""Metrics against a ground-truth edit (synthetic rows): PSNR/SSIM inside and outside the edit
region, and the per-frame centroid error of the edited object.

Regions. The edit region is where the source object is (source mask) or where the true edited
object is (ground-truth mask): ``inside = source_mask > 0.5 OR gt_mask > 0.5``; ``outside`` is the
rest, the background that a good edit leaves untouched. Without a ground-truth mask the source mask
alone defines the region. A ground-truth object that lies outside the edit mask (a background
edit: the mask is everything but the object, which the edit keeps) is not part of the edit region:
it is added only when at least half of its pixels are inside the source mask.

Flicker (temporal consistency against the truth). With the frame differences
``D_x(t) = x(t+1) - x(t)`` (RGB, grey levels), ``gt_flicker = sqrt(mean((D_edit - D_gt)^2))`` pooled
over every frame pair, pixel and channel of the region (inside: pixels inside the region in frame t
or t+1; outside: the rest). A perfect edit scores 0; an edit whose error is the same in every frame
(a constant colour offset) also scores 0: the metric measures temporal error only, what a viewer
sees as flicker or a wrong motion. ``edit_energy`` and ``gt_energy`` (RMS of ``D_edit`` and
``D_gt`` over the region) are written beside it.

Per-clip values are means over frames of the per-frame values (frames where the region is empty
are skipped and counted). PSNR is 10 log10(255^2 / MSE) over
the region's pixels and channels; a frame with MSE 0 has PSNR = inf (written as such, not capped).
SSIM is scikit-image's SSIM map (7x7 window, data range 255) averaged over the region's pixels.

Centroid error. The ground-truth centroid is the centroid of the ground-truth object mask. The
edited object is estimated from the edit by nearest colour: a pixel belongs to the object when its
RGB colour is closer to the object colour than to the background colour, where the object colour is
the median ground-truth colour inside the ground-truth mask (or ``object_colour`` if configured) and
the background colour the median ground-truth colour outside it. The error of a frame is the
Euclidean distance (pixels) between the two centroids; frames where either mask is empty have no
error and are counted in ``frames_without_object``.
"""

from __future__ import annotations

import math

import numpy as np

from dreammotion.metrics.results import MetricUnavailable, from_exception, ok

CENTROID_ESTIMATOR = (
    "nearest colour: edit pixels closer in RGB to the object colour than to the background colour "
    "(medians of the ground truth inside/outside its mask, unless object_colour is configured)"
)


# -- PSNR / SSIM ----------------------------------------------------------------------------------


def psnr_per_frame(frames_a: np.ndarray, frames_b: np.ndarray, region: np.ndarray | None = None) -> list[float | None]:
    """PSNR (dB, peak 255) of each frame pair of uint8 (F, H, W, 3) clips, over `region` (F, H, W) bool.

    None for a frame whose region is empty."""
    a = frames_a.astype(np.float64)
    b = frames_b.astype(np.float64)
    values = []
    for i in range(len(a)):
        squared = (a[i] - b[i]) ** 2  # (H, W, 3)
        pixels = squared if region is None else squared[region[i]]
        if pixels.size == 0:
            values.append(None)
            continue
        mse = float(pixels.mean())
        values.append(math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse))
    return values


def ssim_per_frame(frames_a: np.ndarray, frames_b: np.ndarray, region: np.ndarray | None = None) -> list[float | None]:
    """SSIM of each frame pair (scikit-image, 7x7 window), the map averaged over `region` (F, H, W) bool.

    None for a frame whose region is empty."""
    from skimage.metrics import structural_similarity

    values = []
    for i in range(len(frames_a)):
        _, ssim_map = structural_similarity(frames_a[i], frames_b[i], channel_axis=-1, data_range=255, full=True)
        ssim_map = ssim_map.mean(axis=-1)  # (H, W): mean over colour channels
        pixels = ssim_map if region is None else ssim_map[region[i]]
        if pixels.size == 0:
            values.append(None)
            continue
        values.append(float(pixels.mean()))
    return values


GT_OBJECT_IN_REGION = 0.5  # share of the ground-truth object inside the source mask to count it as edited


def edit_region(source_masks: np.ndarray, gt_masks: np.ndarray | None) -> np.ndarray:
    """Bool (F, H, W): the source mask, joined by the ground-truth object when that object is mostly
    inside the source mask (an object edit), not when it is outside (a background edit keeps it)."""
    inside = source_masks > 0.5
    if gt_masks is not None:
        gt_object = gt_masks > 0.5
        object_pixels = int(gt_object.sum())
        if object_pixels and (gt_object & inside).sum() >= GT_OBJECT_IN_REGION * object_pixels:
            inside = inside | gt_object
    return inside


def _clip_value(per_frame: list[float | None], **details) -> dict:
    """Mean over the frames whose region has pixels; missing if no frame has any."""
    defined = [v for v in per_frame if v is not None]
    if not defined:
        raise MetricUnavailable("the region is empty in every frame, so the metric is undefined")
    return ok(float(np.mean(defined)), per_frame=per_frame, frames_with_empty_region=len(per_frame) - len(defined), **details)


# -- flicker --------------------------------------------------------------------------------------


def pair_regions(inside: np.ndarray) -> dict[str, np.ndarray]:
    """Bool (F-1, H, W) regions of the frame pairs: "inside" where a pixel is inside in frame t or t+1,
    "outside" the rest (outside in both frames), "" every pixel."""
    touched = inside[:-1] | inside[1:]
    return {"": np.ones_like(touched), "_inside_mask": touched, "_outside_mask": ~touched}


def flicker(edit_frames: np.ndarray, gt_frames: np.ndarray, pairs: np.ndarray) -> dict:
    """RMS of (edit frame differences - ground-truth frame differences) over `pairs` (F-1, H, W) bool (see
    ``pair_regions``); raises MetricUnavailable if the clip has one frame or the region no pixel."""
    if len(edit_frames) < 2:
        raise MetricUnavailable("flicker needs at least 2 frames")
    if not pairs.any():
        raise MetricUnavailable("the region is empty in every frame pair, so the flicker is undefined")
    d_edit = np.diff(edit_frames.astype(np.float64), axis=0)  # (F-1, H, W, 3)
    d_gt = np.diff(gt_frames.astype(np.float64), axis=0)
    residual = d_edit - d_gt
    per_pair = [float(np.sqrt((residual[t][pairs[t]] ** 2).mean())) if pairs[t].any() else None for t in range(len(pairs))]
    return ok(
        float(np.sqrt((residual[pairs] ** 2).mean())),
        per_pair=per_pair,
        edit_energy=float(np.sqrt((d_edit[pairs] ** 2).mean())),
        gt_energy=float(np.sqrt((d_gt[pairs] ** 2).mean())),
        unit="grey levels (0-255), RMS over frame pairs, pixels and channels",
    )


# -- centroids ------------------------------------------------------------------------------------


def centroid(mask: np.ndarray) -> tuple[float, float] | None:
    """(x, y) centroid of a bool (H, W) mask in pixels, or None if it is empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return float(xs.mean()), float(ys.mean())


def reference_colours(gt_frames: np.ndarray, gt_object: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median RGB of the ground truth inside and outside its object mask."""
    if not gt_object.any():
        raise MetricUnavailable("the ground-truth mask is empty in every frame: no object colour")
    if gt_object.all():
        raise MetricUnavailable("the ground-truth mask covers every pixel: no background colour")
    return np.median(gt_frames[gt_object], axis=0), np.median(gt_frames[~gt_object], axis=0)


def nearest_colour_mask(frames: np.ndarray, object_colour: np.ndarray, background_colour: np.ndarray) -> np.ndarray:
    """Bool (F, H, W): pixels closer in RGB to `object_colour` than to `background_colour`."""
    pixels = frames.astype(np.float64)
    to_object = np.linalg.norm(pixels - np.asarray(object_colour, dtype=np.float64), axis=-1)
    to_background = np.linalg.norm(pixels - np.asarray(background_colour, dtype=np.float64), axis=-1)
    return to_object < to_background


def centroid_errors(gt_object: np.ndarray, edit_object: np.ndarray) -> list[float | None]:
    """Per-frame distance between the centroids of two (F, H, W) bool masks (None where one is empty)."""
    errors: list[float | None] = []
    for truth, estimate in zip(gt_object, edit_object):
        a, b = centroid(truth), centroid(estimate)
        errors.append(None if a is None or b is None else float(math.hypot(a[0] - b[0], a[1] - b[1])))
    return errors


def centroid_error_metric(
    edit_frames: np.ndarray, gt_frames: np.ndarray, gt_masks: np.ndarray, object_colour=None
) -> dict:
    gt_object = gt_masks > 0.5
    gt_object_colour, background_colour = reference_colours(gt_frames, gt_object)
    object_colour = gt_object_colour if object_colour is None else np.asarray(object_colour, dtype=np.float64)
    errors = centroid_errors(gt_object, nearest_colour_mask(edit_frames, object_colour, background_colour))
    found = [e for e in errors if e is not None]
    details = dict(
        per_frame=errors,
        frames_without_object=len(errors) - len(found),
        estimator=CENTROID_ESTIMATOR,
        object_colour=[float(c) for c in object_colour],
        background_colour=[float(c) for c in background_colour],
    )
    if not found:
        raise RuntimeError("the edited object was not found (or the ground-truth mask is empty) in every frame")
    return ok(float(np.mean(found)), **details)


# -- all ground-truth metrics ---------------------------------------------------------------------


def compute_groundtruth_metrics(
    edit_frames: np.ndarray,
    gt_frames: np.ndarray,
    source_masks: np.ndarray,
    gt_masks: np.ndarray | None = None,
    object_colour=None,
) -> dict:
    """gt_psnr[_inside_mask|_outside_mask], gt_ssim[...], gt_flicker[...] and centroid_error_px (see the
    module docstring)."""
    inside = edit_region(source_masks, gt_masks)
    region_source = "source mask OR ground-truth mask" if gt_masks is not None else "source mask"
    regions = {
        "": (None, {}),
        "_inside_mask": (inside, {"region": f"inside ({region_source})"}),
        "_outside_mask": (~inside, {"region": f"outside ({region_source})"}),
    }
    results = {}
    for suffix, pairs in pair_regions(inside).items():
        try:
            results["gt_flicker" + suffix] = {**flicker(edit_frames, gt_frames, pairs), **regions[suffix][1]}
        except Exception as err:  # recorded as missing/failed with its reason, never dropped
            results["gt_flicker" + suffix] = from_exception(err)
    for prefix, per_frame_function in (("gt_psnr", psnr_per_frame), ("gt_ssim", ssim_per_frame)):
        for suffix, (region, details) in regions.items():
            try:
                per_frame = per_frame_function(edit_frames, gt_frames, region)
                results[prefix + suffix] = _clip_value(per_frame, **details)
            except Exception as err:  # recorded as missing/failed with its reason, never dropped
                results[prefix + suffix] = from_exception(err)
    if gt_masks is None:
        results["centroid_error_px"] = from_exception(
            MetricUnavailable("no ground-truth object masks given (--gt-masks): no ground-truth centroid")
        )
    else:
        try:
            results["centroid_error_px"] = centroid_error_metric(edit_frames, gt_frames, gt_masks, object_colour)
        except Exception as err:
            results["centroid_error_px"] = from_exception(err)
    return results
