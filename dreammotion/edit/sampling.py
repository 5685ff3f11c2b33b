"""DDIM denoising from a partly noised video: the SDEdit baseline and the video-to-video upsampler.

The loop itself is ``dreammotion.models.ddim.guided_ddim``, shared with text-to-video sampling.
"""

from __future__ import annotations

import torch

from dreammotion.models.ddim import ddim_scheduler, guided_ddim


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
