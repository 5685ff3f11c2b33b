"""Is the joint route's gap on background edits the windows or the noise draw? (issue 19; bench/long/README.md)

    python bench/long/noise_draw_probe.py --frames 8 12 16 24 32                    # the edit's own draw
    python bench/long/noise_draw_probe.py --frames 8 24 --noise per-frame           # one generator per frame

Background clip 0 of ``seams.py`` (its first N frames), edited by the joint route (8-frame windows
overlapping by 4; one window at N = 8) with the S-SSM/T-SSM terms off, 30 iterations, guidance 2.
Prints the PSNR to ground truth of frames 0-3, which only the first window touches: if windowing
cost them quality, N = 8 would differ from N > 8 under the same noise. ``--noise per-frame`` draws
each frame's noise from its own generator (seeded by iteration and frame), so that frames 0-7 get
the same noise whatever N is.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import seams  # noqa: E402  (the clips and measures of seams.py, as bench/upsample/keyframes.py takes them)

CLIP_FRAMES = 32 + seams.SHIFT  # as seams.py renders its clip 0


def per_frame_draws(state):
    """``optimizer._draws`` with one generator per (iteration, frame): frame f's noise does not depend on N."""
    from dreammotion.edit import optimizer

    gen = optimizer._iteration_generator(state.job.config.seed, state.iteration)
    t = int(torch.randint(state.job.config.t_min, state.job.config.t_max + 1, (1,), generator=gen))
    _, channels, frames, h, w = state.x.shape
    noise = torch.stack([torch.randn((1, channels, h, w), generator=torch.Generator().manual_seed(10_000 * state.iteration + f))
                         for f in range(frames)], dim=2)
    return t, noise, gen


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="data/models/dreammotion-shapes-t2v")
    parser.add_argument("--frames", nargs="+", type=int, default=[8, 12, 16, 24, 32])
    parser.add_argument("--noise", choices=("standard", "per-frame"), default="standard")
    parser.add_argument("--iterations", type=int, default=30)
    args = parser.parse_args(argv)
    if max(args.frames) > CLIP_FRAMES:
        parser.error(f"--frames at most {CLIP_FRAMES}")

    from dreammotion.edit import EditConfig, dreammotion_edit, optimizer
    from dreammotion.models import load_t2v
    from dreammotion.synthetic import caption, render

    if args.noise == "per-frame":
        optimizer._draws = per_frame_draws  # a probe, not an option of the library
    model = load_t2v(args.model, device="cpu")
    source, target = seams.draw_clip(0, 0, 32, "background")
    frames, masks = render(source, frames=CLIP_FRAMES)
    truth, _ = render(target, frames=CLIP_FRAMES)
    for n in args.frames:
        latents = model.encode_frames(torch.tensor(frames[:n]).permute(0, 3, 1, 2).float() / 127.5 - 1)
        mask = torch.tensor(~masks[:n], dtype=torch.float32)  # a background edit's region: all but the object
        # clip noise, the library default when this probe's numbers were taken (bench/long/README.md)
        config = EditConfig(window=8 if n > 8 else 0, window_overlap=4, window_noise="clip", seed=0,
                            iterations=args.iterations, guidance_scale=2.0, lambda_s=0.0, lambda_t=0.0)
        edited = dreammotion_edit(model, latents, caption(source), caption(target), mask, config, progress=False).latents
        psnr = seams.per_frame(seams.decode(model, edited), truth[:n])["psnr"]
        print(json.dumps({"frames": n, "noise": args.noise, "psnr_frames_0_3": round(float(np.mean(psnr[:4])), 2),
                          "psnr_all": round(float(np.mean(psnr)), 2)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
