"""The metric names written to the metrics JSON, in table order, with their direction and meaning.

A metric's name says exactly what was computed (the LPIPS backbone, the tracker of the motion
fidelity score), so that numbers from different tools never share a column.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    label: str
    higher_is_better: bool | None  # None: neither (e.g. a cost that is only reported)
    description: str


METRICS: dict[str, MetricInfo] = {
    "clip_text_alignment": MetricInfo(
        "CLIP text", True, "mean over frames of cosine(CLIP image embedding, CLIP target-prompt embedding)"
    ),
    "clip_frame_consistency": MetricInfo(
        "CLIP frame", True, "mean cosine between CLIP image embeddings of consecutive frames"
    ),
    "clip_feature_distance": MetricInfo(
        "CLIP-feat dist",
        False,
        "framewise perceptual distance input vs edit in the LPIPS form without learned weights on the CLIP image "
        "tower's patch tokens (a substitute for LPIPS, not LPIPS; its clip_model is recorded beside it)",
    ),
    "clip_feature_distance_outside_mask": MetricInfo(
        "CLIP-feat dist out", False, "clip_feature_distance with the patch map averaged outside the mask (LPIPS substitute)"
    ),
    "lpips_alex": MetricInfo("LPIPS (alex)", False, "framewise LPIPS(input, edit), AlexNet backbone, mean over frames"),
    "lpips_alex_outside_mask": MetricInfo(
        "LPIPS out (alex)", False, "framewise spatial LPIPS map averaged over pixels outside the mask, AlexNet"
    ),
    "lpips_vgg": MetricInfo("LPIPS (vgg)", False, "framewise LPIPS(input, edit), VGG16 backbone, mean over frames"),
    "lpips_vgg_outside_mask": MetricInfo(
        "LPIPS out (vgg)", False, "framewise spatial LPIPS map averaged over pixels outside the mask, VGG16"
    ),
    "motion_fidelity_cotracker": MetricInfo(
        "MFS (CoTracker)", True, "motion fidelity score (Yatim et al. 2024) on CoTracker tracklets"
    ),
    "motion_fidelity_lucas_kanade": MetricInfo(
        "MFS (LK)",
        True,
        "motion fidelity score (Yatim et al. 2024) on OpenCV pyramidal Lucas-Kanade tracklets "
        "(a substitute for CoTracker, not CoTracker)",
    ),
    "motion_fidelity_cotracker_vs_truth": MetricInfo(
        "MFS true (CoTracker)", True, "motion fidelity score of the edit's CoTracker tracklets against the true trajectories"
    ),
    "motion_fidelity_lucas_kanade_vs_truth": MetricInfo(
        "MFS true (LK)",
        True,
        "motion fidelity score of the edit's Lucas-Kanade tracklets against the true trajectories of their start "
        "points (synthetic ground truth; the tracker is a substitute for CoTracker)",
    ),
    "gt_psnr": MetricInfo("PSNR", True, "PSNR (dB) of the edit to the ground-truth edit, whole frame"),
    "gt_psnr_inside_mask": MetricInfo("PSNR in", True, "PSNR (dB) to the ground truth inside the edit region"),
    "gt_psnr_outside_mask": MetricInfo("PSNR out", True, "PSNR (dB) to the ground truth outside the edit region"),
    "gt_ssim": MetricInfo("SSIM", True, "SSIM to the ground-truth edit, whole frame"),
    "gt_ssim_inside_mask": MetricInfo("SSIM in", True, "SSIM map averaged inside the edit region"),
    "gt_ssim_outside_mask": MetricInfo("SSIM out", True, "SSIM map averaged outside the edit region"),
    "gt_flicker": MetricInfo(
        "flicker", False, "RMS (grey levels) of the edit's frame differences minus the ground truth's, whole frame"
    ),
    "gt_flicker_inside_mask": MetricInfo("flicker in", False, "gt_flicker inside the edit region"),
    "gt_flicker_outside_mask": MetricInfo("flicker out", False, "gt_flicker outside the edit region"),
    "centroid_error_px": MetricInfo(
        "centroid err (px)", False, "per-frame distance between ground-truth and estimated edited-object centroids"
    ),
    "upsampled_clip_text_alignment": MetricInfo(
        "CLIP text (up)", True, "clip_text_alignment of the cascade's upsampled clip"
    ),
    "upsampled_clip_frame_consistency": MetricInfo(
        "CLIP frame (up)", True, "clip_frame_consistency of the cascade's upsampled clip"
    ),
    "upsampled_gt_psnr": MetricInfo(
        "PSNR (up)", True,
        "PSNR (dB) of the upsampled clip to the ground truth at its resolution and frame rate, whole frame "
        "(after interpolate+sr also over keyframes and in-betweens apart)",
    ),
    "upsampled_gt_ssim": MetricInfo(
        "SSIM (up)", True, "SSIM of the upsampled clip to the ground truth at its resolution and frame rate, whole frame"
    ),
    "lanczos_gt_psnr": MetricInfo(
        "PSNR (Lanczos)", True,
        "PSNR (dB) of the cascade's Lanczos baseline to the upsampled ground truth: the edit resized with Lanczos "
        "(after interpolate+sr: the interpolated clip resized, so that the difference is the SR stage's)",
    ),
    "lanczos_gt_ssim": MetricInfo(
        "SSIM (Lanczos)", True, "SSIM of the cascade's Lanczos baseline (see lanczos_gt_psnr) to the upsampled ground truth"
    ),
    "runtime_s": MetricInfo("runtime (s)", None, "wall-clock time of the edit, from edit.json (of a batched edit: its share of the batch)"),
    "peak_memory_mib": MetricInfo("peak mem (MiB)", None, "peak accelerator memory of the edit, from edit.json"),
}


def metric_order(names) -> list[str]:
    """Known metrics in their canonical order, then any others alphabetically."""
    names = set(names)
    known = [n for n in METRICS if n in names]
    return known + sorted(names - set(known))
