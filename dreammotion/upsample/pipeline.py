"""The four upsampling methods behind ``dreammotion upsample``, as one function on arrays.

- ``none``: the edited frames unchanged.
- ``resize``: Lanczos resize to the target size (no model).
- ``v2v`` (ZeroScope practice: edit at 576x320, then zeroscope_v2_XL video-to-video at 1024x576):
  Lanczos resize to the target size, then a video-to-video pass of a second-stage model
  (``dreammotion.upsample.v2v``). A model is required; there is no fallback.
- ``interpolate+sr``, the cascaded route of the paper's cascaded setting. Show-1 generates a video in
  four stages: a pixel keyframe model, a temporal interpolation model, and two super-resolution
  models (pixel, then latent/ZeroScope-style). DreamMotion replaces only the first stage: its edited
  clip is the set of keyframes (the edit is applied to keyframes only). The later stages run
  unchanged, conditioned on the target prompt but never optimised:
    1. temporal interpolation x k: a learned interpolator when given, else a classical substitute
       (Farneback optical-flow warping or linear blending), named as a substitute in upsample.json;
       F keyframes -> (F - 1) * k + 1 frames, keyframe i unchanged at index i * k;
    2. spatial super-resolution: the v2v pass of the second-stage model when one is given, else a
       Lanczos resize, named as a substitute in upsample.json.
  Both stages of the cascade are here; Show-1's two SR stages are folded into the one v2v pass.

Every intermediate clip is returned in ``UpsampleResult.stages`` so the CLI keeps it on disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dreammotion.errors import InputError
from dreammotion.upsample.interpolate import Interpolator, interpolate_frames, output_frame_count
from dreammotion.upsample.resize import RESIZE_FILTER, resize_frames
from dreammotion.upsample.v2v import SecondStage, V2VSettings, check_frame_size, video_to_video

UPSAMPLE_METHODS = ("none", "resize", "v2v", "interpolate+sr")


@dataclass
class UpsampleResult:
    frames: np.ndarray  # (F', H', W', 3) uint8
    stages: dict[str, np.ndarray] = field(default_factory=dict)  # intermediate clips, in order
    steps: list[dict] = field(default_factory=list)  # what each step did (for upsample.json)


def _resize_step(frames: np.ndarray, height: int, width: int, **extra) -> tuple[np.ndarray, dict]:
    resized = resize_frames(frames, height, width)
    return resized, {"step": "resize", "filter": RESIZE_FILTER, "size": [height, width], **extra}


def _v2v_step(stage: SecondStage, frames: np.ndarray, settings: V2VSettings, progress: bool) -> tuple[np.ndarray, dict]:
    refined = video_to_video(stage, frames, settings, progress=progress)
    return refined, {"step": "v2v", "model": stage.describe(), **settings.to_dict()}


def upsample_clip(
    frames: np.ndarray,
    method: str,
    *,
    height: int,
    width: int,
    second_stage: SecondStage | None = None,
    v2v_settings: V2VSettings | None = None,
    interpolator: Interpolator | None = None,
    interpolation_factor: int = 2,
    progress: bool = False,
) -> UpsampleResult:
    """Upsample an edited clip (F, h, w, 3) uint8 to (F', height, width, 3) uint8 by `method`."""
    if method not in UPSAMPLE_METHODS:
        raise InputError(f"upsample method {method!r}: use one of {', '.join(UPSAMPLE_METHODS)}")
    if method == "none":
        return UpsampleResult(frames.copy(), steps=[{"step": "none"}])

    if method == "resize":
        resized, info = _resize_step(frames, height, width)
        return UpsampleResult(resized, steps=[info])

    if method == "v2v":
        if second_stage is None or v2v_settings is None:
            raise InputError("upsample method v2v needs a second-stage model (--model with 'pretrained') and --prompt")
        check_frame_size(second_stage.model, height, width)  # before any work
        resized, resize_info = _resize_step(frames, height, width)
        refined, v2v_info = _v2v_step(second_stage, resized, v2v_settings, progress)
        return UpsampleResult(refined, stages={"resized": resized}, steps=[resize_info, v2v_info])

    # interpolate+sr
    if interpolator is None:
        raise InputError("upsample method interpolate+sr needs an interpolator (model or named substitute)")
    if second_stage is not None:
        if v2v_settings is None:
            raise InputError("the super-resolution pass of interpolate+sr needs --prompt")
        check_frame_size(second_stage.model, height, width)
    interpolated = interpolate_frames(frames, interpolation_factor, interpolator)
    interpolate_info = {
        "step": "interpolate",
        "factor": interpolation_factor,
        "frame_count": f"(F - 1) * k + 1 = {output_frame_count(len(frames), interpolation_factor)}",
        "keyframe_indices": "i * k (copied unchanged)",
        **interpolator.info,
    }
    resized, resize_info = _resize_step(interpolated, height, width)
    stages = {"interpolated": interpolated}
    if second_stage is None:
        resize_info.update(
            substitute=True,
            substitute_for="a super-resolution model (Show-1's SR stages); no second-stage model was given",
        )
        return UpsampleResult(resized, stages=stages, steps=[interpolate_info, resize_info])
    stages["resized"] = resized
    refined, v2v_info = _v2v_step(second_stage, resized, v2v_settings, progress)
    return UpsampleResult(refined, stages=stages, steps=[interpolate_info, resize_info, v2v_info])
