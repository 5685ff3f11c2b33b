"""The one DDIM loop with classifier-free guidance: text-to-video sampling (gates, sample grids),
SDEdit, and video-to-video refinement all run it.

A short loop of our own over the UNet and the scheduler rather than diffusers' TextToVideoSDPipeline /
VideoToVideoSDPipeline (deprecated after diffusers 0.33), so that it also serves UNets that take a
conditioning clip concatenated to their input (the conditioned second stage, ``dreammotion.upsample``).
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm


def ddim_scheduler(model, steps: int):
    """A fresh DDIMScheduler from the model's training schedule, set to `steps` steps."""
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler.from_config(model.scheduler.config)
    scheduler.set_timesteps(steps)
    return scheduler


@torch.no_grad()
def guided_ddim(
    model,
    x: torch.Tensor,
    timesteps: torch.Tensor,
    scheduler,
    prompt_embeddings: torch.Tensor,
    null_embeddings: torch.Tensor,
    *,
    guidance_scale: float,
    condition: torch.Tensor | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Denoise latents `x` (B, C, F, h, w), noised to ``timesteps[0]``, along `timesteps` (eta 0).

    `prompt_embeddings` and `null_embeddings` are (B, tokens, width) text states. `condition`
    (B, C', F, h, w), when given, is concatenated to the UNet's input in both guidance branches
    (guidance acts on the text only). The latents stay float32 between steps; the UNet runs in
    the model's dtype. Returns float32 latents on the model's device."""
    device, dtype = model.device, model.dtype
    x = x.to(device, torch.float32)
    text = torch.cat([null_embeddings, prompt_embeddings]).to(device, dtype)
    if condition is not None:
        condition = torch.cat([condition, condition]).to(device, dtype)
    for t in tqdm(timesteps, desc="denoise", disable=not progress):
        inputs = torch.cat([x, x]).to(dtype)
        if condition is not None:
            inputs = torch.cat([inputs, condition], dim=1)
        # The model's own prediction (noise or v, per its scheduler config): guidance is linear in
        # either, and scheduler.step converts.
        uncond, cond = model.unet(inputs, t.to(device), encoder_hidden_states=text).sample.float().chunk(2)
        x = scheduler.step(uncond + guidance_scale * (cond - uncond), t, x, eta=0.0).prev_sample
    return x
