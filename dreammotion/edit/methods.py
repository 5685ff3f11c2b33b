"""The edit methods as peers, and the one edit driver every caller uses.

``edit_latents`` runs one method on latents (the workflow's edit job, whose encode and decode are jobs
of their own); ``edit_clip`` is encode -> method -> decode on frames (the synthetic evaluation, the
quality sweep). Both take the same arguments whatever the method, so a new method is one entry in
``EDIT_METHODS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from dreammotion.edit.config import EditConfig
from dreammotion.edit.optimizer import EditResult, dreammotion_edit
from dreammotion.edit.sdedit import SDEditSettings, sdedit_edit
from dreammotion.records import DEFAULT_METHOD


@dataclass(frozen=True)
class EditMethod:
    """One edit method: how it runs, and how its own settings (beyond EditConfig) are read."""

    name: str
    run: Callable[..., EditResult]  # (model, latents, source, target, masks, config, *, settings, ...)
    read_settings: Callable[[dict], object]  # method settings as given -> the method's settings object
    settings_dict: Callable[[object], dict]  # the settings object -> what edit.json records


EDIT_METHODS: dict[str, EditMethod] = {
    "dreammotion": EditMethod(
        "dreammotion",
        lambda *args, settings, **kwargs: dreammotion_edit(*args, **kwargs),
        lambda given: None,  # all of DreamMotion's settings are EditConfig fields
        lambda settings: {},
    ),
    "sdedit": EditMethod("sdedit", sdedit_edit, SDEditSettings.from_dict, SDEditSettings.to_dict),
}


def get_method(name: str) -> EditMethod:
    try:
        return EDIT_METHODS[name]
    except KeyError:
        raise ValueError(f"unknown edit method {name!r}; known: {', '.join(EDIT_METHODS)}") from None


@dataclass
class MethodRun:
    """What one method run gives: the optimiser's result and the method's settings as recorded."""

    result: EditResult
    method: str
    method_settings: dict


def edit_latents(
    model,
    source_latents: torch.Tensor,
    source_prompt: str,
    target_prompt: str,
    masks: torch.Tensor | None,
    config: EditConfig,
    *,
    method: str = DEFAULT_METHOD,
    method_settings: dict | None = None,
    checkpoint_path: str | Path | None = None,
    text_embeddings: dict[str, torch.Tensor] | None = None,
    progress: bool = True,
    progress_every: int = 0,
) -> MethodRun:
    """Edit `source_latents` (1, C, F, h, w) with `method`; masks (F, H, W) in [0, 1] or None."""
    chosen = get_method(method)
    settings = chosen.read_settings(method_settings or {})
    result = chosen.run(
        model, source_latents, source_prompt, target_prompt, masks, config,
        settings=settings, checkpoint_path=checkpoint_path, text_embeddings=text_embeddings,
        progress=progress, progress_every=progress_every,
    )
    return MethodRun(result, chosen.name, chosen.settings_dict(settings))


@dataclass
class ClipEdit:
    """An edited clip: its uint8 frames (F, H, W, 3) and the method run that made them."""

    frames: np.ndarray
    run: MethodRun

    @property
    def result(self) -> EditResult:
        return self.run.result


def edit_clip(
    model,
    frames: np.ndarray,
    source_prompt: str,
    target_prompt: str,
    masks: np.ndarray | torch.Tensor | None,
    config: EditConfig,
    **method_options,
) -> ClipEdit:
    """Encode `frames` (uint8 (F, H, W, 3)), edit them (``edit_latents``, same options), decode the edit."""
    from dreammotion.io.frames import to_tensor, to_uint8

    source_latents = model.encode_frames(to_tensor(frames))
    if masks is not None and not isinstance(masks, torch.Tensor):
        masks = torch.from_numpy(np.asarray(masks, dtype=np.float32))
    run = edit_latents(model, source_latents, source_prompt, target_prompt, masks, config, **method_options)
    return ClipEdit(to_uint8(model.decode_latents(run.result.latents)), run)
