"""Cascade upsampling after the edit: none, Lanczos resize, video-to-video refinement with a second-stage
model, and the cascaded interpolate+sr route (see ``dreammotion.upsample.pipeline`` for the Show-1 mapping)."""

from dreammotion.upsample.interpolate import (
    Interpolator,
    interpolate_frames,
    make_interpolator,
    output_frame_count,
)
from dreammotion.upsample.pipeline import UPSAMPLE_METHODS, UpsampleResult, upsample_clip
from dreammotion.upsample.resize import resize_frames, target_size
from dreammotion.upsample.v2v import SecondStage, V2VSettings, load_second_stage, spatial_multiple, video_to_video

__all__ = [
    "UPSAMPLE_METHODS",
    "Interpolator",
    "SecondStage",
    "UpsampleResult",
    "V2VSettings",
    "interpolate_frames",
    "load_second_stage",
    "make_interpolator",
    "output_frame_count",
    "resize_frames",
    "spatial_multiple",
    "target_size",
    "upsample_clip",
    "video_to_video",
]
