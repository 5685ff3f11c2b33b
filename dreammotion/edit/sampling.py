"""DDIM denoising from a partly noised video: the SDEdit baseline and the video-to-video upsampler.

A short loop of our own over the UNet, VAE latents and scheduler, rather than diffusers'
TextToVideoSDPipeline / VideoToVideoSDPipeline, which are deprecated after diffusers 0.33.
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm


@torch.no_grad()
def denoise_from(
    model,
    latents: torch.Tensor,
    prompt_embedding: torch.Tensor,
    null_embedding: torch.Tensor,
    *,
    strength: float,
    steps: int = 25,
    guidance_scale: float = 7.5,
    seed: int = 0,
    progress: bool = False,
) -> torch.Tensor:
    """Noise `latents` (1, C, F, h, w) to `strength` of the schedule, then DDIM-denoise with the prompt.

    strength 0 returns the latents unchanged; strength 1 starts from pure noise (text-to-video).
    `steps` counts DDIM steps over the whole schedule, so about strength * steps of them run.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler.from_config(model.scheduler.config)
    scheduler.set_timesteps(steps)
    timesteps = scheduler.timesteps[len(scheduler.timesteps) - int(round(strength * steps)):]
    x = latents.to(model.device, torch.float32)
    if len(timesteps) == 0:
        return x.cpu()
    gen = torch.Generator("cpu").manual_seed(seed)
    noise = torch.randn(x.shape, generator=gen).to(model.device)
    x = scheduler.add_noise(x, noise, timesteps[:1].to(model.device))
    embeddings = torch.stack([prompt_embedding, null_embedding]).to(model.device, model.dtype)
    for t in tqdm(timesteps, desc="denoise", disable=not progress):
        # The model's own prediction (noise or v, per its scheduler config): guidance is linear in
        # either, and scheduler.step converts.
        pred = model.unet(torch.cat([x, x]).to(model.dtype), t.to(model.device), encoder_hidden_states=embeddings).sample.float()
        pred = pred[1:] + guidance_scale * (pred[:1] - pred[1:])
        x = scheduler.step(pred, t, x, eta=0.0).prev_sample
    return x.cpu()
