"""Latent files: safetensors with the tensor under "latents" and provenance in the metadata."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from dreammotion.errors import InputError
from dreammotion.utils.atomic import atomic_path


def save_latents(path: str | Path, latents: torch.Tensor, **metadata) -> None:
    with atomic_path(path) as tmp:
        save_file({"latents": latents.detach().float().cpu().contiguous()}, tmp,
                  metadata={k: json.dumps(v) for k, v in metadata.items()})


def load_latents(path: str | Path) -> tuple[torch.Tensor, dict]:
    path = Path(path)
    if not path.exists():
        raise InputError(f"latent file {path} does not exist")
    with safe_open(str(path), framework="pt") as f:
        meta = {k: json.loads(v) for k, v in (f.metadata() or {}).items()}
        return f.get_tensor("latents"), meta
