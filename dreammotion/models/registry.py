"""A small registry of model backends, each with a typed config (threestudio style).

A new model is a config change: ``model: {backend: diffusers-t2v, pretrained: cerspense/zeroscope_v2_576w}``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable

import torch

from dreammotion.models.loading import Autoencoder, T2VModel, load_autoencoder, load_t2v
from dreammotion.utils.devices import resolve_device

EMBEDDED_PRIOR = "data/models/dreammotion-shapes-t2v"


@dataclass
class BackendConfig:
    backend: str = "diffusers-t2v"
    pretrained: str = EMBEDDED_PRIOR
    device: str = "auto"  # "auto": cuda if available, else cpu
    dtype: str = "auto"  # "auto": float16 on cuda, float32 on cpu
    revision: str | None = None
    variant: str | None = None

    @classmethod
    def from_dict(cls, d: dict | None) -> "BackendConfig":
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown model setting(s) {unknown}; known: {sorted(known)}")
        return cls(**d)

    def resolve_device(self) -> torch.device:
        return torch.device(resolve_device(self.device))

    def resolve_dtype(self) -> torch.dtype:
        if self.dtype == "auto":
            return torch.float16 if self.resolve_device().type == "cuda" else torch.float32
        try:
            return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[self.dtype]
        except KeyError:
            raise ValueError(f"model dtype {self.dtype!r}: use auto, float32, float16 or bfloat16") from None


Loader = Callable[[BackendConfig], T2VModel]
BACKENDS: dict[str, Loader] = {}


def register_backend(name: str) -> Callable[[Loader], Loader]:
    def wrap(fn: Loader) -> Loader:
        if name in BACKENDS:
            raise ValueError(f"backend {name!r} is registered twice")
        BACKENDS[name] = fn
        return fn

    return wrap


def get_backend(name: str) -> Loader:
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown model backend {name!r}; registered: {sorted(BACKENDS)}") from None


@register_backend("diffusers-t2v")
def _load_diffusers_t2v(cfg: BackendConfig) -> T2VModel:
    """Non-cascaded UNet3D text-to-video models: ZeroScope v2, ModelScope, the embedded prior."""
    return load_t2v(
        cfg.pretrained,
        device=cfg.resolve_device(),
        dtype=cfg.resolve_dtype(),
        revision=cfg.revision,
        variant=cfg.variant,
    )


def load_model(cfg: BackendConfig | dict | None) -> T2VModel:
    cfg = cfg if isinstance(cfg, BackendConfig) else BackendConfig.from_dict(cfg)
    return get_backend(cfg.backend)(cfg)


# How each backend loads its autoencoder alone (the encode and decode jobs need nothing else).
AUTOENCODER_LOADERS: dict[str, Callable[[BackendConfig], Autoencoder]] = {
    "diffusers-t2v": lambda cfg: load_autoencoder(
        cfg.pretrained, device=cfg.resolve_device(), dtype=cfg.resolve_dtype(), revision=cfg.revision, variant=cfg.variant
    ),
}


def load_model_autoencoder(cfg: BackendConfig | dict | None) -> Autoencoder:
    """The autoencoder of the model `cfg` names, without its UNet and text encoder; a backend without
    its own autoencoder loader loads the whole model and keeps the autoencoder."""
    cfg = cfg if isinstance(cfg, BackendConfig) else BackendConfig.from_dict(cfg)
    get_backend(cfg.backend)  # an unknown backend: the same error as load_model's
    loader = AUTOENCODER_LOADERS.get(cfg.backend)
    return loader(cfg) if loader else load_model(cfg).autoencoder
