"""Metrics of the cascade's upsampled clip (``results/upsampled/{variant}/{id}/frames``), kept in
the edit's metrics record beside the edit's own.

- ``upsampled_clip_text_alignment`` / ``upsampled_clip_frame_consistency``: the CLIP metrics of the
  upsampled clip, with the same CLIP model as the edit's.
- With the row's ground truth at the upsampled resolution (manifest ``ground_truth_upsampled``):
  ``upsampled_gt_psnr`` / ``upsampled_gt_ssim`` of the upsampled clip, and ``lanczos_gt_psnr`` /
  ``lanczos_gt_ssim`` of the same edit resized with Lanczos to that size: the baseline a second
  stage must beat, measured on the same edit so that the difference is the second stage's alone.

A ground truth whose frame count or size differs from the clip it is compared with (e.g. the
interpolated frames of ``interpolate+sr``) makes those metrics ``missing``, with the sizes in the reason.
"""

from __future__ import annotations

import numpy as np

from dreammotion.metrics.results import MetricUnavailable, from_exception

CLIP_NAMES = {"clip_text_alignment": "upsampled_clip_text_alignment",
              "clip_frame_consistency": "upsampled_clip_frame_consistency"}


def _shape(frames: np.ndarray) -> str:
    return f"{frames.shape[0]} frames of {frames.shape[2]}x{frames.shape[1]} px"


def _groundtruth_pair(prefix: str, frames: np.ndarray, gt_frames: np.ndarray, what: str) -> dict:
    """``{prefix}_gt_psnr`` and ``{prefix}_gt_ssim`` of `frames` (described by `what`) against the ground truth."""
    from dreammotion.metrics.groundtruth import _clip_value, psnr_per_frame, ssim_per_frame

    results = {}
    for name, per_frame in ((f"{prefix}_gt_psnr", psnr_per_frame), (f"{prefix}_gt_ssim", ssim_per_frame)):
        try:
            if frames.shape != gt_frames.shape:
                raise MetricUnavailable(f"{what} has {_shape(frames)}, the upsampled ground truth {_shape(gt_frames)}")
            results[name] = _clip_value(per_frame(frames, gt_frames), compared=what)
        except Exception as err:  # recorded as missing/failed with its reason, never dropped
            results[name] = from_exception(err)
    return results


def compute_upsampled_metrics(edit_frames: np.ndarray, upsampled_frames: np.ndarray, gt_upsampled: np.ndarray | None,
                              target_prompt: str, scorer, clip_error: Exception | None, config) -> dict:
    """The metrics of the module docstring. `scorer`/`clip_error`: the CLIP model the edit's metrics
    loaded, or the error that says why there is none (then both CLIP metrics carry it)."""
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
    results.update(_groundtruth_pair("upsampled", upsampled_frames, gt_upsampled, "the upsampled clip"))
    height, width = gt_upsampled.shape[1:3]
    lanczos = resize_frames(edit_frames, height, width)
    results.update(_groundtruth_pair("lanczos", lanczos, gt_upsampled, "the edit resized with Lanczos"))
    return results
