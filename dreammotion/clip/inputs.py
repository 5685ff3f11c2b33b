"""What the image tower sees: single frames, and one "motion image" per clip.

Why a motion image. The metric code scores single RGB frames (``clip_text_alignment`` is the mean
over frames of frame-caption cosines, ``clip_frame_consistency`` compares consecutive frames), so
the image tower must take one 3-channel image; a frame stack as channels would break both. A single
frame cannot show direction, though. So the same tower also reads a second kind of image, built
from the clip: channel k is the *saliency* of frame ``MOTION_FRAMES[k]`` (first, middle, last),
i.e. each pixel's largest per-channel distance to that frame's median colour (the background
covers most of every frame). Where the object was at the start, middle and end shows as red,
green and blue blobs, so the direction is the red-to-blue axis, in a 3-channel image that goes
through the same image processor as a frame. The clip embedding (``evaluate.video_embedding``)
adds the motion image's embedding to the mean frame embedding; the metric code never sees it and
needs no change.

Training images are degraded like edited videos are (``augment``): a per-clip Gaussian blur, a
global colour shift and pixel noise, then rounded to uint8 values, because the model scores edits
and decoder outputs, not clean renders.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

from dreammotion.synthetic.captions import caption
from dreammotion.synthetic.render import ClipSpec

# Strength ranges of the training degradations (pixel units of 255; blur sigma in 32x32 pixels).
# They cover the evaluation's degradations (dreammotion.prior.classify.DEGRADATIONS: noise 5/10,
# blur 0.6, colour shift 15, and all three at once).
AUGMENT = {"p_blur": 0.5, "max_blur": 0.9, "p_shift": 0.5, "max_shift": 18.0, "p_noise": 0.7, "max_noise": 12.0}


def motion_frame_indices(frames: int) -> tuple[int, int, int]:
    """First, middle and last frame: the motion image's three channels."""
    if frames < 2:
        raise ValueError(f"a motion image needs at least 2 frames, got {frames}")
    return 0, frames // 2, frames - 1


def motion_image(clip: np.ndarray) -> np.ndarray:
    """(F, H, W, 3) uint8 clip -> (H, W, 3) uint8 motion image (see the module docstring)."""
    pixels = clip[list(motion_frame_indices(len(clip)))].astype(np.float64)  # (3, H, W, 3)
    flat = pixels.reshape(3, -1, 3)
    k = (flat.shape[1] - 1) // 2  # the lower median, as torch.median / kthvalue
    median = np.partition(flat, k, axis=1)[:, k]  # (3, 3): per chosen frame, per channel
    saliency = np.abs(pixels - median[:, None, None, :]).max(axis=-1)  # (3, H, W)
    return np.clip(np.round(saliency), 0, 255).astype(np.uint8).transpose(1, 2, 0)


def motion_images_torch(frames: torch.Tensor) -> torch.Tensor:
    """(B, F, H, W, 3) float in [0, 255] (uint8 values) -> (B, H, W, 3) float; equals ``motion_image``."""
    b, f, h, w, _ = frames.shape
    pixels = frames[:, list(motion_frame_indices(f))]  # (B, 3, H, W, 3)
    flat = pixels.reshape(b, 3, h * w, 3)
    median = flat.kthvalue((h * w - 1) // 2 + 1, dim=2).values  # (B, 3, 3)
    saliency = (pixels - median[:, :, None, None, :]).abs().amax(dim=-1)  # (B, 3, H, W)
    return torch.round(saliency).clamp(0, 255).permute(0, 2, 3, 1)


def to_pixel_values(images: torch.Tensor) -> torch.Tensor:
    """(N, H, W, 3) [0, 255] -> (N, 3, H, W) in [-1, 1]: the image processor's rescale and
    normalise (mean 0.5, std 0.5) for 32x32 inputs, where its resize and crop change nothing."""
    return images.permute(0, 3, 1, 2) / 127.5 - 1.0


def _gaussian_kernels(sigma: torch.Tensor, radius: int = 2) -> torch.Tensor:
    """(B,) sigmas -> (B, 2*radius+1) normalised 1-D kernels (sigma 0 gives the identity)."""
    offsets = torch.arange(-radius, radius + 1, device=sigma.device, dtype=torch.float32)
    safe = sigma.clamp(min=1e-3)[:, None]
    kernels = torch.exp(-0.5 * (offsets[None] / safe) ** 2)
    return kernels / kernels.sum(dim=1, keepdim=True)


def blur(frames: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur of each clip with its own sigma: (B, F, H, W, 3), (B,) -> same shape.
    Borders are replicated (no dark rim that a render never has)."""
    b, f, h, w, c = frames.shape
    kernels = _gaussian_kernels(sigma)  # (B, K)
    radius = kernels.shape[1] // 2
    x = frames.permute(0, 1, 4, 2, 3).reshape(1, b * f * c, h, w)
    per_image = kernels.repeat_interleave(f * c, dim=0)  # (B*F*C, K)
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, per_image[:, None, None, :], groups=b * f * c)
    x = F.conv2d(x, per_image[:, None, :, None], groups=b * f * c)
    return x.reshape(b, f, c, h, w).permute(0, 1, 3, 4, 2)


def augment(frames: torch.Tensor, generator: torch.Generator | None = None, settings: dict = AUGMENT) -> torch.Tensor:
    """Randomly degraded copies of clips (B, F, H, W, 3) in [0, 255]: per clip, with its own
    probability each, a blur, a global colour shift and pixel noise (as classify.degrade, in that
    order), rounded and clipped to uint8 values. The same degradation holds for all frames of a clip."""
    b = frames.shape[0]
    device = frames.device

    def uniform(high: float, p: float) -> torch.Tensor:
        on = torch.rand(b, device=device, generator=generator) < p
        return torch.rand(b, device=device, generator=generator) * high * on

    out = blur(frames, uniform(settings["max_blur"], settings["p_blur"]))
    shift = (torch.rand(b, 3, device=device, generator=generator) * 2 - 1) * settings["max_shift"]
    shift = shift * (torch.rand(b, 1, device=device, generator=generator) < settings["p_shift"])
    out = out + shift[:, None, None, None, :]
    noise_std = uniform(settings["max_noise"], settings["p_noise"])
    out = out + torch.randn(out.shape, device=device, generator=generator) * noise_std[:, None, None, None, None]
    return torch.round(out).clamp(0, 255)


def caption_with(spec: ClipSpec, **changes) -> str:
    """The caption of `spec` with some attributes changed, without validating the combination
    (a zero-shot alternative such as "white ... on a white background" need not be renderable)."""
    fields = {name: getattr(spec, name) for name in spec.__dataclass_fields__}
    return caption(SimpleNamespace(**{**fields, **changes}))


def appearance_key(spec: ClipSpec) -> str:
    """The caption without its direction: what a single frame can show. Frames of clips that share
    it are positives of each other's captions in the frame loss (train.contrastive_loss)."""
    return caption_with(spec, direction="_")

