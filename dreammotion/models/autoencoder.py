"""An exact, weight-free "autoencoder": space-to-depth packing of pixels into latent channels.

Our embedded prior works on tiny clips (32x32). A learned AutoencoderKL at that size loses the
thin edges that the synthetic edit suite measures, so the prior's latent space is simply
``pixel_unshuffle(frames, factor)``: lossless, invertible, and differentiable. It exposes the
same interface as diffusers' ``AutoencoderKL`` (``encode(x).latent_dist.mode()``,
``decode(z).sample``, ``config.scaling_factor``), so the rest of the code treats both alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin


class _DeterministicLatents:
    """Mirrors diffusers' DiagonalGaussianDistribution for a posterior with zero variance."""

    def __init__(self, latents: torch.Tensor):
        self.mean = latents

    def mode(self) -> torch.Tensor:
        return self.mean

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.mean


@dataclass
class _EncoderOutput:
    latent_dist: _DeterministicLatents


@dataclass
class _DecoderOutput:
    sample: torch.Tensor


class PixelShuffleAutoencoder(ModelMixin, ConfigMixin):
    """Lossless autoencoder: (B, 3, H, W) in [-1, 1]  <->  (B, 3 * factor**2, H / factor, W / factor)."""

    config_name = "config.json"

    @register_to_config
    def __init__(self, in_channels: int = 3, factor: int = 2, scaling_factor: float = 1.0,
                 block_out_channels: list[int] | None = None):
        super().__init__()
        if factor < 1 or factor & (factor - 1):
            raise ValueError(f"PixelShuffleAutoencoder factor must be a power of two, got {factor}")
        # diffusers' pipelines (TextToVideoSDPipeline) take the VAE's downscaling as
        # 2 ** (len(config.block_out_channels) - 1); this list says `factor` in that convention and
        # is not a set of layers (the packing has none). Derived, so a saved value must agree.
        derived = [in_channels] * factor.bit_length()
        if block_out_channels is not None and list(block_out_channels) != derived:
            raise ValueError(
                f"PixelShuffleAutoencoder(factor={factor}) states block_out_channels {derived}, "
                f"the config says {list(block_out_channels)}"
            )
        self.register_to_config(block_out_channels=derived)
        # A registered buffer gives the module a dtype/device, which diffusers' loaders expect.
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    # The packing has no weights: the folder holds only config.json.
    def save_pretrained(self, save_directory, **kwargs):
        self.save_config(save_directory)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, subfolder: str | None = None, **kwargs):
        kwargs = {k: v for k, v in kwargs.items() if k in ("revision", "cache_dir", "local_files_only", "token")}
        config = cls.load_config(pretrained_model_name_or_path, subfolder=subfolder, **kwargs)
        return cls.from_config(config)

    @property
    def latent_channels(self) -> int:
        return self.config.in_channels * self.config.factor**2

    def encode(self, x: torch.Tensor, return_dict: bool = True):
        f = self.config.factor
        if x.shape[-1] % f or x.shape[-2] % f:
            raise ValueError(
                f"PixelShuffleAutoencoder(factor={f}) needs height and width divisible by {f}, got {tuple(x.shape[-2:])}"
            )
        latents = F.pixel_unshuffle(x, f)
        out = _EncoderOutput(_DeterministicLatents(latents))
        return out if return_dict else (out.latent_dist,)

    def decode(self, z: torch.Tensor, return_dict: bool = True):
        sample = F.pixel_shuffle(z, self.config.factor)
        return _DecoderOutput(sample) if return_dict else (sample,)
