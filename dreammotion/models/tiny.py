"""Tiny randomly initialised text-to-video models in diffusers layout, for tests and benchmarks.

Sizes follow diffusers' own unit tests: they build in well under a second and run on a CPU.
"""

from __future__ import annotations

from pathlib import Path

import torch

TINY_WORDS = (
    "a an the red green blue yellow white black purple orange gray circle square triangle "
    "moving left right up down on background dog cat car"
).split()


def tiny_unet_config(latent_channels: int = 4, sample_size: int = 8) -> dict:
    return dict(
        sample_size=sample_size,
        in_channels=latent_channels,
        out_channels=latent_channels,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
        up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        block_out_channels=(8, 16),
        layers_per_block=1,
        norm_num_groups=4,
        cross_attention_dim=16,
        attention_head_dim=4,
    )


def save_tiny_t2v(folder: str | Path, *, vae: str = "kl", seed: int = 0) -> Path:
    """Write a tiny random text-to-video model to `folder` and return it.

    ``vae="kl"`` builds a tiny AutoencoderKL (downsampling 2x, 4 latent channels, ZeroScope's
    structure); ``vae="pixelshuffle"`` uses the embedded prior's exact packing (12 channels).
    """
    from diffusers import AutoencoderKL, DDIMScheduler, UNet3DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from dreammotion.models.autoencoder import PixelShuffleAutoencoder
    from dreammotion.models.tokenizer import build_word_tokenizer, text_tower_config

    folder = Path(folder)
    torch.manual_seed(seed)
    if vae == "kl":
        autoencoder = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
            up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
            block_out_channels=(8, 16),
            latent_channels=4,
            norm_num_groups=4,
            sample_size=16,
            scaling_factor=0.18215,
        )
        latent_channels = 4
    elif vae == "pixelshuffle":
        autoencoder = PixelShuffleAutoencoder(factor=2)
        latent_channels = 12
    else:
        raise ValueError(f"vae must be 'kl' or 'pixelshuffle', got {vae!r}")
    unet = UNet3DConditionModel(**tiny_unet_config(latent_channels))
    tokenizer = build_word_tokenizer(TINY_WORDS, max_length=16)
    text_encoder = CLIPTextModel(CLIPTextConfig(**text_tower_config(tokenizer, 16, 2, 2, intermediate_size=32)))
    scheduler = DDIMScheduler(beta_schedule="squaredcos_cap_v2", clip_sample=False, set_alpha_to_one=False)
    unet.save_pretrained(folder / "unet")
    autoencoder.save_pretrained(folder / "vae")
    text_encoder.save_pretrained(folder / "text_encoder")
    tokenizer.save_pretrained(folder / "tokenizer")
    scheduler.save_pretrained(folder / "scheduler")
    return folder
