"""The SDEdit baseline (Meng et al., ICLR 2022): noise the source latents part of the way, then denoise
them with the target prompt. A method beside DreamMotion, with the same inputs and outputs as an edit:
no optimisation (log.csv has no rows), no mask, no checkpoint.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from dreammotion.edit.config import EditConfig, SDEditSettings
from dreammotion.edit.optimizer import EditResult, peak_memory
from dreammotion.models.ddim import denoise_from


def sdedit_edit(
    model,
    source_latents: torch.Tensor,
    source_prompt: str,
    target_prompt: str,
    masks: torch.Tensor | None,
    config: EditConfig,
    *,
    settings: SDEditSettings | None = None,
    checkpoint_path: str | Path | None = None,
    text_embeddings: dict[str, torch.Tensor] | None = None,
    progress: bool = True,
    progress_every: int = 0,
) -> EditResult:
    """The SDEdit edit of `source_latents` (1, C, F, h, w); the signature is DreamMotion's (``dreammotion_edit``).

    masks and checkpoint_path are accepted and unused (SDEdit edits the whole clip in one short run).
    """
    del source_prompt, masks, checkpoint_path  # the same inputs as every method; SDEdit needs none of these
    settings = settings or SDEditSettings()
    started = time.perf_counter()
    if model.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(model.device)

    def embed(prompt: str) -> torch.Tensor:
        if text_embeddings is not None and prompt in text_embeddings:
            return text_embeddings[prompt]
        return model.encode_prompt([prompt])[0]

    latents = denoise_from(
        model, source_latents, embed(target_prompt), embed(""),
        strength=settings.strength, steps=settings.steps,
        guidance_scale=config.guidance_scale, seed=config.seed,
        progress=progress and not progress_every,
    )
    peak, kind = peak_memory(model.device)
    return EditResult(latents, [], time.perf_counter() - started, peak, kind)
