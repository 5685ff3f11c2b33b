"""Text embeddings cached per (model, prompt) on disk, so a manifest of many rows encodes each prompt once."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from dreammotion.utils.atomic import atomic_path


class PromptCache:
    def __init__(self, folder: str | Path, model):
        self.folder = Path(folder)
        self.model = model

    def path(self, prompt: str) -> Path:
        key = hashlib.sha256(f"{self.model.source}\0{prompt}".encode()).hexdigest()[:24]
        return self.folder / f"{key}.safetensors"

    def get(self, prompt: str) -> torch.Tensor:
        path = self.path(prompt)
        if path.exists():
            return load_file(path)["embedding"]
        embedding = self.model.encode_prompt([prompt])[0].float().cpu().contiguous()
        with atomic_path(path) as tmp:
            save_file({"embedding": embedding}, tmp, metadata={"prompt": prompt, "model": self.model.source})
        return embedding

    def embeddings(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        return {p: self.get(p) for p in dict.fromkeys(prompts)}
