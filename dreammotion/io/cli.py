"""Stage ``frames``: decode a video (or a folder of images) into model-sized numbered PNG frames.

    python -m dreammotion frames --video PATH --out DIR --num-frames N|all [--fps F] --height H --width W
                                 [--resize crop|pad|stretch] [--start S]

Writes DIR/00000.png..., DIR/probe.json and DIR/ffmpeg.json (the binary and the exact ffmpeg argv).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dreammotion.io.extract import RESIZE_MODES, extract_frames


def frame_count(text: str) -> int | None:
    """--num-frames: a count >= 1, or "all" (None: every frame from --start to the end)."""
    if text == "all":
        return None
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of frames or 'all', got {text!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1 frame, got {count}")
    return count


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--video", required=True, type=Path, help="video file (mp4/mov/webm/gif/avi/mkv) or image folder")
    parser.add_argument("--out", required=True, type=Path, help="output folder of numbered PNG frames")
    parser.add_argument("--num-frames", required=True, type=frame_count,
                        help="exact number of consecutive frames to take, or 'all' (every frame from --start on)")
    parser.add_argument(
        "--fps", type=float, default=None,
        help="resample to this frame rate first (default: the native rate); for an image folder, its frame rate",
    )
    parser.add_argument("--height", required=True, type=int, help="output frame height in pixels")
    parser.add_argument("--width", required=True, type=int, help="output frame width in pixels")
    parser.add_argument(
        "--resize", choices=RESIZE_MODES, default="crop",
        help="crop: cover and centre-crop; pad: fit and pad with black; stretch: ignore the aspect ratio",
    )
    parser.add_argument("--start", type=float, default=0.0, help="first frame at or after this time, in seconds")


def run(args: argparse.Namespace) -> int:
    metadata = extract_frames(
        args.video,
        args.out,
        num_frames=args.num_frames,
        fps=args.fps,
        height=args.height,
        width=args.width,
        resize=args.resize,
        start=args.start,
    )
    probe = metadata["probe"]
    print(
        f"frames: {metadata['num_frames']} frames {metadata['height']}x{metadata['width']} ({metadata['resize']}) "
        f"from {metadata['source']} -> {args.out} "
        f"[ffmpeg from {metadata['ffmpeg']['source']}, probe by {probe['probe_method']}]"
    )
    return 0
