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
inference it is an *edited* clip, with the first stage's sampling noise, not a clean render.

Edits are not renders: the demo's edits are, to their 32x32 truth, about the truth blurred by a
Gaussian of 0.5-0.7 px plus errors along edges and colour offsets of a grey level or two (measured,
bench/upsample/NOTES.md). ``--condition-blur`` and ``--condition-colour-shift`` degrade the 32x32 clip
that way before it is resized (per clip, uniform up to the maximum), and the residual is then taken
against the *degraded* clip's resize, so the model learns to undo them. Off by default: run E
(blur 1, shift 4) repaired degraded clips better than the shipped run C (+1.40 dB over Lanczos
against +0.85) but lost most of C's gain on clean and textured clips (bench/upsample/NOTES.md). Everything
else (v-prediction, schedule, text encoder, EMA, wall-clock budget, ``--init-from``, ``--archive``)
is the embedded prior's loop, ``dreammotion.prior.train``.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
import torch.nn.functional as F

from dreammotion.prior import train
from dreammotion.synthetic.captions import caption
from dreammotion.synthetic.render import render_batch_torch, sample_spec, specs_to_tensors
from dreammotion.upsample.refiner import REFINER_FILE, lanczos_upsample_torch

LOW_SIZE = 32


class RefinerTrainer(train.PriorTrainer):
    conditioned = True

    def batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(target latents, token ids, condition latents) of freshly rendered clips."""
        args = self.args
        high, low, captions = render_refiner_batch(self.rng, args.batch, args.size, self.device, args.caption_dropout,
                                                   args.condition_shift, args.condition_size_jitter, self.render)
        low = degrade_like_edits(low, args.condition_blur, args.condition_colour_shift)
        factor, scale = self.autoencoder.config.factor, self.autoencoder.config.scaling_factor
        resized = lanczos_upsample_torch(low, args.size, args.size) / 127.5 - 1.0  # (B, 3, F, H, W)
        sigma = torch.rand(resized.shape[0], 1, 1, 1, 1, device=self.device) * args.condition_noise
        condition = train.pack_latents(resized + sigma * torch.randn_like(resized), factor) * scale
        target = train.pack_latents(high / 127.5 - 1.0, factor) * scale
        if args.residual_scale > 0:
            # The residual is taken against the resize before its noise augmentation: against the noisy condition
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
            "condition_blur_max": self.args.condition_blur,
            "condition_colour_shift_max": self.args.condition_colour_shift,
            "condition_shift_max_px": self.args.condition_shift,
            "condition_size_jitter_max": self.args.condition_size_jitter,
            "residual_scale": self.args.residual_scale,
            "target": ("(clip - condition) * residual_scale, in latents" if self.args.residual_scale > 0
                       else "the clip's latents"),
            # One DDIM step from pure noise is the model's estimate of the residual's conditional mean
            # (the PSNR-optimal output); more steps sample detail that is not the truth's.
            "recommended": {"strength": 1.0, "steps": 1, "guidance_scale": 1.0},
            "recommended_why": "bench/upsample/NOTES.md: 1 step beats 4 and 25 in PSNR and SSIM to the truth",
            # The last run's timesteps: a refiner fine-tuned at t = 999 alone is made for that one step.
            "trained_timesteps": list(self.timesteps) if self.timesteps else "all",
        }}


def degrade_like_edits(clips: torch.Tensor, blur_max: float, colour_shift_max: float,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, 3, F, H, W) grey levels in [0, 255] -> the same clips blurred by a Gaussian of standard
    deviation uniform in [0, `blur_max`] pixels and offset by a colour uniform in
    [-`colour_shift_max`, `colour_shift_max`] grey levels per channel (each drawn per clip), rounded
    and clipped to 8 bits as an edit's frames are. Zero maxima return `clips` unchanged."""
    if blur_max <= 0 and colour_shift_max <= 0:
        return clips
    batch = clips.shape[0]
    out = clips.float()
    if blur_max > 0:
        sigma = torch.rand(batch, device=clips.device, generator=generator) * blur_max
        radius = max(1, math.ceil(3 * blur_max))
        offsets = torch.arange(-radius, radius + 1, device=clips.device, dtype=torch.float32)
        # sigma -> 0 gives the identity kernel (the clamp only avoids 0/0)
        kernel = torch.exp(-0.5 * (offsets / sigma.clamp_min(1e-3)[:, None]) ** 2)
        kernel = kernel / kernel.sum(dim=1, keepdim=True)  # (B, taps)
        out = _blur_rows(out, kernel, radius)  # along W
        out = _blur_rows(out.transpose(-1, -2), kernel, radius).transpose(-1, -2)  # along H
    if colour_shift_max > 0:
        shift = (torch.rand(batch, 3, 1, 1, 1, device=clips.device, generator=generator) * 2 - 1) * colour_shift_max
        out = out + shift
    return out.round().clamp(0, 255)


def _blur_rows(clips: torch.Tensor, kernel: torch.Tensor, radius: int) -> torch.Tensor:
    """Convolve the last axis of (B, ...) with the per-clip kernels (B, taps), edges replicated
    (the border pixel continues outward: scipy.ndimage's mode "nearest")."""
    batch, width = clips.shape[0], clips.shape[-1]
    padded = F.pad(clips.reshape(batch, -1, width), (radius, radius), mode="replicate")  # (B, rows, W + 2r)
    windows = padded.unfold(-1, kernel.shape[1], 1)  # (B, rows, W, taps)
    return (windows * kernel[:, None, None, :]).sum(-1).reshape(clips.shape)


def render_refiner_batch(rng: np.random.Generator, batch: int, size: int, device, drop_prob: float,
                         shift_max: float = 0.0, size_jitter_max: float = 0.0, render=render_batch_torch):
    """(high (B, 3, F, size, size), low (B, 3, F, 32, 32)) grey levels in [0, 255] rounded to 8 bits,
    of the same clips, and their captions ("" for the dropped ones).

    `shift_max` > 0 (32x32 pixels) or `size_jitter_max` > 0 (a fraction) render the low clip's object
    off the truth's geometry, as an edit draws it: per frame moved by up to `shift_max` px along each
    axis, per clip scaled by a factor in [1 - `size_jitter_max`, 1 + `size_jitter_max`] (the largest
    displacement drawn per clip, then uniform per frame). The 64x64 target keeps the true geometry, so
    where the condition's edge is wrong the loss asks for the truth's edge, and where that cannot be
    known from the condition, for their mean: a blurred edge, not a sharp wrong one (bench/upsample/NOTES.md).
    `render` is ``render_batch_torch`` or a compiled copy of it (``PriorTrainer.render``)."""
    specs = [sample_spec(rng, train.FRAMES, held_out="exclude") for _ in range(batch)]
    captions = [caption(s) if rng.random() >= drop_prob else "" for s in specs]
    params = specs_to_tensors(specs, device=device)
    low_params = params
    if shift_max > 0 or size_jitter_max > 0:  # drawn only then: unjittered batches are the same clips as before
        reach = rng.uniform(0, shift_max, size=(batch, 1)) / LOW_SIZE  # normalised units
        offsets = rng.uniform(-1, 1, size=(2, batch, train.FRAMES)) * reach
        scale = 1 + rng.uniform(-size_jitter_max, size_jitter_max, size=batch)
        dtype = params["x0"].dtype
        low_params = {**params, "x_offset": torch.tensor(offsets[0], dtype=dtype).to(device),
                      "y_offset": torch.tensor(offsets[1], dtype=dtype).to(device),
                      "size": params["size"] * torch.tensor(scale, dtype=dtype).to(device)}
    clips = []
    for side, clip_params in ((size, params), (LOW_SIZE, low_params)):
        frames, _ = render(clip_params, size=side, frames=train.FRAMES)  # (B, F, H, W, 3)
        clips.append(frames.permute(0, 4, 1, 2, 3).round())
    return clips[0], clips[1], captions


def add_refiner_arguments(parser: argparse.ArgumentParser) -> None:
    """The refiner's own options (the rest are ``dreammotion.prior.train``'s)."""
    parser.add_argument("--condition-noise", type=float, default=0.08,
                        help="largest std of the noise added to the condition (pixels in [-1, 1])")
    parser.add_argument("--condition-blur", type=float, default=0.0,
                        help="largest std (32x32 pixels) of the Gaussian blur of the low-resolution clip (0: none)")
    parser.add_argument("--condition-colour-shift", type=float, default=0.0,
                        help="largest per-channel colour offset (grey levels) of the low-resolution clip (0: none)")
    parser.add_argument("--condition-shift", type=float, default=0.0,
                        help="largest per-frame displacement (32x32 pixels) of the object in the low-resolution "
                             "clip, off the target's geometry (0: none)")
    parser.add_argument("--condition-size-jitter", type=float, default=0.0,
                        help="largest relative change of the object's size in the low-resolution clip (0: none)")
    parser.add_argument("--residual-scale", type=float, default=5.0,
                        help="generate (clip - condition) * this (0: generate the clip itself)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dreammotion.prior.train_refiner",
                                     description=__doc__.splitlines()[0])
    train.add_arguments(parser)
    add_refiner_arguments(parser)
    parser.set_defaults(size=64)
    args = parser.parse_args(argv)
    if args.size <= LOW_SIZE:
        raise SystemExit(f"--size must be larger than the first stage's {LOW_SIZE}, got {args.size}")
    return train.run(args, RefinerTrainer)


if __name__ == "__main__":
    raise SystemExit(main())
