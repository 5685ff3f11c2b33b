"""Does a second-stage model beat plain resizing? PSNR to the ground-truth high-resolution render.

The synthetic renderer draws the same clip (a ``ClipSpec`` in normalised coordinates) at any size, so a
32x32 clip has an exact 64x64 ground truth. For each sampled clip:

    low    = render(spec, 32)                       the first stage's resolution
    resize = lanczos(low -> 64x64)                  the `resize` method
    v2v    = video_to_video(model, resize, caption)  the `v2v` method
    psnr_resize = PSNR(resize, render(spec, 64)),  psnr_v2v = PSNR(v2v, render(spec, 64))

PSNR per frame (dB, peak 255; ``dreammotion.metrics.groundtruth.psnr_per_frame``), averaged over frames
and then over clips. The prompt is the clip's own caption, as the target prompt of an edit would be.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dreammotion.metrics.groundtruth import psnr_per_frame
from dreammotion.synthetic import caption, render, sample_spec
from dreammotion.upsample.resize import resize_frames
from dreammotion.upsample.v2v import V2VSettings, load_second_stage, video_to_video

SECOND_STAGE_MODEL = "data/models/dreammotion-shapes-t2v-64"


def clip_psnr(frames: np.ndarray, reference: np.ndarray) -> float:
    return float(np.mean(psnr_per_frame(frames, reference)))


def evaluate_second_stage(
    model_folder: str | Path,
    *,
    num_clips: int = 8,
    low_size: int = 32,
    high_size: int = 64,
    num_frames: int = 8,
    strength: float = 0.4,
    steps: int = 25,
    guidance_scale: float = 7.5,
    seed: int = 0,
    device: str = "auto",
) -> dict:
    """Mean PSNR to the ground-truth `high_size` render of v2v(resize(low clip)) and of resize(low clip).

    Clips are drawn by ``sample_spec`` (all colour/shape pairs) from ``numpy.random.default_rng(seed)``."""
    stage = load_second_stage({"pretrained": str(model_folder), "device": device})
    rng = np.random.default_rng(seed)
    clips = []
    for index in range(num_clips):
        spec = sample_spec(rng, num_frames, held_out="any")
        low, _ = render(spec, low_size, num_frames)
        truth, _ = render(spec, high_size, num_frames)
        resized = resize_frames(low, high_size, high_size)
        settings = V2VSettings(caption(spec), strength, steps, guidance_scale, seed=seed + index)
        refined = video_to_video(stage, resized, settings)
        clips.append({"caption": caption(spec), "psnr_resize": clip_psnr(resized, truth), "psnr_v2v": clip_psnr(refined, truth)})
    return {
        "model": str(model_folder),
        "settings": {"num_clips": num_clips, "low_size": low_size, "high_size": high_size, "num_frames": num_frames,
                     "strength": strength, "steps": steps, "guidance_scale": guidance_scale, "seed": seed},
        "mean_psnr_resize": float(np.mean([c["psnr_resize"] for c in clips])),
        "mean_psnr_v2v": float(np.mean([c["psnr_v2v"] for c in clips])),
        "clips": clips,
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m dreammotion.upsample.evaluate [MODEL] [--num-clips N]``: print the comparison as JSON."""
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m dreammotion.upsample.evaluate", description=main.__doc__)
    parser.add_argument("model", nargs="?", default=SECOND_STAGE_MODEL)
    parser.add_argument("--num-clips", type=int, default=8)
    parser.add_argument("--strength", type=float, default=0.4)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--guidance-scale", type=float, default=7.5)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    result = evaluate_second_stage(args.model, num_clips=args.num_clips, strength=args.strength, steps=args.steps,
                                   guidance_scale=args.guidance_scale, device=args.device)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
