"""``clip_feature_distance``: a perceptual frame distance from a CLIP image tower, the LPIPS substitute.

LPIPS (Zhang et al. 2018) compares two images by their deep features: per layer, each spatial
feature vector is unit-normalised over channels, the squared difference is weighted per channel by
learned linear heads, averaged over space and summed over layers. Without LPIPS' ImageNet backbone
(which cannot be downloaded here) we compute the same form on the token features of a CLIP vision
transformer (the domain CLIP ``dreammotion-shapes-clip`` by default), with **no learned weights**:

    d_l(p)  = || f_l(a)[p] / |f_l(a)[p]|  -  f_l(b)[p] / |f_l(b)[p]| ||^2     (patch token p, layer l)
    d(a, b) = mean over layers l of  mean over patches p of d_l(p)

over every encoder layer's output (the class token left out). ``d`` lies in [0, 4]; identical frames
give 0. Outside the mask, the patch map is averaged with weights = the fraction of each patch's
pixels outside the mask (the mask goes through the model's own resize and crop). This is **not
LPIPS**: its numbers are on its own scale; the metric is named ``clip_feature_distance`` and says
which model and which LPIPS metric it stands in for (``clip_model``, ``substitute_for``).
"""

from __future__ import annotations

import numpy as np
import torch

from dreammotion.metrics.clip import ClipScorer
from dreammotion.metrics.results import MetricUnavailable, from_exception, ok

METRIC_NAME = "clip_feature_distance"
OUTSIDE_MASK_NAME = "clip_feature_distance_outside_mask"
DEFINITION = (
    "LPIPS form without learned weights on the CLIP vision tower's patch tokens: per encoder layer, "
    "squared distance of channel-normalised tokens, mean over patches, mean over layers"
)


def _pixel_values(scorer: ClipScorer, frames: np.ndarray) -> torch.Tensor:
    pixels = scorer.image_processor(images=list(frames), return_tensors="pt")["pixel_values"]
    return pixels.to(scorer.device)


def _patch_grid(scorer: ClipScorer, pixels: torch.Tensor) -> tuple[int, int, int]:
    patch = int(scorer.model.config.vision_config.patch_size)
    height, width = pixels.shape[-2:]
    return patch, height // patch, width // patch


@torch.no_grad()
def token_distance_maps(scorer: ClipScorer, frames_a: np.ndarray, frames_b: np.ndarray) -> torch.Tensor:
    """(F, gh, gw) per-patch distances between the frames of two uint8 (F, H, W, 3) clips."""
    pixels_a, pixels_b = _pixel_values(scorer, frames_a), _pixel_values(scorer, frames_b)
    _, grid_h, grid_w = _patch_grid(scorer, pixels_a)
    vision = scorer.model.vision_model
    layers_a = vision(pixel_values=pixels_a, output_hidden_states=True).hidden_states[1:]
    layers_b = vision(pixel_values=pixels_b, output_hidden_states=True).hidden_states[1:]
    per_layer = []
    for tokens_a, tokens_b in zip(layers_a, layers_b):
        a = torch.nn.functional.normalize(tokens_a[:, 1:].float(), dim=-1)  # (F, P, D), class token left out
        b = torch.nn.functional.normalize(tokens_b[:, 1:].float(), dim=-1)
        per_layer.append(((a - b) ** 2).sum(dim=-1))
    return torch.stack(per_layer).mean(dim=0).reshape(len(frames_a), grid_h, grid_w).cpu()


def region_patch_weights(scorer: ClipScorer, region: np.ndarray) -> torch.Tensor:
    """(F, gh, gw) fraction of each patch inside `region` (F, H, W) bool, after the model's resize and crop."""
    images = np.repeat((region.astype(np.uint8) * 255)[..., None], 3, axis=-1)
    pixels = _pixel_values(scorer, images).cpu()[:, 0]  # (F, h, w), normalised like a frame
    processor = scorer.image_processor
    mean = float(processor.image_mean[0]) if getattr(processor, "do_normalize", False) else 0.0
    std = float(processor.image_std[0]) if getattr(processor, "do_normalize", False) else 1.0
    fraction = (pixels * std + mean).clamp(0.0, 1.0)  # back to [0, 1]
    patch, grid_h, grid_w = _patch_grid(scorer, pixels[:, None])
    fraction = fraction[:, : grid_h * patch, : grid_w * patch]
    return torch.nn.functional.avg_pool2d(fraction[:, None], patch)[:, 0]


def clip_feature_distance(scorer: ClipScorer, frames_a: np.ndarray, frames_b: np.ndarray,
                          region: np.ndarray | None = None) -> list[float]:
    """Per-frame distance, whole frame (region None) or weighted by the region's share of each patch."""
    maps = token_distance_maps(scorer, frames_a, frames_b)
    if region is None:
        return maps.mean(dim=(1, 2)).tolist()
    weights = region_patch_weights(scorer, region)
    totals = weights.sum(dim=(1, 2))
    empty = [int(i) for i in torch.nonzero(totals <= 1e-6).flatten()]
    if empty:
        raise MetricUnavailable(f"no pixels outside the mask in frame(s) {empty}: the distance outside the mask is undefined")
    return ((maps * weights).sum(dim=(1, 2)) / totals).tolist()


def compute_clip_feature_metrics(
    scorer: ClipScorer | None, load_error: BaseException | None, input_frames: np.ndarray, edit_frames: np.ndarray,
    masks: np.ndarray, *, outside_mask: bool, substitute_for: str,
) -> dict:
    """``clip_feature_distance`` (input vs edit, framewise) and, if asked, its ``_outside_mask`` form.

    `scorer` is the loaded CLIP model, or None with the `load_error` that says why not (then both are
    reported missing/failed with that reason)."""
    names = [METRIC_NAME] + ([OUTSIDE_MASK_NAME] if outside_mask else [])
    if scorer is None:
        return {name: from_exception(load_error) for name in names}
    regions = {METRIC_NAME: None}
    if outside_mask:
        regions[OUTSIDE_MASK_NAME] = masks < 0.5
    results = {}
    for name, region in regions.items():
        try:
            per_frame = clip_feature_distance(scorer, input_frames, edit_frames, region)
            results[name] = ok(float(np.mean(per_frame)), per_frame=per_frame, clip_model=scorer.name,
                               model=scorer.source, substitute_for=substitute_for + ("_outside_mask" if region is not None else ""),
                               definition=DEFINITION)
        except Exception as err:  # recorded as missing/failed with its reason, never dropped
            results[name] = from_exception(err)
    return results
