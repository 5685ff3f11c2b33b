"""The one DDIM loop with classifier-free guidance: text-to-video sampling (gates, sample grids),
SDEdit, and video-to-video refinement all run it (the last two from a partly noised video: ``denoise_from``).

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
    condition: torch.Tensor | None = None,
) -> torch.Tensor:
    """Noise `latents` (1, C, F, h, w) to `strength` of the schedule, then DDIM-denoise with the prompt.

    strength 0 returns the latents unchanged; strength 1 starts from pure noise (text-to-video).
    `steps` counts DDIM steps over the whole schedule, so about strength * steps of them run.
    `condition` (1, C', F, h, w) goes to a UNet that takes a conditioning clip beside its input.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    scheduler = ddim_scheduler(model, steps)
    timesteps = scheduler.timesteps[len(scheduler.timesteps) - int(round(strength * steps)):]
    x = latents.to(model.device, torch.float32)
    if len(timesteps) == 0:
        return x.cpu()
    start = float(model.alphas_cumprod[int(timesteps[0])])
    if strength == 1.0 and start > 0.01:
        # "from pure noise" that is not: with timestep_spacing "leading", 1 step runs at t = 0 and
        # 4 steps start at t = 750, so the model is told the input is nearly the (zero) start
        print(f"[dreammotion] warning: strength 1 with {steps} steps starts at t = {int(timesteps[0])} "
              f"(alpha_bar {start:.3f}), not at pure noise; set the scheduler's timestep_spacing to 'trailing'")
    gen = torch.Generator("cpu").manual_seed(seed)
    noise = torch.randn(x.shape, generator=gen).to(model.device)
    x = scheduler.add_noise(x, noise, timesteps[:1].to(model.device))
    x = guided_ddim(model, x, timesteps, scheduler, prompt_embedding[None], null_embedding[None],
                    guidance_scale=guidance_scale, condition=condition, progress=progress)
    return x.cpu()
