"""``dreammotion encode``: VAE-encode a frame folder once per video."""

from __future__ import annotations

import argparse
import json

from dreammotion.edit.io import save_latents
from dreammotion.io.frames import read_frames, to_tensor
from dreammotion.models.registry import load_model_autoencoder


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--frames", required=True, help="folder of model-sized PNG frames")
    p.add_argument("--model", required=True, help="model settings as JSON (see config/README.md, key 'model')")
    p.add_argument("--out", required=True, help="latent file to write (.safetensors)")
    p.add_argument("--chunk", type=int, default=8, help="frames per VAE call (memory)")


def run(args: argparse.Namespace) -> int:
    model = load_model_autoencoder(json.loads(args.model))  # the autoencoder only: no UNet, no text encoder
    frames = read_frames(args.frames)
    latents = model.encode_frames(to_tensor(frames), chunk=args.chunk)
    save_latents(args.out, latents, model=model.source, frames=args.frames, shape=list(latents.shape))
    print(f"encoded {len(frames)} frames of {args.frames} -> latents {tuple(latents.shape)} in {args.out}")
    return 0
