"""Video-to-video refinement with a second-stage text-to-video model (ZeroScope-XL style).

The edited clip, already resized to the target size, is encoded by the second model's VAE, noised to
`strength` of its schedule and denoised with the target prompt by ``dreammotion.models.ddim.denoise_from``
(our own short DDIM loop; diffusers' VideoToVideoSDPipeline is deprecated after 0.33). The model is any
``T2VModel``: ``cerspense/zeroscope_v2_XL`` by hub id, or a local folder such as the embedded second stage
``data/models/dreammotion-shapes-refiner-64``.

A conditioned second stage (``dreammotion.upsample.refiner.takes_condition``: its UNet reads the
resized clip's latents beside its noisy input, as cascaded models' super-resolution stages do) also
gets the resized clip as its condition at every step; from strength 1 it then denoises from pure
noise with the low-resolution content given, not guessed.

Memory options: ``vae_chunk`` frames per VAE call, and ``cpu_offload``: the text encoder and VAE stay on the
CPU and the UNet visits the accelerator only while it denoises.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from typing import Iterator

import numpy as np
import torch

from dreammotion.errors import InputError
from dreammotion.io.frames import to_tensor, to_uint8
from dreammotion.models.ddim import denoise_from
from dreammotion.models.loading import T2VModel, move_module
from dreammotion.models.registry import BackendConfig, load_model
from dreammotion.upsample.refiner import read_refiner_info, residual_scale, takes_condition

# Settings of a second stage that recommends none of its own: an unconditioned text-to-video model
# run at a strength over the resized clip (ZeroScope-XL practice). A conditioned refiner's
# second_stage.json ("recommended") replaces them.
UNCONDITIONED_SETTINGS = {"strength": 0.4, "steps": 25, "guidance_scale": 7.5}


def recommended_settings(model: T2VModel) -> dict:
    """strength, steps and guidance_scale the second stage is meant to run with: its own
    recommendation when it is a conditioned refiner, else ``UNCONDITIONED_SETTINGS``."""
    own = read_refiner_info(model.source).get("recommended", {}) if takes_condition(model.unet) else {}
    return {key: own.get(key, default) for key, default in UNCONDITIONED_SETTINGS.items()}


@dataclass
class V2VSettings:
    prompt: str
    strength: float = UNCONDITIONED_SETTINGS["strength"]
    steps: int = UNCONDITIONED_SETTINGS["steps"]
    guidance_scale: float = UNCONDITIONED_SETTINGS["guidance_scale"]
    seed: int = 0
    vae_chunk: int = 8

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 1.0:
            raise InputError(f"v2v strength must be in [0, 1], got {self.strength}")
        if self.steps < 1:
            raise InputError(f"v2v steps must be >= 1, got {self.steps}")
        if self.vae_chunk < 1:
            raise InputError(f"vae_chunk must be >= 1, got {self.vae_chunk}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SecondStage:
    """A loaded second-stage model and where its UNet computes (differs from the model's device under offload)."""

    model: T2VModel
    settings: dict
    compute_device: torch.device
    compute_dtype: torch.dtype
    cpu_offload: bool

    def describe(self) -> dict:
        return {
            **self.settings,
            "source": self.model.source,
            "compute_device": str(self.compute_device),
            "compute_dtype": str(self.compute_dtype).removeprefix("torch."),
            "cpu_offload": self.cpu_offload,
            "spatial_multiple": spatial_multiple(self.model),
            "conditioned": takes_condition(self.model.unet),
        }


def load_second_stage(settings: dict, *, cpu_offload: bool = False) -> SecondStage:
    """Load the second-stage model from backend settings ({"pretrained": hub id or folder, ...}).

    With `cpu_offload` every component is loaded on the CPU in float32; the UNet moves to the configured
    device and dtype only while denoising (see ``unet_on``)."""
    settings = dict(settings)
    if not settings.get("pretrained"):
        raise InputError("the second-stage model settings need 'pretrained' (a hub id or a model folder)")
    try:
        config = BackendConfig.from_dict(settings)
        compute_device, compute_dtype = config.resolve_device(), config.resolve_dtype()
    except ValueError as err:
        raise InputError(f"second-stage model settings {settings}: {err}") from err
    if cpu_offload:
        model = load_model({**settings, "device": "cpu", "dtype": "float32"})
    else:
        model = load_model(config)
    return SecondStage(model, settings, compute_device, compute_dtype, cpu_offload)


def spatial_multiple(model: T2VModel) -> int:
    """Pixels per latent pixel times the UNet's downsampling: frame sides must be multiples of this."""
    vae_config = model.vae.config
    if hasattr(vae_config, "factor"):  # PixelShuffleAutoencoder
        vae_factor = int(vae_config.factor)
    else:  # AutoencoderKL: one 2x downsample between consecutive encoder blocks
        vae_factor = 2 ** (len(vae_config.block_out_channels) - 1)
    unet_factor = 2 ** (len(model.unet.config.block_out_channels) - 1)
    return vae_factor * unet_factor


def check_frame_size(model: T2VModel, height: int, width: int) -> None:
    multiple = spatial_multiple(model)
    if height % multiple or width % multiple:
        raise InputError(
            f"the second-stage model {model.source} needs frame sides divisible by {multiple}; "
            f"the target size {height}x{width} is not (choose --scale or --height/--width accordingly)"
        )


@contextlib.contextmanager
def unet_on(model: T2VModel, device: torch.device, dtype: torch.dtype) -> Iterator[None]:
    """Move only the UNet to `device`/`dtype` for the duration of the block (CPU offload of the rest)."""
    original_device, original_dtype = model.unet.device, model.unet.dtype
    if (original_device, original_dtype) == (device, dtype):
        yield
        return
    move_module(model.unet, device, dtype)
    try:
        yield
    finally:
        move_module(model.unet, original_device, original_dtype)
        if device.type == "cuda":
            torch.cuda.empty_cache()


def encode_prompts(model: T2VModel, prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(prompt embedding, empty-prompt embedding) for classifier-free guidance."""
    try:
        embeddings = model.encode_prompt([prompt, ""])
    except ValueError as err:  # prompt longer than the text encoder's window
        raise InputError(f"--prompt: {err}") from err
    return embeddings[0], embeddings[1]


def video_to_video(stage: SecondStage | T2VModel, frames: np.ndarray, settings: V2VSettings,
                   *, progress: bool = False) -> np.ndarray:
    """Refine (F, H, W, 3) uint8 frames (already at the target size) -> (F, H, W, 3) uint8.

    Strength 0 runs no denoising step, so the result is the VAE round trip of the input (exactly the
    input for the lossless PixelShuffleAutoencoder)."""
    if isinstance(stage, T2VModel):
        stage = SecondStage(stage, {}, stage.device, stage.dtype, cpu_offload=False)
    model = stage.model
    check_frame_size(model, frames.shape[1], frames.shape[2])
    latents = model.encode_frames(to_tensor(frames), chunk=settings.vae_chunk)
    condition = latents if takes_condition(model.unet) else None
    scale = residual_scale(model.source, model.unet)
    # A residual refiner generates (clip - condition) * scale: it starts from "no change".
    start = torch.zeros_like(latents) if scale else latents
    prompt_embedding, null_embedding = encode_prompts(model, settings.prompt)
    with unet_on(model, stage.compute_device, stage.compute_dtype):
        latents = denoise_from(
            model, start, prompt_embedding, null_embedding,
            strength=settings.strength, steps=settings.steps,
            guidance_scale=settings.guidance_scale, seed=settings.seed, progress=progress,
            condition=condition,
        )
    if scale:
        latents = condition.cpu().float() + latents / scale
    return to_uint8(model.decode_latents(latents, chunk=settings.vae_chunk))
