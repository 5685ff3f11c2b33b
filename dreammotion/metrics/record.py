"""The per-edit metrics record (``results/metrics/{variant}/{id}.json``): its schema, and building it.

A record of an edit that ran::

    {"schema": "dreammotion.metrics/1", "id": "dog_to_cat", "variant": "full", "status": "ok", "error": null,
     "source_prompt": "...", "target_prompt": "...", "settings": {...}, "runtime_s": 812.4,
     "peak_memory_mib": 20311.0, "final_losses": {"vdds": 0.12, ...},
     "labels": {"edit_kind": "colour", "suite": "seed0"}, "models": {"clip_model": "dreammotion-shapes-clip", ...},
     "metrics": {"clip_text_alignment": {"value": 0.31, "status": "ok", "reason": null, ...details},
                 "lpips_alex": {"value": null, "status": "missing", "reason": "..."}, ...},
     "metrics_config": {...}, "inputs": {"edit_frames": "...", ...}}

A failed edit is a record (or a bare marker JSON written by an earlier stage) with
``"status": "failed"`` and ``"error"``; its ``metrics`` may be empty. The tables list such rows with
their error. ``method``, ``method_settings``, ``settings``, ``final_losses``, ``runtime_s`` and ``peak_memory_mib``
are copied from the edit's ``edit.json`` (``dreammotion.records``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dreammotion.errors import InputError
from dreammotion.metrics.config import MetricsConfig
from dreammotion.metrics.results import STATUSES, MetricUnavailable, from_exception, ok
from dreammotion.metrics.upsampled import KeyframeRoute, compute_upsampled_metrics
from dreammotion.records import check_schema, edit_method

SCHEMA_ID = "dreammotion.metrics/1"

_METRIC_SCHEMA = {
    "type": "object",
    "required": ["value", "status"],
    "properties": {
        "value": {"type": ["number", "null"]},
        "status": {"enum": list(STATUSES)},
        "reason": {"type": ["string", "null"]},
    },
}

RECORD_SCHEMA = {
    "type": "object",
    "required": ["id", "variant", "status"],
    "properties": {
        "schema": {"type": "string"},
        "id": {"type": "string", "minLength": 1},
        "variant": {"type": "string", "minLength": 1},
        "status": {"enum": ["ok", "failed"]},
        "error": {"type": ["string", "null"]},
        "source_prompt": {"type": ["string", "null"]},
        "target_prompt": {"type": ["string", "null"]},
        "settings": {"type": ["object", "null"]},
        "runtime_s": {"type": ["number", "null"]},
        "peak_memory_mib": {"type": ["number", "null"]},
        "final_losses": {"type": ["object", "null"]},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "models": {"type": "object"},
        "metrics": {"type": "object", "additionalProperties": _METRIC_SCHEMA},
    },
    "if": {"properties": {"status": {"const": "failed"}}},
    "then": {"required": ["error"], "properties": {"error": {"type": "string"}}},
    "else": {"required": ["metrics"]},
}

@dataclass
class MeasuredClips:
    """The arrays one edit is measured on (uint8 frames (F, H, W, 3), float masks (F, H, W) in [0, 1])."""

    input_frames: np.ndarray
    edit_frames: np.ndarray
    masks: np.ndarray
    gt_frames: np.ndarray | None = None
    gt_masks: np.ndarray | None = None
    # The cascade's upsampled clip and the ground truth at its resolution and frame rate, and after
    # interpolate+sr its interpolated clip (dreammotion.metrics.upsampled): not at the input's size or
    # frame count, so check_clips leaves them to compute_upsampled_metrics.
    upsampled_frames: np.ndarray | None = None
    gt_upsampled_frames: np.ndarray | None = None
    keyframe_route: KeyframeRoute | None = None


def cost_metrics(edit_info: dict, source: str = "edit.json") -> dict:
    """``runtime_s`` and ``peak_memory_mib`` as metrics, read from the edit record."""
    results = {}
    for key in ("runtime_s", "peak_memory_mib"):
        value = edit_info.get(key)
        if value is None:
            results[key] = from_exception(MetricUnavailable(f"{source} has no {key!r}"))
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{source}: field {key} must be a number, got {value!r}")
        else:
            results[key] = ok(float(value), source=source)
    batch = edit_info.get("batch_size", 1)
    if results["runtime_s"]["status"] == "ok" and isinstance(batch, int) and batch > 1:
        # edits optimised as one batch share its wall-clock time: an edit's cost is its share
        results["runtime_s"] = ok(results["runtime_s"]["value"] / batch, source=source, batch_size=batch)
    if results["peak_memory_mib"]["status"] == "ok" and edit_info.get("peak_memory_kind"):
        # e.g. CUDA max allocated vs process RSS on CPU: numbers of different kinds are not comparable
        results["peak_memory_mib"]["kind"] = edit_info["peak_memory_kind"]
    return results


def check_clips(clips: MeasuredClips, names: dict[str, str]) -> None:
    """All clips must have the same frame count and size; `names` says where each came from."""
    reference = clips.input_frames.shape[:3]
    for field_name in ("edit_frames", "masks", "gt_frames", "gt_masks"):
        array = getattr(clips, field_name)
        if array is not None and array.shape[:3] != reference:
            raise InputError(
                f"{names.get(field_name, field_name)} has {array.shape[0]} frames of {array.shape[2]}x{array.shape[1]} px, "
                f"but the input {names.get('input_frames', 'input frames')} has {reference[0]} frames of "
                f"{reference[2]}x{reference[1]} px"
            )


def compute_metrics(clips: MeasuredClips, target_prompt: str, config: MetricsConfig, edit_info: dict | None = None, edit_json_name: str = "edit.json") -> dict:
    """Every metric of one edit, by name (see ``dreammotion.metrics.names``)."""
    from dreammotion.metrics.clip import compute_clip_metrics
    from dreammotion.metrics.groundtruth import compute_groundtruth_metrics
    from dreammotion.metrics.motion import compute_motion_metrics

    scorer, clip_error = _load_clip_once(config)
    metrics = {}
    if scorer is None:
        result = from_exception(clip_error)
        metrics.update({"clip_text_alignment": result, "clip_frame_consistency": dict(result)})
    else:
        metrics.update(compute_clip_metrics(clips.edit_frames, target_prompt, config.clip_pretrained, config.device, scorer))
    metrics.update(perceptual_metrics(clips, config, scorer, clip_error))
    metrics.update(
        compute_motion_metrics(clips.input_frames, clips.edit_frames, clips.masks, config.motion, config.device,
                               gt_masks=clips.gt_masks if clips.gt_frames is not None else None, gt_frames=clips.gt_frames)
    )
    if clips.gt_frames is not None:
        metrics.update(
            compute_groundtruth_metrics(clips.edit_frames, clips.gt_frames, clips.masks, clips.gt_masks, config.object_colour)
        )
    if clips.upsampled_frames is not None:
        metrics.update(compute_upsampled_metrics(clips.edit_frames, clips.upsampled_frames, clips.gt_upsampled_frames,
                                                 target_prompt, scorer, clip_error, config, clips.keyframe_route))
    if edit_info is not None:
        metrics.update(cost_metrics(edit_info, edit_json_name))
    return metrics


def _load_clip_once(config: MetricsConfig):
    """(the CLIP model, None) or (None, the error that says why not): loaded once for every metric using it."""
    from dreammotion.metrics.clip import load_clip

    try:
        return load_clip(config.clip_pretrained, config.device), None
    except Exception as err:  # missing -> "missing", broken -> "failed": the metrics say which and why
        return None, err


def perceptual_metrics(clips: MeasuredClips, config: MetricsConfig, scorer, clip_error) -> dict:
    """LPIPS when the config asks for it (``MetricsConfig.uses_lpips``), else the named substitute
    ``clip_feature_distance`` on the CLIP model's image tower, which says which LPIPS it stands in for."""
    from dreammotion.metrics.clip_features import compute_clip_feature_metrics
    from dreammotion.metrics.lpips_metric import compute_lpips_metrics

    if config.uses_lpips():
        return compute_lpips_metrics(
            clips.input_frames,
            clips.edit_frames,
            clips.masks,
            net=config.lpips_net,
            backbone_weights=config.lpips_backbone_weights,
            outside_mask=config.lpips_outside_mask,
            device=config.device,
        )
    return compute_clip_feature_metrics(
        scorer, clip_error, clips.input_frames, clips.edit_frames, clips.masks,
        outside_mask=config.lpips_outside_mask, substitute_for=f"lpips_{config.lpips_net}",
    )


def record_models(metrics: dict) -> dict:
    """The models the metrics were computed with, by role: ``clip_model`` (the CLIP metrics and the
    CLIP-feature distance) and ``tracker`` (motion fidelity), from the metrics' own details."""
    clip_models = sorted({m["clip_model"] for m in metrics.values() if m.get("status") == "ok" and m.get("clip_model")})
    trackers = sorted({m["tracker"] for m in metrics.values() if m.get("status") == "ok" and m.get("tracker")})
    return {"clip_model": ", ".join(clip_models) or None, "tracker": ", ".join(trackers) or None}


def build_record(
    *,
    edit_id: str,
    variant: str,
    metrics: dict,
    edit_info: dict,
    source_prompt: str | None,
    target_prompt: str | None,
    config: MetricsConfig | None = None,
    inputs: dict | None = None,
    labels: dict | None = None,
) -> dict:
    """The metrics record of an edit that ran. `labels`: the manifest's labels of the row (``edit_kind``,
    ``suite``), which the paper-form tables group by."""
    return {
        **_record_head(edit_id, variant, "ok", None,
                       {**edit_info, "source_prompt": source_prompt, "target_prompt": target_prompt}, labels),
        "models": record_models(metrics),
        "metrics": metrics,
        "metrics_config": config.to_dict() if config is not None else None,
        "inputs": inputs or {},
    }


def build_failed_record(*, edit_id: str, variant: str, error: str, edit_info: dict | None = None, **extra) -> dict:
    """The record of an edit that failed: no metrics, the error kept for the summary. `edit_info` may be
    partial (the run summary knows only the prompts and the variant's method)."""
    labels = extra.pop("labels", None)
    return {**_record_head(edit_id, variant, "failed", error, edit_info or {}, labels), "metrics": {}, **extra}


def _record_head(edit_id: str, variant: str, status: str, error: str | None, edit_info: dict, labels: dict | None) -> dict:
    """The fields every metrics record has, ran or failed: who, what method, with what, at what cost."""
    method, method_settings = edit_method(edit_info)
    return {
        "schema": SCHEMA_ID,
        "id": edit_id,
        "variant": variant,
        "status": status,
        "error": error,
        "source_prompt": edit_info.get("source_prompt"),
        "target_prompt": edit_info.get("target_prompt"),
        "method": method,
        "method_settings": method_settings,
        "settings": edit_info.get("settings") or {},
        "runtime_s": edit_info.get("runtime_s"),
        "peak_memory_mib": edit_info.get("peak_memory_mib"),
        "final_losses": edit_info.get("final_losses") or {},
        "labels": {k: v for k, v in (labels or {}).items() if v is not None},
    }


def validate_record(record: dict, source: str) -> dict:
    """Check a loaded metrics record or failed marker against RECORD_SCHEMA; InputError names file and field."""
    check_schema(record, RECORD_SCHEMA, f"metrics record {source}")
    return record
