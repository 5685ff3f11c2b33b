"""``dreammotion decode``: edited latents -> frames, an mp4, and a side-by-side comparison."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dreammotion.edit.io import load_latents
from dreammotion.io.frames import read_frames, to_uint8, write_frames
from dreammotion.models.registry import load_model_autoencoder
from dreammotion.records import CLIP_FRAMES, CLIP_VIDEO, EDIT_COMPARE


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--latents", required=True)
    p.add_argument("--input-frames", required=True, help="the source frames, for the side-by-side video")
    p.add_argument("--model", required=True, help="model settings as JSON")
    p.add_argument("--out-dir", required=True, help="writes frames/, video.mp4, compare.mp4")
    p.add_argument("--fps", type=float, default=8.0)
    p.add_argument("--chunk", type=int, default=8, help="frames per VAE call (memory)")


def run(args: argparse.Namespace) -> int:
    from dreammotion.io.write import side_by_side, write_video

    model = load_model_autoencoder(json.loads(args.model))  # the autoencoder only: no UNet, no text encoder
    latents, _ = load_latents(args.latents)
    edited = to_uint8(model.decode_latents(latents, chunk=args.chunk))
    source = read_frames(args.input_frames)
    out = Path(args.out_dir)
    write_frames(edited, out / CLIP_FRAMES)
    write_video(edited, out / CLIP_VIDEO, fps=args.fps)
    write_video(side_by_side([source, edited], labels=["input", "edit"]), out / EDIT_COMPARE, fps=args.fps)
    print(f"decoded {len(edited)} frames to {out}")
    return 0
