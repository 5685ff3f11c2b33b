"""Video input and output through ffmpeg: probing, frame extraction, mp4/gif writing, side-by-side clips.

Which ffmpeg: ``ffmpeg`` on PATH when there is one, else the static binary that the pip package
imageio-ffmpeg ships. imageio-ffmpeg ships no ffprobe, so :func:`probe_video` uses ``ffprobe -print_format
json`` when ffprobe is on PATH and otherwise parses the stream summary that ``ffmpeg -i FILE`` prints on
stderr; the probe records which binary and which method it used.

Extraction runs one ffmpeg filter graph, built with ffmpeg-python, and reads raw rgb24 frames from its
stdout pipe. In order, the graph applies: rotation metadata (ffmpeg's autorotate, on by default), square
pixels (non-square sample aspect ratios are stretched out), the fps resample (``fps`` filter, nearest frame),
alpha compositing on black (premultiply), scaling to exactly ``height x width`` (crop / pad / stretch) and
conversion to rgb24 (grayscale becomes three equal channels). A folder of images is decoded by running
the same graph once per image, so every image gets the same size and format handling as a video frame.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from dreammotion.errors import InputError
from dreammotion.io.frames import write_frames
from dreammotion.utils.atomic import atomic_dir, atomic_path, write_json

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".webm", ".gif", ".avi", ".mkv")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
# Image files that may sit in a frame folder but are not read: naming them is better than skipping them.
UNSUPPORTED_IMAGE_EXTENSIONS = (
    ".bmp", ".tif", ".tiff", ".webp", ".gif", ".heic", ".heif", ".avif", ".exr", ".jp2", ".ppm", ".pgm", ".tga",
    ".dpx", ".svg", ".jxl",
)
RESIZE_MODES = ("crop", "pad", "stretch")
# Pixel formats whose frames may carry transparency (pal8: GIF/PNG palettes can have a transparent entry).
_ALPHA_PIX_FMT = re.compile(r"^(yuva|gbrap|rgba|bgra|argb|abgr|ya\d|pal8|rgba64|bgra64)")
SCALE_FLAGS = "area+accurate_rnd+full_chroma_int"  # box filter: the usual case is downscaling camera video
_STDERR_TAIL_LINES = 6


# ----------------------------------------------------------------------------------------------------------
# ffmpeg binary
# ----------------------------------------------------------------------------------------------------------


def ffmpeg_binary_info() -> dict[str, str]:
    """``{"path": ..., "source": "PATH" | "imageio-ffmpeg"}`` for the ffmpeg that this module runs."""
    on_path = shutil.which("ffmpeg")
    if on_path:
        return {"path": on_path, "source": "PATH"}
    try:
        import imageio_ffmpeg

        return {"path": imageio_ffmpeg.get_ffmpeg_exe(), "source": "imageio-ffmpeg"}
    except (ImportError, RuntimeError) as err:
        raise FileNotFoundError(
            f"no ffmpeg: none on PATH and the imageio-ffmpeg binary is unavailable ({err}); "
            "install ffmpeg or `pip install imageio-ffmpeg==0.8.1`"
        ) from err


def ffmpeg_binary() -> str:
    """Path of ``ffmpeg`` on PATH, else the binary shipped by imageio-ffmpeg."""
    return ffmpeg_binary_info()["path"]


def _ffmpeg_url(path: Path) -> str:
    # The file: protocol prefix stops ffmpeg from reading "name:rest.mp4" as a protocol or "-x.mp4" as an option.
    return "file:" + str(path.resolve())


def _stderr_tail(stderr: bytes | str, lines: int = _STDERR_TAIL_LINES) -> str:
    text = stderr.decode("utf-8", errors="replace") if isinstance(stderr, bytes) else stderr
    kept = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("At least one output")]
    return " | ".join(kept[-lines:]) if kept else "(ffmpeg printed nothing)"


# ----------------------------------------------------------------------------------------------------------
# Probing
# ----------------------------------------------------------------------------------------------------------


def _check_video_file(path: Path) -> None:
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
    _check_video_file(path)
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
    argv = [ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", _ffmpeg_url(path)]
    result = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise InputError(f"video {path} cannot be read as a video: {_stderr_tail(result.stderr)}")
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
    argv = [ffmpeg_binary(), "-hide_banner", "-nostdin", "-i", _ffmpeg_url(path)]
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
        raise InputError(f"video {path} cannot be read as a video: {_stderr_tail(stderr)}")
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
    sar_num, sar_den = _parse_sar(sar)
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


def _parse_sar(sar: str | None) -> tuple[int, int]:
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
    sar_num, sar_den = _parse_sar(sar)
    if sar_num != sar_den:  # make pixels square so that crop/pad keep the displayed aspect ratio
        stream = stream.filter("scale", w=f"trunc(iw*{sar_num}/{sar_den})", h="ih").filter("setsar", "1")
    if fps is not None:
        stream = stream.filter("fps", fps=_format_number(fps))
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


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


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
        input_options["ss"] = _format_number(start)  # input seeking: frames before `start` are dropped
    if decoder:
        input_options["c:v"] = decoder
    source = ffmpeg.input(_ffmpeg_url(path), **input_options)
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
        raise InputError(f"{what}: ffmpeg could not decode it (corrupt or truncated file?): {_stderr_tail(stderr)}")
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
    _check_video_file(path)
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
            f"the end; probed duration {probe['duration']} s): {_stderr_tail(stderr)}"
        )
    if num_frames is not None and len(frames) < num_frames:
        rate = f"{_format_number(fps)} fps (resampled)" if fps else f"its native {probe['fps']} fps"
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
            raise InputError(f"image {image_path} in frame folder {folder}: ffmpeg decoded no frame: {_stderr_tail(stderr)}")
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
        source = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", framerate=_format_number(fps))
        output = ffmpeg.output(
            source, _ffmpeg_url(tmp), format="mp4", vcodec="libx264", pix_fmt="yuv420p", crf=18, preset="medium",
            movflags="+faststart",
        )
        argv = output.compile(cmd=[ffmpeg_binary(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        result = subprocess.run(argv, input=np.ascontiguousarray(frames).tobytes(), capture_output=True)
        if result.returncode != 0:
            raise RuntimeError(f"ffmpeg could not write {path}: {_stderr_tail(result.stderr)} (argv: {argv})")


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
