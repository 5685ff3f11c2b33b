"""Frame extraction: a video or a folder of images -> model-sized RGB frames (the frames stage).

Extraction runs one ffmpeg filter graph, built with ffmpeg-python, and reads raw rgb24 frames from its
stdout pipe. In order, the graph applies: rotation metadata (ffmpeg's autorotate, on by default), square
pixels (non-square sample aspect ratios are stretched out), the fps resample (``fps`` filter, nearest frame),
alpha compositing on black (premultiply), scaling to exactly ``height x width`` (crop / pad / stretch) and
conversion to rgb24 (grayscale becomes three equal channels). A folder of images is decoded by running
the same graph once per image, so every image gets the same size and format handling as a video frame.
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from dreammotion.errors import InputError
from dreammotion.io.ffmpeg_tool import ffmpeg_binary, ffmpeg_binary_info, ffmpeg_number, ffmpeg_url, stderr_tail
from dreammotion.io.frames import write_frames
from dreammotion.io.probe import check_video_file, list_folder_images, parse_sar, probe_image_folder, probe_video
from dreammotion.utils.atomic import atomic_dir, write_json

RESIZE_MODES = ("crop", "pad", "stretch")
SCALE_FLAGS = "area+accurate_rnd+full_chroma_int"  # box filter: the usual case is downscaling camera video


# ----------------------------------------------------------------------------------------------------------
# Extraction
# ----------------------------------------------------------------------------------------------------------


def _check_request(
    path: Path, num_frames: int | None, height: int, width: int, fps: float | None, resize: str, start: float
) -> None:
    if num_frames is not None and num_frames < 1:
        raise InputError(f"video {path}: num_frames must be >= 1, got {num_frames}")
    if height < 1 or width < 1:
        raise InputError(f"video {path}: output size must be at least 1x1, got {height}x{width} (height x width)")
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise InputError(f"video {path}: fps must be a positive number, got {fps}")
    if resize not in RESIZE_MODES:
        raise InputError(f"video {path}: resize must be one of {', '.join(RESIZE_MODES)}, got {resize!r}")
    if not (math.isfinite(start) and start >= 0):
        raise InputError(f"video {path}: start must be >= 0 seconds, got {start}")


def build_filter_graph(
    stream: Any,
    *,
    height: int,
    width: int,
    resize: str,
    fps: float | None,
    sar: str = "1:1",
    has_alpha: bool = False,
) -> Any:
    """Apply the extraction filters to an ffmpeg-python stream (rotation is applied by ffmpeg's autorotate)."""
    sar_num, sar_den = parse_sar(sar)
    if sar_num != sar_den:  # make pixels square so that crop/pad keep the displayed aspect ratio
        stream = stream.filter("scale", w=f"trunc(iw*{sar_num}/{sar_den})", h="ih").filter("setsar", "1")
    if fps is not None:
        stream = stream.filter("fps", fps=ffmpeg_number(fps))
    if has_alpha:
        # Composite on black = multiply colour by alpha, before any resampling. In 16 bits, because 8-bit
        # premultiply rounds opaque pixels down by one level.
        stream = stream.filter("format", "gbrap16le").filter("premultiply", inplace=1)
    if resize == "stretch":
        stream = stream.filter("scale", w=width, h=height, flags=SCALE_FLAGS)
    elif resize == "crop":  # cover the target, then centre-crop the overflow
        stream = stream.filter(
            "scale", w=width, h=height, force_original_aspect_ratio="increase", flags=SCALE_FLAGS
        ).filter("crop", w=width, h=height)
    else:  # "pad": fit inside the target, then centre on black
        stream = stream.filter(
            "scale", w=width, h=height, force_original_aspect_ratio="decrease", flags=SCALE_FLAGS
        ).filter("pad", w=width, h=height, x="(ow-iw)/2", y="(oh-ih)/2", color="black")
    return stream.filter("setsar", "1").filter("format", "rgb24")


def _extraction_argv(
    path: Path,
    *,
    num_frames: int | None,
    height: int,
    width: int,
    resize: str,
    fps: float | None,
    start: float,
    stream_index: int | None,
    sar: str,
    has_alpha: bool,
    decoder: str | None,
) -> list[str]:
    import ffmpeg  # ffmpeg-python

    input_options: dict[str, Any] = {}
    if start > 0:
        input_options["ss"] = ffmpeg_number(start)  # input seeking: frames before `start` are dropped
    if decoder:
        input_options["c:v"] = decoder
    source = ffmpeg.input(ffmpeg_url(path), **input_options)
    stream = source[str(stream_index)] if stream_index is not None else source
    stream = build_filter_graph(stream, height=height, width=width, resize=resize, fps=fps, sar=sar, has_alpha=has_alpha)
    limit = {"frames:v": num_frames} if num_frames is not None else {}  # None: every frame to the end
    output = ffmpeg.output(stream, "pipe:", format="rawvideo", pix_fmt="rgb24", fps_mode="passthrough", **limit)
    return output.compile(cmd=[ffmpeg_binary(), "-hide_banner", "-nostdin", "-loglevel", "error"])


def _alpha_decoder(probe: dict[str, Any]) -> str | None:
    # ffmpeg's native VP8/VP9 decoders drop the alpha side channel; libvpx's decoders keep it.
    if probe["has_alpha"] and probe["codec"] in ("vp8", "vp9") and probe["pix_fmt"].startswith("yuva"):
        return "libvpx-vp9" if probe["codec"] == "vp9" else "libvpx"
    return None


def _run_rawvideo(argv: list[str], what: str, height: int, width: int) -> tuple[np.ndarray, str]:
    """Run an extraction command; `what` names the input in errors ("video PATH", "image PATH in ...")."""
    result = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL)
    stderr = result.stderr.decode("utf-8", errors="replace")
    if result.returncode != 0:
        raise InputError(f"{what}: ffmpeg could not decode it (corrupt or truncated file?): {stderr_tail(stderr)}")
    frame_bytes = height * width * 3
    count = len(result.stdout) // frame_bytes
    frames = np.frombuffer(result.stdout[: count * frame_bytes], dtype=np.uint8).reshape(count, height, width, 3)
    return frames.copy(), stderr  # writable, unlike a view of the bytes


def decode_video(
    video: str | Path,
    *,
    num_frames: int | None,
    height: int,
    width: int,
    fps: float | None = None,
    resize: str = "crop",
    start: float = 0.0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Decode exactly `num_frames` consecutive frames (after the fps resample) from the first frame at or
    after `start` seconds, each resized to `height x width`: ((F, H, W, 3) uint8, metadata).

    `num_frames` None (``frames.num_frames: all``) takes every frame from `start` to the end."""
    path = Path(video)
    check_video_file(path)
    _check_request(path, num_frames, height, width, fps, resize, start)
    if path.is_dir():
        return decode_image_folder(
            path, num_frames=num_frames, height=height, width=width, fps=fps, resize=resize, start=start
        )
    probe = probe_video(path)
    argv = _extraction_argv(
        path,
        num_frames=num_frames,
        height=height,
        width=width,
        resize=resize,
        fps=fps,
        start=start,
        stream_index=probe["stream_index"],
        sar=probe["sar"],
        has_alpha=probe["has_alpha"],
        decoder=_alpha_decoder(probe),
    )
    frames, stderr = _run_rawvideo(argv, f"video {path}", height, width)
    if len(frames) == 0:
        raise InputError(
            f"video {path}: no frame could be decoded from {start} s on (corrupt or truncated file, or start past "
            f"the end; probed duration {probe['duration']} s): {stderr_tail(stderr)}"
        )
    if num_frames is not None and len(frames) < num_frames:
        rate = f"{ffmpeg_number(fps)} fps (resampled)" if fps else f"its native {probe['fps']} fps"
        raise InputError(
            f"video {path} is too short: it has only {len(frames)} frames at {rate} from {start} s on, "
            f"but {num_frames} were asked for"
        )
    metadata = {
        "source": str(path),
        "kind": "video",
        "num_frames": len(frames),
        "all_frames": num_frames is None,
        "height": height,
        "width": width,
        "resize": resize,
        "fps": fps if fps is not None else probe["fps"],
        "fps_resampled": fps is not None,
        "start": start,
        "probe": probe,
        "ffmpeg": _ffmpeg_record([argv], stderr),
    }
    return frames, metadata


def decode_image_folder(
    folder: str | Path,
    *,
    num_frames: int | None,
    height: int,
    width: int,
    fps: float | None = None,
    resize: str = "crop",
    start: float = 0.0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Frames from a folder of png/jpg images sorted by name, each through the same ffmpeg graph as a video.

    The images already are the frame sequence: `fps` is taken as its frame rate (no resampling) and only
    serves to turn `start` seconds into a first image (round(start * fps)). `num_frames` None takes every
    image from there on.
    """
    folder = Path(folder)
    _check_request(folder, num_frames, height, width, fps, resize, start)
    probe = probe_image_folder(folder)
    if start > 0 and fps is None:
        raise InputError(f"frame folder {folder}: start={start} s needs an fps (the frame rate of the images)")
    first = int(round(start * fps)) if fps else 0
    images = list_folder_images(folder)[0][first:]
    if num_frames is None:
        num_frames = len(images)
        if num_frames == 0:
            raise InputError(f"frame folder {folder} has no image from image {first} on (start={start} s)")
        all_frames = True
    else:
        all_frames = False
    if len(images) < num_frames:
        raise InputError(
            f"frame folder {folder} is too short: it has only {len(images)} images from image {first} on, "
            f"but {num_frames} were asked for"
        )
    frames, commands, stderr_all = [], [], []
    for image_path in images[:num_frames]:
        argv = _extraction_argv(
            image_path,
            num_frames=1,
            height=height,
            width=width,
            resize=resize,
            fps=None,
            start=0.0,
            stream_index=None,
            sar="1:1",
            has_alpha=True,  # premultiply is a no-op on opaque images; gray/RGB get an opaque alpha
            decoder=None,
        )
        decoded, stderr = _run_rawvideo(argv, f"image {image_path} in frame folder {folder}", height, width)
        if len(decoded) != 1:
            raise InputError(f"image {image_path} in frame folder {folder}: ffmpeg decoded no frame: {stderr_tail(stderr)}")
        frames.append(decoded[0])
        commands.append(argv)
        stderr_all.append(stderr)
    metadata = {
        "source": str(folder),
        "kind": "image_folder",
        "num_frames": num_frames,
        "all_frames": all_frames,
        "height": height,
        "width": width,
        "resize": resize,
        "fps": fps,
        "fps_resampled": False,
        "start": start,
        "first_image": images[0].name,
        "probe": probe,
        "ffmpeg": _ffmpeg_record(commands, "".join(stderr_all)),
    }
    return np.stack(frames), metadata


def _ffmpeg_record(commands: list[list[str]], stderr: str) -> dict[str, Any]:
    binary = ffmpeg_binary_info()
    warnings = [line.strip() for line in stderr.splitlines() if line.strip()]
    return {"binary": binary["path"], "source": binary["source"], "commands": commands, "warnings": warnings[-50:]}


def extract_frames(
    video: str | Path,
    out_dir: str | Path,
    *,
    num_frames: int | None,
    fps: float | None = None,
    height: int,
    width: int,
    resize: str = "crop",
    start: float = 0.0,
) -> dict[str, Any]:
    """Write `num_frames` model-sized frames of `video` (a video file or an image folder) to `out_dir`
    (None: every frame from `start` on).

    `out_dir` receives 00000.png..., probe.json (the probe) and ffmpeg.json (binary and exact argv), all
    atomically: the folder appears complete or not at all. Returns the metadata dict.
    """
    frames, metadata = decode_video(
        video, num_frames=num_frames, height=height, width=width, fps=fps, resize=resize, start=start
    )
    with atomic_dir(out_dir) as tmp:
        write_frames(frames, tmp)  # replaces the (empty) temporary folder with the numbered PNGs
        write_json(tmp / "probe.json", metadata["probe"])
        write_json(tmp / "ffmpeg.json", metadata["ffmpeg"])
    return metadata
