"""Train the conditioned 64x64 second stage on synthetic clips rendered on the fly.

    python -m dreammotion.prior.train_refiner --out data/models/dreammotion-shapes-refiner-64 --minutes 8

Each training clip is rendered twice from one ``ClipSpec``: at 64x64 (the target) and at 32x32 (what
the first stage edits). The 32x32 clip, upsampled to 64x64 as the workflow does it (Lanczos,
``lanczos_upsample_torch``), is the condition: its latents are concatenated to the noisy 64x64
latents (``dreammotion.upsample.refiner``). What it learns to generate is the *residual*, the 64x64
clip minus the condition, times ``--residual-scale`` (SRDiff's parametrisation): Lanczos already
gets most pixels right (34-38 dB), so the model spends its capacity on edges and textures, and
where it predicts no residual the output is the resized clip exactly, not a re-drawn one. The scale
brings the residual (std ~0.046 of [-1, 1] on the renders) nearer the unit scale the noise schedule
is made for. The condition is noise-augmented (per clip, a Gaussian
of standard deviation uniform in [0, ``--condition-noise``], in [-1, 1] pixel units) because at
inference it is an *edited* clip, with the first stage's sampling noise, not a clean render. Everything
else (v-prediction, schedule, text encoder, EMA, wall-clock budget, ``--init-from``, ``--archive``)
is the embedded prior's loop, ``dreammotion.prior.train``.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from dreammotion.prior import train
from dreammotion.synthetic.captions import caption
from dreammotion.synthetic.render import render_batch_torch, sample_spec, specs_to_tensors
from dreammotion.upsample.refiner import REFINER_FILE, lanczos_upsample_torch

LOW_SIZE = 32


class RefinerTrainer(train.Trainer):
    conditioned = True

    def batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(target latents, token ids, condition latents) of freshly rendered clips."""
        args = self.args
        high, low, captions = render_refiner_batch(self.rng, args.batch, args.size, self.device, args.caption_dropout)
        factor, scale = self.autoencoder.config.factor, self.autoencoder.config.scaling_factor
        resized = lanczos_upsample_torch(low, args.size, args.size) / 127.5 - 1.0  # (B, 3, F, H, W)
        sigma = torch.rand(resized.shape[0], 1, 1, 1, 1, device=self.device) * args.condition_noise
        condition = train.pack_latents(resized + sigma * torch.randn_like(resized), factor) * scale
        target = train.pack_latents(high / 127.5 - 1.0, factor) * scale
        if args.residual_scale > 0:
            # The residual is taken against the *clean* resize: against the noise-augmented condition
            # it would hold -residual_scale x the augmentation noise (up to 0.4 here, more than the
            # residual itself), and the model would spend itself on removing noise that inference
            # never adds (first GPU run: v2v 28.4 dB vs resize 32.9, bench/upsample/NOTES.md).
            target = (target - train.pack_latents(resized, factor) * scale) * args.residual_scale
        return target, train.token_ids(self.tokenizer, captions, self.device), condition

    def extra_json(self) -> dict:
        return {REFINER_FILE: {
            "kind": "conditioned video-to-video refiner",
            "condition": "latents of the low-resolution clip upsampled by Lanczos (Pillow's), "
                         "concatenated to the noisy latents",
            "low_size": LOW_SIZE,
            "size": self.args.size,
            "condition_noise_max": self.args.condition_noise,
            "residual_scale": self.args.residual_scale,
            "target": ("(clip - condition) * residual_scale, in latents" if self.args.residual_scale > 0
                       else "the clip's latents"),
            "recommended": {"strength": 1.0, "steps": 25, "guidance_scale": 1.0},
        }}


def render_refiner_batch(rng: np.random.Generator, batch: int, size: int, device, drop_prob: float):
    """(high (B, 3, F, size, size), low (B, 3, F, 32, 32)) grey levels in [0, 255] rounded to 8 bits,
    of the same clips, and their captions ("" for the dropped ones)."""
    specs = [sample_spec(rng, train.FRAMES, held_out="exclude") for _ in range(batch)]
    captions = [caption(s) if rng.random() >= drop_prob else "" for s in specs]
    params = specs_to_tensors(specs, device=device)
    clips = []
    for side in (size, LOW_SIZE):
        frames, _ = render_batch_torch(params, size=side, frames=train.FRAMES)  # (B, F, H, W, 3)
        clips.append(frames.permute(0, 4, 1, 2, 3).round())
    return clips[0], clips[1], captions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dreammotion.prior.train_refiner",
                                     description=__doc__.splitlines()[0])
    train.add_arguments(parser)
    parser.add_argument("--condition-noise", type=float, default=0.08,
                        help="largest std of the noise added to the condition (pixels in [-1, 1])")
    parser.add_argument("--residual-scale", type=float, default=5.0,
                        help="generate (clip - condition) * this (0: generate the clip itself)")
    parser.set_defaults(size=64)
    args = parser.parse_args(argv)
    if args.size <= LOW_SIZE:
        raise SystemExit(f"--size must be larger than the first stage's {LOW_SIZE}, got {args.size}")
    return train.run(args, RefinerTrainer)


if __name__ == "__main__":
    raise SystemExit(main())
