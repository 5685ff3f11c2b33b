"""One function loads a text-to-video diffusion model from a hub id or a local folder.

The folder layout is diffusers' ``TextToVideoSDPipeline`` layout (ZeroScope, ModelScope, and our
embedded prior): ``unet/``, ``vae/``, ``text_encoder/``, ``tokenizer/``, ``scheduler/``. We load the
components ourselves instead of through the (deprecated) pipeline class, so that the autoencoder may
be any class with AutoencoderKL's interface and so that errors name the component that is missing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from dreammotion.model_files import COMPONENTS, ModelLoadError, cached_snapshot, check_local_folder, hub_offline
from dreammotion.model_files import looks_like_path as _looks_like_path

__all__ = ["COMPONENTS", "Autoencoder", "ModelLoadError", "T2VModel", "load_autoencoder", "load_t2v"]


def _vae_classes():
    from diffusers import AutoencoderKL

    from dreammotion.models.autoencoder import PixelShuffleAutoencoder

    return {"AutoencoderKL": AutoencoderKL, "PixelShuffleAutoencoder": PixelShuffleAutoencoder}


def move_module(
    module: torch.nn.Module, device: torch.device | str, dtype: torch.dtype | None = None
) -> torch.nn.Module:
    """``module.to(device, dtype)`` without diffusers' spurious float32 warning.

    diffusers' ``ModelMixin.to`` warns "There are modules ... that should be kept in float32: []"
    on every dtype cast, even when the model keeps no module in float32 (the list is empty). For
    such models the cast is exactly ``torch.nn.Module.to``; a model that does keep modules in
    float32 goes through its own ``to`` (and its warning, which then means something).
    """
    if dtype is None:
        return module.to(device)
    if getattr(module, "_keep_in_fp32_modules", None):
        return module.to(device=device, dtype=dtype)
    return torch.nn.Module.to(module, device=device, dtype=dtype)


@dataclass
class Autoencoder:
    """The autoencoder of a text-to-video model alone: pixels <-> latents, for the encode and decode jobs,
    which need neither the UNet nor the text encoder."""

    vae: torch.nn.Module
    source: str

    @property
    def device(self) -> torch.device:
        return self.vae.device

    @property
    def dtype(self) -> torch.dtype:
        return self.vae.dtype

    @property
    def scaling_factor(self) -> float:
        return float(getattr(self.vae.config, "scaling_factor", 1.0))

    @torch.no_grad()
    def encode_frames(self, frames: torch.Tensor, chunk: int = 8) -> torch.Tensor:
        """frames (F, 3, H, W) in [-1, 1] -> latents (1, C, F, h, w), encoded `chunk` frames at a time."""
        parts = []
        for i in range(0, frames.shape[0], chunk):
            x = frames[i : i + chunk].to(self.vae.device, self.vae.dtype)
            parts.append(self.vae.encode(x).latent_dist.mode() * self.scaling_factor)
        latents = torch.cat(parts)  # (F, C, h, w)
        return latents.permute(1, 0, 2, 3).unsqueeze(0)

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor, chunk: int = 8) -> torch.Tensor:
        """latents (1, C, F, h, w) -> frames (F, 3, H, W) in [-1, 1], decoded `chunk` frames at a time."""
        z = latents[0].permute(1, 0, 2, 3) / self.scaling_factor
        parts = []
        for i in range(0, z.shape[0], chunk):
            parts.append(self.vae.decode(z[i : i + chunk].to(self.vae.device, self.vae.dtype)).sample.float())
        return torch.cat(parts).clamp(-1, 1)


@dataclass
class T2VModel:
    """The components of a text-to-video latent diffusion model, plus the few operations we need."""

    unet: torch.nn.Module
    vae: torch.nn.Module
    text_encoder: torch.nn.Module
    tokenizer: object
    scheduler: object
    source: str

    @property
    def device(self) -> torch.device:
        return self.unet.device

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.dtype

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        return self.scheduler.alphas_cumprod

    @property
    def num_train_timesteps(self) -> int:
        return int(self.scheduler.config.num_train_timesteps)

    @property
    def autoencoder(self) -> Autoencoder:
        return Autoencoder(self.vae, self.source)

    @property
    def scaling_factor(self) -> float:
        return self.autoencoder.scaling_factor

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "T2VModel":
        for module in (self.unet, self.vae, self.text_encoder):
            move_module(module, device, dtype)
        return self

    # -- text ---------------------------------------------------------------------------------
    def token_count(self, prompt: str) -> int:
        """Tokens the prompt needs, special tokens included (to reject prompts that would be cut)."""
        return len(self.tokenizer(prompt, truncation=False)["input_ids"])

    @torch.no_grad()
    def encode_prompt(self, prompts: list[str]) -> torch.Tensor:
        """(len(prompts), tokens, dim) text embeddings. Prompts longer than the tokenizer's window raise."""
        limit = self.tokenizer.model_max_length
        for prompt in prompts:
            n = self.token_count(prompt)
            if n > limit:
                raise ValueError(
                    f"prompt {prompt!r} needs {n} tokens; the text encoder of {self.source} reads at most {limit}"
                )
        ids = self.tokenizer(
            prompts, padding="max_length", max_length=limit, truncation=True, return_tensors="pt"
        ).input_ids.to(self.text_encoder.device)
        return self.text_encoder(ids)[0]

    # -- pixels <-> latents -------------------------------------------------------------------
    def encode_frames(self, frames: torch.Tensor, chunk: int = 8) -> torch.Tensor:
        """frames (F, 3, H, W) in [-1, 1] -> latents (1, C, F, h, w) (``Autoencoder.encode_frames``)."""
        return self.autoencoder.encode_frames(frames, chunk)

    def decode_latents(self, latents: torch.Tensor, chunk: int = 8) -> torch.Tensor:
        """latents (1, C, F, h, w) -> frames (F, 3, H, W) in [-1, 1] (``Autoencoder.decode_latents``)."""
        return self.autoencoder.decode_latents(latents, chunk)


def _resolve(pretrained: str, revision: str | None) -> str:
    """A local folder (checked, with the component that is missing named) or a hub id (in the cache when offline)."""
    local = Path(pretrained).expanduser()
    if local.exists() or _looks_like_path(pretrained):
        check_local_folder(local)
        return str(local)
    if hub_offline() and cached_snapshot(pretrained, revision) is None:
        raise ModelLoadError(
            f"hub model {pretrained!r}" + (f" (revision {revision})" if revision else "")
            + " is not in the cache while offline (HF_HUB_OFFLINE=1): download it once with network access"
        )
    return pretrained


def _load_vae(pretrained: str, variant: str | None, dtype: torch.dtype, common: dict) -> torch.nn.Module:
    from diffusers import UNet3DConditionModel

    vae_config = UNet3DConditionModel.load_config(pretrained, subfolder="vae", **common)
    vae_name = vae_config.get("_class_name")
    if vae_name not in _vae_classes():
        raise ModelLoadError(
            f"{pretrained}/vae is a {vae_name!r}; supported autoencoders: {', '.join(_vae_classes())}"
        )
    return _vae_classes()[vae_name].from_pretrained(
        pretrained, subfolder="vae", variant=variant, torch_dtype=dtype, **common
    )


def load_autoencoder(
    pretrained: str | os.PathLike,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    revision: str | None = None,
    variant: str | None = None,
) -> Autoencoder:
    """Only the autoencoder of a text-to-video model (the same folders and checks as ``load_t2v``)."""
    pretrained = _resolve(str(pretrained), revision)
    common = {"revision": revision} if revision else {}
    try:
        vae = _load_vae(pretrained, variant, dtype, common)
    except ModelLoadError:
        raise
    except (OSError, ValueError, EnvironmentError) as err:
        raise ModelLoadError(f"cannot load the autoencoder of {pretrained!r}: {err}") from err
    vae.requires_grad_(False)
    vae.eval()
    move_module(vae, device, dtype)
    return Autoencoder(vae, source=pretrained)


def load_t2v(
    pretrained: str | os.PathLike,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    revision: str | None = None,
    variant: str | None = None,
) -> T2VModel:
    """Load a text-to-video model from a local folder or a hub id (``cerspense/zeroscope_v2_576w``).

    Works fully offline for local folders and for hub ids already in the cache (``HF_HUB_OFFLINE=1``).
    """
    from diffusers import DDIMScheduler, UNet3DConditionModel
    from transformers import AutoTokenizer, CLIPTextModel

    pretrained = _resolve(str(pretrained), revision)
    common = {"revision": revision} if revision else {}
    # Load in the target dtype (diffusers: torch_dtype=, transformers 5: dtype=) rather than
    # casting afterwards, which is what diffusers asks for.
    try:
        unet = UNet3DConditionModel.from_pretrained(
            pretrained, subfolder="unet", variant=variant, torch_dtype=dtype, **common
        )
        vae = _load_vae(pretrained, variant, dtype, common)
        text_encoder = CLIPTextModel.from_pretrained(pretrained, subfolder="text_encoder", dtype=dtype, **common)
        tokenizer = AutoTokenizer.from_pretrained(pretrained, subfolder="tokenizer", **common)
        # DDIM over the model's own training schedule: we need its alphas_cumprod, and DDIM sampling
        # for the SDEdit baseline and the video-to-video upsampler.
        scheduler = DDIMScheduler.from_pretrained(pretrained, subfolder="scheduler", **common)
    except ModelLoadError:
        raise
    except (OSError, ValueError, EnvironmentError) as err:
        raise ModelLoadError(f"cannot load text-to-video model {pretrained!r}: {err}") from err

    for module in (unet, vae, text_encoder):
        module.requires_grad_(False)
        module.eval()
    model = T2VModel(unet, vae, text_encoder, tokenizer, scheduler, source=pretrained)
    return model.to(device, dtype)  # the device; the dtype only for modules without weights
