"""Synthetic clips with exact masks and captions: training data of the embedded prior and ground truth of edits."""

from dreammotion.synthetic.captions import caption, vocabulary
from dreammotion.synthetic.render import (
    BACKGROUND_COLOURS,
    DIRECTIONS,
    HELD_OUT_PAIRS,
    OBJECT_COLOURS,
    SHAPES,
    TEXTURES,
    ClipSpec,
    coverage,
    frame_times,
    render,
    render_background_frames,
    render_batch_torch,
    sample_spec,
    specs_to_tensors,
)

__all__ = [
    "BACKGROUND_COLOURS",
    "DIRECTIONS",
    "HELD_OUT_PAIRS",
    "OBJECT_COLOURS",
    "SHAPES",
    "TEXTURES",
    "ClipSpec",
    "caption",
    "coverage",
    "edit_ground_truth",
    "frame_times",
    "render",
    "render_background_frames",
    "render_batch_torch",
    "sample_spec",
    "specs_to_tensors",
    "vocabulary",
]


def edit_ground_truth(source: ClipSpec, size: int = 32, frames: int = 8, **changes):
    """The true result of editing `source` (same motion, some fields changed): (target spec, frames, masks)."""
    target = source.replace(**changes)
    target_frames, target_masks = render(target, size, frames)
    return target, target_frames, target_masks
