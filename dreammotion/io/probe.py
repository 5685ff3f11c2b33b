"""Probing a video file or a folder of images: size, frame count, fps, rotation, sample aspect ratio, alpha.

:func:`probe_video` uses ``ffprobe -print_format json`` when ffprobe is on PATH and otherwise parses the
stream summary that ``ffmpeg -i FILE`` prints on stderr; the probe records which binary and which
method it used. The start-up checks (``dreammotion.validate``) and the extraction both probe.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from dreammotion.errors import InputError
from dreammotion.io.ffmpeg_tool import ffmpeg_binary, ffmpeg_binary_info, ffmpeg_url, stderr_tail

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".webm", ".gif", ".avi", ".mkv")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
# Image files that may sit in a frame folder but are not read: naming them is better than skipping them.
UNSUPPORTED_IMAGE_EXTENSIONS = (
    ".bmp", ".tif", ".tiff", ".webp", ".gif", ".heic", ".heif", ".avif", ".exr", ".jp2", ".ppm", ".pgm", ".tga",
    ".dpx", ".svg", ".jxl",
)
# Pixel formats whose frames may carry transparency (pal8: GIF/PNG palettes can have a transparent entry).
_ALPHA_PIX_FMT = re.compile(r"^(yuva|gbrap|rgba|bgra|argb|abgr|ya\d|pal8|rgba64|bgra64)")


# ----------------------------------------------------------------------------------------------------------
# Probing
# ----------------------------------------------------------------------------------------------------------


def check_video_file(path: Path) -> None:
    if not path.exists():
        raise InputError(f"video {path} does not exist")
    if path.is_dir():
        return
    if not path.is_file():
        raise InputError(f"video {path} is not a regular file")
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        raise InputError(
            f"video {path}: unsupported extension {path.suffix!r} (expected a folder of images or one of "
            f"{', '.join(VIDEO_EXTENSIONS)})"
        )
    if path.stat().st_size == 0:
        raise InputError(f"video {path} is empty (0 bytes)")


def probe_video(video: str | Path) -> dict[str, Any]:
    """Describe the first video stream of `video` (width/height are the displayed size, after rotation).

    Keys: path, container, stream_index, codec, pix_fmt, coded_width, coded_height, width, height, sar,
    rotation (degrees counter-clockwise, as ffmpeg's display matrix), fps, duration, frame_count,
    frame_count_exact, has_alpha, probe_method ("ffprobe" | "ffmpeg -i stderr"), ffmpeg_binary, ffmpeg_source.
    """
    path = Path(video)
    check_video_file(path)
    if path.is_dir():
        raise InputError(f"video {path} is a folder: use probe_image_folder")
    ffprobe = shutil.which("ffprobe")
    if ffprobe:
        probe = _probe_with_ffprobe(ffprobe, path)
    else:
        probe = _probe_with_ffmpeg_stderr(path)
    binary = ffmpeg_binary_info()
    probe["ffmpeg_binary"] = binary["path"]
    probe["ffmpeg_source"] = binary["source"]
    return probe


def _probe_with_ffprobe(ffprobe: str, path: Path) -> dict[str, Any]:
    argv = [ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", ffmpeg_url(path)]
    result = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise InputError(f"video {path} cannot be read as a video: {stderr_tail(result.stderr)}")
    return probe_from_ffprobe_json(json.loads(result.stdout.decode("utf-8", errors="replace")), path)


def probe_from_ffprobe_json(data: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """The probe dict from ``ffprobe -print_format json -show_format -show_streams`` output."""
    streams = data.get("streams", [])
    video_streams = [
        s for s in streams
        if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic", 0)
    ]
    if not video_streams:
        kinds = sorted({s.get("codec_type", "unknown") for s in streams}) or ["none"]
        raise InputError(f"video {path} has no video stream (streams: {', '.join(kinds)})")
    stream = video_streams[0]
    tags = {k.lower(): v for k, v in stream.get("tags", {}).items()}
    rotation = _rotation_from_ffprobe(stream, tags)
    fps = _parse_rational(stream.get("avg_frame_rate")) or _parse_rational(stream.get("r_frame_rate"))
    duration = _parse_float(stream.get("duration")) or _parse_float(data.get("format", {}).get("duration"))
    nb_frames = int(stream["nb_frames"]) if str(stream.get("nb_frames", "")).isdigit() else None
    if nb_frames is None and str(tags.get("number_of_frames", "")).isdigit():
        nb_frames = int(tags["number_of_frames"])
    pix_fmt = stream.get("pix_fmt") or "none"
    has_alpha = bool(_ALPHA_PIX_FMT.match(pix_fmt)) or str(tags.get("alpha_mode", "0")) == "1"
    if str(tags.get("alpha_mode", "0")) == "1" and not pix_fmt.startswith("yuva"):
        pix_fmt = pix_fmt.replace("yuv", "yuva", 1)  # VP8/VP9 keep alpha in a side channel
    return _finish_probe(
        path=path,
        container=data.get("format", {}).get("format_name", "unknown"),
        stream_index=int(stream.get("index", 0)),
        codec=stream.get("codec_name", "unknown"),
        pix_fmt=pix_fmt,
        coded_width=int(stream.get("width", 0) or 0),
        coded_height=int(stream.get("height", 0) or 0),
        sar=stream.get("sample_aspect_ratio", "1:1"),
        rotation=rotation,
        fps=fps,
        duration=duration,
        frame_count=nb_frames,
        has_alpha=has_alpha,
        probe_method="ffprobe",
    )


def _rotation_from_ffprobe(stream: dict[str, Any], tags: dict[str, str]) -> float:
    for side_data in stream.get("side_data_list", []):
        if "rotation" in side_data:
            return float(side_data["rotation"])
    if "rotate" in tags:  # old-style tag: clockwise degrees
        return -float(tags["rotate"])
    return 0.0


def _probe_with_ffmpeg_stderr(path: Path) -> dict[str, Any]:
    argv = [ffmpeg_binary(), "-hide_banner", "-nostdin", "-i", ffmpeg_url(path)]
    result = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL)
    # With no output file ffmpeg always exits 1; success is an "Input #0" summary on stderr.
    return probe_from_ffmpeg_stderr(result.stderr.decode("utf-8", errors="replace"), path)


_STREAM_LINE = re.compile(r"^\s*Stream #\d+:(\d+)(?:\[[^\]]*\])?(?:\([^)]*\))?: (\w+): (.*)$")
_INPUT_LINE = re.compile(r"^Input #0, (.+?), from ")
_DURATION_LINE = re.compile(r"^\s*Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_ROTATION = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees", re.IGNORECASE)
_METADATA_ENTRY = re.compile(r"^\s+(\S[^:]*?)\s*: (.*)$")


def probe_from_ffmpeg_stderr(stderr: str, path: str | Path) -> dict[str, Any]:
    """The probe dict from the input summary that ``ffmpeg -hide_banner -i FILE`` prints on stderr."""
    lines = stderr.splitlines()
    container = next((m.group(1) for m in map(_INPUT_LINE.match, lines) if m), None)
    if container is None:
        raise InputError(f"video {path} cannot be read as a video: {stderr_tail(stderr)}")
    duration = None
    streams: list[dict[str, Any]] = []
    for line in lines:
        if (m := _DURATION_LINE.match(line)) and duration is None:
            duration = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
        elif m := _STREAM_LINE.match(line):
            streams.append({"index": int(m.group(1)), "type": m.group(2).lower(), "desc": m.group(3), "extra": []})
        elif streams:
            streams[-1]["extra"].append(line)  # metadata and side data printed under the stream line
    video_streams = [s for s in streams if s["type"] == "video" and "(attached pic)" not in s["desc"]]
    if not video_streams:
        kinds = sorted({s["type"] for s in streams}) or ["none"]
        raise InputError(f"video {path} has no video stream (streams: {', '.join(kinds)})")
    return _parse_stderr_video_stream(video_streams[0], container, duration, path)


def _parse_stderr_video_stream(
    stream: dict[str, Any], container: str, duration: float | None, path: str | Path
) -> dict[str, Any]:
    fields = _split_top_level(stream["desc"])
    codec = fields[0].split()[0] if fields and fields[0] else "unknown"
    pix_fmt = fields[1].split("(")[0].strip() if len(fields) > 1 else "none"
    width = height = 0
    sar = "1:1"
    fps = None
    for field in fields[1:]:
        if m := re.match(r"^(\d+)x(\d+)", field):
            if width == 0:
                width, height = int(m.group(1)), int(m.group(2))
            if sar_match := re.search(r"SAR (\d+:\d+)", field):
                sar = sar_match.group(1)
        elif field.startswith("SAR "):
            sar = field.split()[1]
        elif m := re.match(r"^(\d+(?:\.\d+)?)(k?) (fps|tbr)$", field):
            value = float(m.group(1)) * (1000 if m.group(2) else 1)
            if fps is None or m.group(3) == "fps":
                fps = value
    metadata: dict[str, str] = {}
    rotation = 0.0
    for line in stream["extra"]:
        if m := _ROTATION.search(line):
            rotation = float(m.group(1))
        elif m := _METADATA_ENTRY.match(line):
            metadata[m.group(1).strip().lower()] = m.group(2).strip()
    if rotation == 0.0 and "rotate" in metadata:  # old-style tag: clockwise degrees
        rotation = -float(metadata["rotate"])
    if duration is None and "duration" in metadata:
        h, m_, s = metadata["duration"].split(":")
        duration = int(h) * 3600 + int(m_) * 60 + float(s)
    frame_count = int(metadata["number_of_frames"]) if metadata.get("number_of_frames", "").isdigit() else None
    alpha_side_channel = metadata.get("alpha_mode") == "1"
    if alpha_side_channel and not pix_fmt.startswith("yuva"):
        pix_fmt = pix_fmt.replace("yuv", "yuva", 1)  # VP8/VP9 keep alpha in a side channel
    return _finish_probe(
        path=path,
        container=container,
        stream_index=stream["index"],
        codec=codec,
        pix_fmt=pix_fmt,
        coded_width=width,
        coded_height=height,
        sar=sar,
        rotation=rotation,
        fps=fps,
        duration=duration,
        frame_count=frame_count,
        has_alpha=bool(_ALPHA_PIX_FMT.match(pix_fmt)) or alpha_side_channel,
        probe_method="ffmpeg -i stderr",
    )


def _finish_probe(
    *,
    path: str | Path,
    container: str,
    stream_index: int,
    codec: str,
    pix_fmt: str,
    coded_width: int,
    coded_height: int,
    sar: str,
    rotation: float,
    fps: float | None,
    duration: float | None,
    frame_count: int | None,
    has_alpha: bool,
    probe_method: str,
) -> dict[str, Any]:
    if coded_width <= 0 or coded_height <= 0:
        raise InputError(f"video {path}: its video stream has a frame size of {coded_width}x{coded_height}")
    rotation = rotation % 360.0
    quarter_turn = round(rotation / 90.0) % 2 == 1
    sar_num, sar_den = parse_sar(sar)
    # Displayed size: square pixels first, then rotation (mirrors the extraction graph).
    square_width = coded_width * sar_num // sar_den if sar_num != sar_den else coded_width
    width, height = (coded_height, square_width) if quarter_turn else (square_width, coded_height)
    frame_count_exact = frame_count is not None
    if frame_count is None and fps and duration:
        frame_count = int(round(fps * duration))
    return {
        "path": str(path),
        "container": container,
        "stream_index": stream_index,
        "codec": codec,
        "pix_fmt": pix_fmt,
        "coded_width": coded_width,
        "coded_height": coded_height,
        "width": width,
        "height": height,
        "sar": f"{sar_num}:{sar_den}",
        "rotation": rotation,
        "fps": fps,
        "duration": duration,
        "frame_count": frame_count,
        "frame_count_exact": frame_count_exact,
        "has_alpha": has_alpha,
        "probe_method": probe_method,
    }


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses or brackets ("yuv420p(tv, progressive), 64x32")."""
    fields, depth, current = [], 0, []
    for char in text:
        if char in "([":
            depth += 1
        elif char in ")]":
            depth = max(0, depth - 1)
        if char == "," and depth == 0:
            fields.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    fields.append("".join(current).strip())
    return fields


def parse_sar(sar: str | None) -> tuple[int, int]:
    try:
        num, den = (int(x) for x in str(sar).split(":"))
    except ValueError:
        return 1, 1
    if num <= 0 or den <= 0:  # "0:1" means unknown, i.e. square
        return 1, 1
    divisor = math.gcd(num, den)
    return num // divisor, den // divisor


def _parse_rational(text: str | None) -> float | None:
    if not text or text in ("0/0", "N/A"):
        return None
    num, _, den = str(text).partition("/")
    try:
        value = float(num) / float(den or 1)
    except (ValueError, ZeroDivisionError):
        return None
    return value if value > 0 else None


def _parse_float(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


# ----------------------------------------------------------------------------------------------------------
# Image folders
# ----------------------------------------------------------------------------------------------------------


def _natural_key(name: str) -> list[Any]:
    # "img2.png" sorts before "img10.png".
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_folder_images(folder: str | Path) -> tuple[list[Path], list[Path]]:
    """(images sorted by name, other files that are not images and are ignored).

    Hidden files are skipped; an image type that is not png/jpg/jpeg raises an InputError naming it.
    """
    folder = Path(folder)
    images, ignored = [], []
    for entry in sorted(folder.iterdir(), key=lambda p: _natural_key(p.name)):
        if entry.name.startswith("."):
            continue
        suffix = entry.suffix.lower()
        if entry.is_file() and suffix in IMAGE_EXTENSIONS:
            if entry.stat().st_size == 0:
                raise InputError(f"image {entry} in frame folder {folder} is empty (0 bytes)")
            images.append(entry)
        elif suffix in UNSUPPORTED_IMAGE_EXTENSIONS:
            raise InputError(
                f"image {entry} in frame folder {folder}: unsupported image type {suffix!r} "
                f"(supported: {', '.join(IMAGE_EXTENSIONS)})"
            )
        else:
            ignored.append(entry)
    if not images:
        raise InputError(f"frame folder {folder} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    return images, ignored


def probe_image_folder(folder: str | Path) -> dict[str, Any]:
    """Describe an image folder: its images in order, their sizes (from the file headers) and ignored files."""
    from PIL import Image, UnidentifiedImageError

    folder = Path(folder)
    images, ignored = list_folder_images(folder)
    sizes, modes = [], set()
    for image_path in images:
        try:
            with Image.open(image_path) as image:
                sizes.append([image.width, image.height])
                modes.add(image.mode)
        except (UnidentifiedImageError, OSError) as err:
            raise InputError(f"image {image_path} in frame folder {folder} cannot be read: {err}") from err
        if image.width == 0 or image.height == 0:
            raise InputError(f"image {image_path} in frame folder {folder} has a frame size of 0")
    binary = ffmpeg_binary_info()
    return {
        "path": str(folder),
        "kind": "image_folder",
        "frame_count": len(images),
        "frame_count_exact": True,
        "files": [p.name for p in images],
        "sizes": sizes,
        "modes": sorted(modes),
        "has_alpha": any(mode in ("RGBA", "LA", "PA", "P", "RGBa", "La") for mode in modes),
        "ignored_files": [p.name for p in ignored],
        "probe_method": "PIL header",
        "ffmpeg_binary": binary["path"],
        "ffmpeg_source": binary["source"],
    }
