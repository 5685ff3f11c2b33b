"""Writing clips: H.264 mp4 and GIF files, and side-by-side comparisons of several clips (with labels)."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path
from typing import Sequence

import numpy as np

from dreammotion.io.ffmpeg_tool import ffmpeg_binary, ffmpeg_number, ffmpeg_url, stderr_tail
from dreammotion.utils.atomic import atomic_path


# ----------------------------------------------------------------------------------------------------------
# Writing videos
# ----------------------------------------------------------------------------------------------------------


def _as_rgb_clip(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        raise TypeError(f"expected uint8 frames, got {frames.dtype}")
    if frames.ndim == 3:  # (F, H, W) gray
        frames = np.repeat(frames[..., None], 3, axis=-1)
    if frames.ndim != 4 or frames.shape[-1] != 3 or 0 in frames.shape:
        raise ValueError(f"expected frames of shape (F, H, W, 3) with F, H, W > 0, got {frames.shape}")
    return frames


def upscale_nearest(frames: np.ndarray, min_size: int) -> np.ndarray:
    """Repeat pixels by the smallest integer factor that makes the short side at least `min_size`."""
    short_side = min(frames.shape[1], frames.shape[2])
    factor = max(1, math.ceil(min_size / short_side)) if min_size > 0 else 1
    if factor == 1:
        return frames
    return np.repeat(np.repeat(frames, factor, axis=1), factor, axis=2)


def write_video(frames_uint8: np.ndarray, path: str | Path, fps: float = 8, min_size: int = 256) -> None:
    """Write (F, H, W, 3) uint8 frames as an H.264 yuv420p mp4, atomically.

    Small clips are upscaled (nearest neighbour, integer factor) to at least `min_size` on the short side so
    that players show them; odd sizes get one replicated edge row/column (yuv420p needs even sizes).
    """
    frames = upscale_nearest(_as_rgb_clip(frames_uint8), min_size)
    pad_rows, pad_cols = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_rows or pad_cols:
        frames = np.pad(frames, ((0, 0), (0, pad_rows), (0, pad_cols), (0, 0)), mode="edge")
    _, height, width, _ = frames.shape
    import ffmpeg  # ffmpeg-python

    path = Path(path)
    with atomic_path(path) as tmp:
        source = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", framerate=ffmpeg_number(fps))
        output = ffmpeg.output(
            source, ffmpeg_url(tmp), format="mp4", vcodec="libx264", pix_fmt="yuv420p", crf=18, preset="medium",
            movflags="+faststart",
        )
        argv = output.compile(cmd=[ffmpeg_binary(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        result = subprocess.run(argv, input=np.ascontiguousarray(frames).tobytes(), capture_output=True)
        if result.returncode != 0:
            raise RuntimeError(f"ffmpeg could not write {path}: {stderr_tail(result.stderr)} (argv: {argv})")


def write_gif(frames: np.ndarray, path: str | Path, fps: float = 8, min_size: int = 128) -> None:
    """Write an animated GIF (looping) with Pillow, atomically; small clips are upscaled like `write_video`.

    Pillow quantises each frame to 256 colours and merges identical consecutive frames (adding up their
    durations), so a clip with repeated frames decodes to fewer GIF frames with the same total duration.
    """
    from PIL import Image

    frames = upscale_nearest(_as_rgb_clip(frames), min_size)
    images = [Image.fromarray(frame) for frame in frames]
    with atomic_path(path) as tmp:
        images[0].save(
            tmp, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0
        )


def _resize_nearest(clip: np.ndarray, height: int, width: int) -> np.ndarray:
    rows = np.arange(height) * clip.shape[1] // height
    cols = np.arange(width) * clip.shape[2] // width
    return clip[:, rows][:, :, cols]


def _label_band(labels: Sequence[str], widths: Sequence[int], gap: int) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    text_height = max(ImageDraw.Draw(Image.new("RGB", (1, 1))).textbbox((0, 0), label or " ", font=font)[3] for label in labels)
    band = Image.new("RGB", (sum(widths) + gap * (len(widths) - 1), text_height + 4), (0, 0, 0))
    draw = ImageDraw.Draw(band)
    x = 0
    for label, clip_width in zip(labels, widths):
        draw.text((x + 2, 2), label, fill=(255, 255, 255), font=font)
        x += clip_width + gap
    return np.asarray(band)


def side_by_side(clips: Sequence[np.ndarray], labels: Sequence[str] | None = None, gap: int = 2) -> np.ndarray:
    """Stack clips horizontally at a common height (the tallest; nearest-neighbour resize) with white gaps.

    With `labels`, a black band with one white label per clip is added on top, so the result is
    (F, band + H, W', 3); without, (F, H, W', 3).
    """
    clips = [_as_rgb_clip(clip) for clip in clips]
    if not clips:
        raise ValueError("side_by_side needs at least one clip")
    frame_counts = {clip.shape[0] for clip in clips}
    if len(frame_counts) != 1:
        raise ValueError(f"side_by_side needs clips with the same number of frames, got {[c.shape[0] for c in clips]}")
    if labels is not None and len(labels) != len(clips):
        raise ValueError(f"side_by_side got {len(labels)} labels for {len(clips)} clips")
    height = max(clip.shape[1] for clip in clips)
    resized = [_resize_nearest(c, height, max(1, round(c.shape[2] * height / c.shape[1]))) for c in clips]
    num_frames = clips[0].shape[0]
    gap_block = np.full((num_frames, height, gap, 3), 255, dtype=np.uint8)
    parts: list[np.ndarray] = []
    for i, clip in enumerate(resized):
        if i and gap:
            parts.append(gap_block)
        parts.append(clip)
    stacked = np.concatenate(parts, axis=2)
    if labels is None:
        return stacked
    band = _label_band(labels, [clip.shape[2] for clip in resized], gap)
    return np.concatenate([np.broadcast_to(band, (num_frames, *band.shape)), stacked], axis=1)
