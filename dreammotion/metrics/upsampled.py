"""Metrics of the cascade's upsampled clip (``results/upsampled/{variant}/{id}/frames``), kept in
the edit's metrics record beside the edit's own.

- ``upsampled_clip_text_alignment`` / ``upsampled_clip_frame_consistency``: the CLIP metrics of the
  upsampled clip, with the same CLIP model as the edit's (after interpolate+sr its consecutive frames
  are 1/k of a frame apart, so its frame consistency is not comparable with the edit's).
- With the row's ground truth at the upsampled clip's size and frame rate (manifest
  ``ground_truth_upsampled``; for ``interpolate+sr``, ``ground_truth_interpolated``):
  ``upsampled_gt_psnr`` / ``upsampled_gt_ssim`` of the upsampled clip, and ``lanczos_gt_psnr`` /
  ``lanczos_gt_ssim`` of the Lanczos baseline at that size: the clip the second stage refines, resized
  with Lanczos instead, so that the difference is the second stage's alone. For resize and v2v that is
  the edit; for ``interpolate+sr`` the interpolated clip (``stages/interpolated``, before super-
  resolution: without an SR model the cascade is this baseline, difference 0).
- After ``interpolate+sr`` by k, the PSNR and SSIM also say their mean over the keyframes (frames
  ``i * k``: the edit's own frames) and over the in-betweens (the interpolation's), as ``keyframes``
  and ``in_betweens`` beside ``per_frame``.

A ground truth whose frame count or size differs from the clip it is compared with (e.g. the
edit-rate ``ground_truth_upsampled`` against interpolate+sr's clip, or a truth interpolated by another
k) makes those metrics ``missing``, with the sizes in the reason; nothing is compared frame by frame then.

No upsampled metric reads masks: the PSNR and SSIM are whole-frame, so the masks, which have the
edit's frame count, are never indexed by the upsampled clip's frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dreammotion.metrics.results import MetricUnavailable, from_exception

CLIP_NAMES = {"clip_text_alignment": "upsampled_clip_text_alignment",
              "clip_frame_consistency": "upsampled_clip_frame_consistency"}


@dataclass
class KeyframeRoute:
    """What interpolate+sr made of the edit before super-resolution: ``interpolated`` (F', h, w, 3)
    uint8, ``(F - 1) * factor + 1`` frames at the edit's size, keyframe i at index ``i * factor``."""

    interpolated: np.ndarray
    factor: int


def clip_shape(frames: np.ndarray) -> str:
    return f"{frames.shape[0]} frames of {frames.shape[2]}x{frames.shape[1]} px"


def _frame_subsets(per_frame: list, factor: int) -> dict:
    """The means over the keyframes (indices i * factor) and over the frames between them."""
    def mean(values):
        defined = [v for v in values if v is not None]
        return float(np.mean(defined)) if defined else None

    keyframes = [v for i, v in enumerate(per_frame) if i % factor == 0]
    in_betweens = [v for i, v in enumerate(per_frame) if i % factor != 0]
    return {"interpolation_factor": factor, "keyframes": mean(keyframes), "in_betweens": mean(in_betweens)}


def _groundtruth_pair(prefix: str, frames: np.ndarray, gt_frames: np.ndarray, what: str, factor: int = 1,
                      hint: str = "") -> dict:
    """``{prefix}_gt_psnr`` and ``{prefix}_gt_ssim`` of `frames` (described by `what`) against the ground
    truth; with `factor` > 1 also their means over keyframes and in-betweens. `hint`: why the shapes may differ."""
    from dreammotion.metrics.groundtruth import _clip_value, psnr_per_frame, ssim_per_frame

    results = {}
    for name, per_frame in ((f"{prefix}_gt_psnr", psnr_per_frame), (f"{prefix}_gt_ssim", ssim_per_frame)):
        try:
            if frames.shape != gt_frames.shape:
                raise MetricUnavailable(f"{what} has {clip_shape(frames)}, the upsampled ground truth {clip_shape(gt_frames)}{hint}")
            values = per_frame(frames, gt_frames)
            results[name] = _clip_value(values, compared=what)
            if factor > 1:
                results[name].update(_frame_subsets(values, factor))
        except Exception as err:  # recorded as missing/failed with its reason, never dropped
            results[name] = from_exception(err)
    return results


def _truth_hint(edit_count: int, clip_count: int, truth_count: int, factor: int) -> str:
    """Why a ground truth's frame count can differ from the upsampled clip's, for the missing reason."""
    if factor <= 1 or truth_count == clip_count:
        return ""
    made = f"interpolate+sr by {factor} made {clip_count} frames of the edit's {edit_count}"
    if truth_count == edit_count:
        return (f" ({made}: it needs the truth at {factor} times the frame rate, the manifest's "
                f"ground_truth_interpolated with ground_truth_interpolation_factor {factor})")
    if edit_count > 1 and (truth_count - 1) % (edit_count - 1) == 0:
        other = (truth_count - 1) // (edit_count - 1)
        return (f" ({made}; the ground truth's {truth_count} are ({edit_count} - 1) * {other} + 1: its "
                f"ground_truth_interpolation_factor is {other}, not upsample.interpolation_factor {factor})")
    return f" ({made})"


def compute_upsampled_metrics(edit_frames: np.ndarray, upsampled_frames: np.ndarray, gt_upsampled: np.ndarray | None,
                              target_prompt: str, scorer, clip_error: Exception | None, config,
                              keyframe_route: KeyframeRoute | None = None) -> dict:
    """The metrics of the module docstring. `scorer`/`clip_error`: the CLIP model the edit's metrics
    loaded, or the error that says why there is none (then both CLIP metrics carry it). `keyframe_route`:
    the interpolated clip of interpolate+sr (then the Lanczos baseline is it, resized), None otherwise."""
    from dreammotion.metrics.clip import compute_clip_metrics
    from dreammotion.upsample.resize import resize_frames

    if scorer is None:
        result = from_exception(clip_error)
        results = {name: dict(result) for name in CLIP_NAMES.values()}
    else:
        clip = compute_clip_metrics(upsampled_frames, target_prompt, config.clip_pretrained, config.device, scorer)
        results = {CLIP_NAMES[name]: value for name, value in clip.items()}
    if gt_upsampled is None:
        return results  # a real video: no ground truth, so these metrics do not apply
    factor = keyframe_route.factor if keyframe_route is not None else 1
    hint = _truth_hint(len(edit_frames), len(upsampled_frames), len(gt_upsampled), factor)
    results.update(_groundtruth_pair("upsampled", upsampled_frames, gt_upsampled, "the upsampled clip", factor, hint))
    height, width = gt_upsampled.shape[1:3]
    if keyframe_route is None:
        baseline, what = edit_frames, "the edit resized with Lanczos"
    else:
        baseline, what = keyframe_route.interpolated, "the interpolated clip (before super-resolution) resized with Lanczos"
    results.update(_groundtruth_pair("lanczos", resize_frames(baseline, height, width), gt_upsampled, what, factor, hint))
    return results
