"""Side-by-side panel of one edit: input | mask overlay | edit | upsampled (when upsampling is on) |
ground truth (for rows that have one, e.g. the synthetic suite and the demo).

The panel is the report's view of a manifest row: every clip is brought to one display height and one
frame count, labelled, and written as a looping GIF (shown inline by browsers) and an H.264 mp4.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dreammotion.errors import InputError
from dreammotion.io.frames import read_frames, read_masks
from dreammotion.io.write import side_by_side, write_gif, write_video
from dreammotion.masks.preview import overlay_masks

# Tiny model-sized clips (32 px) are enlarged with crisp pixels to at least this height; large ones
# (576x1024 after upsampling) are shrunk to at most MAX_DISPLAY_HEIGHT so that the GIF stays small.
MIN_DISPLAY_HEIGHT = 128
MAX_DISPLAY_HEIGHT = 256


@dataclass
class PanelClips:
    """The clips of one panel, each (F, H, W, 3) uint8; `upsampled` is None when upsampling is off,
    `ground_truth` when the row has none."""

    input: np.ndarray
    mask_overlay: np.ndarray
    edit: np.ndarray
    upsampled: np.ndarray | None = None
    ground_truth: np.ndarray | None = None

    def labelled(self) -> tuple[list[np.ndarray], list[str]]:
        clips = [self.input, self.mask_overlay, self.edit]
        labels = ["input", "mask", "edit"]
        if self.upsampled is not None:
            clips.append(self.upsampled)
            labels.append(f"upsampled {self.upsampled.shape[2]}x{self.upsampled.shape[1]}")
        if self.ground_truth is not None:
            clips.append(self.ground_truth)
            labels.append("ground truth")
        return clips, labels


def resample_frame_count(clip: np.ndarray, num_frames: int) -> np.ndarray:
    """`clip` with `num_frames` frames, each the nearest frame in time (same first and last frame).

    Used when the upsampler interpolated extra frames: the other clips then repeat frames so that all
    columns of the panel stay in step.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if clip.shape[0] == num_frames:
        return clip
    indices = np.floor(np.linspace(0, clip.shape[0] - 1, num_frames) + 0.5).astype(int)  # round half up
    return clip[indices]


def display_height(heights: list[int], min_height: int = MIN_DISPLAY_HEIGHT, max_height: int = MAX_DISPLAY_HEIGHT) -> int:
    """The common height of the panel's clips: the tallest clip's, enlarged by an integer factor up to
    `min_height` (crisp pixels) or reduced to `max_height`."""
    tallest = max(heights)
    if tallest < min_height:
        return tallest * int(np.ceil(min_height / tallest))
    return min(tallest, max_height)


def resize_to_height(clip: np.ndarray, height: int) -> np.ndarray:
    """Resize every frame to `height`, keeping the aspect ratio: nearest when enlarging, area when shrinking."""
    source_height, source_width = clip.shape[1:3]
    if source_height == height:
        return clip
    width = max(1, round(source_width * height / source_height))
    interpolation = cv2.INTER_NEAREST if height > source_height else cv2.INTER_AREA
    return np.stack([cv2.resize(frame, (width, height), interpolation=interpolation) for frame in clip])


def build_panel(
    clips: PanelClips, min_height: int = MIN_DISPLAY_HEIGHT, max_height: int = MAX_DISPLAY_HEIGHT
) -> np.ndarray:
    """(F, band + H, W, 3) uint8: the labelled clips side by side at one height and frame count (the longest)."""
    frames, labels = clips.labelled()
    num_frames = max(clip.shape[0] for clip in frames)
    height = display_height([clip.shape[1] for clip in frames], min_height, max_height)
    frames = [resize_to_height(resample_frame_count(clip, num_frames), height) for clip in frames]
    return side_by_side(frames, labels=labels, gap=4)


def load_panel_clips(
    input_frames: str | Path,
    masks: str | Path,
    edit_frames: str | Path,
    upsampled_frames: str | Path | None = None,
    ground_truth_frames: str | Path | None = None,
) -> PanelClips:
    """Read the stage outputs of one row; the mask count must match the input frames it was made from."""
    source = read_frames(input_frames)
    mask_stack = read_masks(masks)
    if mask_stack.shape != source.shape[:3]:
        raise InputError(
            f"masks {masks} have shape {mask_stack.shape} but the frames {input_frames} are {source.shape[:3]} "
            "(F, H, W): the masks were made from other frames; delete them and rerun"
        )
    edit = read_frames(edit_frames)
    if edit.shape[0] != source.shape[0]:
        raise InputError(f"edit frames {edit_frames} hold {edit.shape[0]} frames but the input {input_frames} has {source.shape[0]}")
    upsampled = read_frames(upsampled_frames) if upsampled_frames is not None else None
    truth = read_frames(ground_truth_frames) if ground_truth_frames is not None else None
    if truth is not None and truth.shape[0] != source.shape[0]:
        raise InputError(
            f"ground truth {ground_truth_frames} holds {truth.shape[0]} frames but the input {input_frames} has {source.shape[0]}"
        )
    return PanelClips(input=source, mask_overlay=overlay_masks(source, mask_stack), edit=edit, upsampled=upsampled,
                      ground_truth=truth)


def write_panel(panel: np.ndarray, gif_path: str | Path, mp4_path: str | Path, fps: float) -> None:
    """The panel as a looping GIF (for the report page) and an H.264 mp4 (for download), both atomically."""
    write_gif(panel, gif_path, fps=fps, min_size=0)  # build_panel already chose the display size
    write_video(panel, mp4_path, fps=fps, min_size=0)
