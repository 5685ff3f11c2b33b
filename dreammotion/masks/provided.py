"""User-provided masks (``file:PATH``): a folder of PNGs or a mask video, checked against the clip.

A folder is read in natural name order (``2.png`` before ``10.png``); a video is decoded to gray with
the ffmpeg binary of imageio-ffmpeg. There must be exactly one mask per frame, at the frames' size:
nothing is resized or dropped silently. Masks are binarised at 0.5 (gray value >= 128 is object).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from dreammotion.masks.spec import FileMasks, spec_error


def load_provided_masks(spec: FileMasks, num_frames: int, height: int, width: int, *, context: str = "") -> np.ndarray:
    """Binary masks (F, H, W) bool from ``spec.path``; wrong count or size is an InputError."""
    path = spec.path
    if path.is_dir():
        gray, sizes = _read_png_folder(spec, context)
        source = "png folder"
    elif path.is_file():
        gray, sizes = _read_mask_video(spec, context)
        source = "video"
    else:
        raise spec_error(
            context, f"mask spec {spec.text!r}: {path} does not exist (expected a folder of PNG masks or a mask video)"
        )

    if len(gray) != num_frames:
        raise spec_error(
            context,
            f"mask spec {spec.text!r}: {path} ({source}) holds {len(gray)} masks but the clip has {num_frames} "
            "frames; provide exactly one mask per frame",
        )
    expected = (width, height)
    for index, size in enumerate(sizes):
        if size != expected:
            raise spec_error(
                context,
                f"mask spec {spec.text!r}: mask {index} of {path} is {size[0]}x{size[1]} (WxH) but the frames are "
                f"{width}x{height}; masks must match the model-sized frames (they are not resized silently)",
            )
    return np.stack(gray) >= 128


def natural_key(path: Path) -> list:
    """Sort key that orders ``mask2.png`` before ``mask10.png``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _read_png_folder(spec: FileMasks, context: str) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    paths = sorted((p for p in spec.path.iterdir() if p.suffix.lower() == ".png"), key=natural_key)
    if not paths:
        raise spec_error(context, f"mask spec {spec.text!r}: folder {spec.path} holds no .png masks")
    gray, sizes = [], []
    for p in paths:
        try:
            with Image.open(p) as image:
                sizes.append(image.size)
                gray.append(np.asarray(image.convert("L")))
        except (UnidentifiedImageError, OSError) as err:
            raise spec_error(context, f"mask spec {spec.text!r}: cannot read mask image {p} ({err})") from None
    return gray, sizes


def _read_mask_video(spec: FileMasks, context: str) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    import imageio_ffmpeg

    try:
        reader = imageio_ffmpeg.read_frames(str(spec.path), pix_fmt="gray", bpp=1)
        meta = reader.__next__()
        width, height = meta["size"]
        gray = [np.frombuffer(chunk, dtype=np.uint8).reshape(height, width) for chunk in reader]
    except (OSError, RuntimeError, KeyError, ValueError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise spec_error(
            context, f"mask spec {spec.text!r}: cannot decode mask video {spec.path} with ffmpeg ({first_line})"
        ) from None
    if not gray:
        raise spec_error(context, f"mask spec {spec.text!r}: mask video {spec.path} holds no frames")
    return gray, [(width, height)] * len(gray)
