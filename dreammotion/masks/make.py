"""``make_masks``: one mask per frame from a manifest mask spec, by the configured method."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from dreammotion.masks.grabcut import segment_with_grabcut
from dreammotion.masks.ops import (
    DEFAULT_AREA_JUMP,
    check_not_empty,
    dilate_masks,
    feather_masks,
    find_drift,
    propagation_order,
)
from dreammotion.masks.provided import load_provided_masks
from dreammotion.masks.spec import (
    BoxPrompt,
    FileMasks,
    MaskSpec,
    NoMask,
    PointsPrompt,
    parse_mask_spec,
    spec_error,
    validate_prompt,
)

MASK_METHODS = ("auto", "sam", "grabcut", "file", "none")


class MaskDriftWarning(UserWarning):
    """A propagated mask changed area abruptly: look at the preview."""


def resolve_method(spec: MaskSpec, method: str, sam_checkpoint: str | Path | None, context: str = "") -> tuple[str, str]:
    """The method that will run, and why (recorded in the report).

    ``none`` and ``file:`` specs always use their own method (docs/ARCHITECTURE.md). A box/points
    spec uses the configured method; ``none`` is the unmasked ablation; ``auto`` means SAM when a
    checkpoint is configured and GrabCut (weight-free) otherwise.
    """
    if method not in MASK_METHODS:
        raise spec_error(context, f"unknown mask method {method!r}; choose one of {', '.join(MASK_METHODS)}")
    if isinstance(spec, NoMask):
        return "none", "spec 'none'"
    if isinstance(spec, FileMasks):
        return "file", "spec 'file:'"
    if method == "file":
        raise spec_error(context, f"mask method 'file' needs a file:PATH spec, got {spec.text!r}")
    if method == "none":
        return "none", "method 'none' (unmasked ablation): the box/points prompt is ignored"
    if method == "auto":
        if sam_checkpoint is not None:
            return "sam", "method 'auto' with a SAM checkpoint configured"
        return "grabcut", "method 'auto' without a SAM checkpoint: weight-free GrabCut used instead of SAM"
    return method, f"method {method!r}"


def make_masks(
    frames: np.ndarray,
    spec: str | MaskSpec,
    *,
    method: str,
    dilate: int = 0,
    feather: int = 0,
    sam_checkpoint: str | Path | None = None,
    sam_model_type: str = "vit_b",
    device: str = "cpu",
    context: str = "",
    base_dir: str | Path | None = None,
    area_jump: float = DEFAULT_AREA_JUMP,
    sam_batch_size: int | None = None,
    grabcut_track_radius: int | None = None,
) -> tuple[np.ndarray, dict]:
    """Masks (F, H, W) float32 in [0, 1] for RGB ``frames`` (F, H, W, 3) uint8, and a report dict.

    ``dilate`` grows the binary mask by that many pixels, then ``feather`` blurs its edge over about
    that many pixels. The report lists per-frame areas and drift flags (area jumps between
    neighbouring frames, also issued as MaskDriftWarning on stderr). An empty mask on any frame is an
    InputError unless the method is ``none``.
    """
    frames = _check_frames(frames, context)
    num_frames, height, width = frames.shape[:3]
    if isinstance(spec, str):
        spec = parse_mask_spec(spec, context=context, base_dir=base_dir)
    if dilate < 0 or feather < 0:
        raise spec_error(context, f"dilate and feather must be >= 0 pixels, got dilate={dilate}, feather={feather}")
    method_used, method_reason = resolve_method(spec, method, sam_checkpoint, context)

    report: dict = {
        "spec": spec.text,
        "context": context,
        "method_requested": method,
        "method": method_used,
        "method_reason": method_reason,
        "num_frames": num_frames,
        "height": height,
        "width": width,
        "dilate": dilate,
        "feather": feather,
    }
    if method_used == "none":
        masks = np.ones((num_frames, height, width), dtype=np.float32)
        report.update(area_fraction=[1.0] * num_frames, area_fraction_final=[1.0] * num_frames, drift=[])
        return masks, report

    if isinstance(spec, FileMasks):
        report["file"] = {"path": str(spec.path), "kind": "folder" if spec.path.is_dir() else "video"}
        binary = load_provided_masks(spec, num_frames, height, width, context=context)
        order = [(i, i - 1) for i in range(1, num_frames)]
    else:
        validate_prompt(spec, num_frames, height, width, context)
        report["prompt_frame"] = spec.frame
        order = propagation_order(num_frames, spec.frame)
        if method_used == "grabcut":
            binary, report["grabcut"] = segment_with_grabcut(
                frames, spec, track_radius=grabcut_track_radius, context=context
            )
        else:
            binary, report["sam"] = _segment_with_sam(
                frames, spec, sam_checkpoint, sam_model_type, device, sam_batch_size, context
            )
    check_not_empty(binary, context, spec.text, method_used)
    drift = find_drift(binary, order, area_jump)
    _warn_drift(drift, spec.text, context)

    masks = feather_masks(dilate_masks(binary, dilate), feather)
    pixels = float(height * width)
    report.update(
        area_fraction=[round(float(m.sum()) / pixels, 6) for m in binary],
        area_fraction_final=[round(float(m.sum()) / pixels, 6) for m in masks],
        area_jump_threshold=area_jump,
        drift=drift,
    )
    return masks, report


def _segment_with_sam(
    frames: np.ndarray,
    prompt: BoxPrompt | PointsPrompt,
    checkpoint: str | Path | None,
    model_type: str,
    device: str,
    batch_size: int | None,
    context: str,
) -> tuple[np.ndarray, dict]:
    # Imported here: torch and segment-anything are only needed by this method.
    from dreammotion.masks.sam import load_sam, segment_with_sam
    from dreammotion.utils.devices import resolve_device

    predictor = load_sam(checkpoint, model_type, device, context=context)
    binary, sam_report = segment_with_sam(frames, prompt, predictor, batch_size=batch_size, context=context)
    return binary, {"checkpoint": str(checkpoint), "model_type": model_type, "device": resolve_device(device), **sam_report}


def _check_frames(frames: np.ndarray, context: str) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise spec_error(context, f"frames must be a non-empty (F, H, W, 3) uint8 array, got {frames.shape} {frames.dtype}")
    return frames


def _warn_drift(drift: list[dict], spec_text: str, context: str) -> None:
    for flag in drift:
        message = (
            f"{context + ': ' if context else ''}mask {spec_text!r} may have drifted on frame {flag['frame']}: "
            f"{flag['kind']} (area {flag['area']} px vs {flag['source_area']} px on frame {flag['from_frame']})"
        )
        # Python prints warnings to stderr; tests and callers can catch them as MaskDriftWarning.
        warnings.warn(message, MaskDriftWarning, stacklevel=3)
