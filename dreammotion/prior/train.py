"""Train the embedded text-to-video prior on synthetic clips rendered on the fly.

    python -m dreammotion.prior.train --out data/models/dreammotion-shapes-t2v --size 32 --minutes 8

The model is a diffusers ``UNet3DConditionModel`` over exact pixel-unshuffle latents
(``PixelShuffleAutoencoder``, factor size/16, so 32x32 and 64x64 clips both give 16x16 latents),
conditioned by a small ``CLIPTextModel`` trained jointly from scratch on a word-level tokenizer.
v-prediction (``--prediction-type``), cosine ("squaredcos_cap_v2") schedule, 10% empty captions for classifier-free
guidance, AdamW, bf16 autocast on CUDA (``--precision``), an EMA of the weights (saved), and on
CUDA optionally the whole step as one captured graph (``--cuda-graph``). The loss weighting is a flag
(``--snr-gamma``: 0 is the plain epsilon MSE, >0 min-SNR-gamma); bench/prior/NOTES.md says which one
ships and why. Training clips never contain the (colour, shape) pairs of ``HELD_OUT_PAIRS``.

The loop never waits for the GPU except at log steps, so the CPU half of a batch (drawing specs,
captions, token ids) overlaps the GPU's work on the previous step.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import tarfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dreammotion.model_files import read_training_record
from dreammotion.models.attention import TEMPORAL_ATTENTION_KINDS, set_spatial_self_attention, set_temporal_attention
from dreammotion.models.compile import raise_dynamo_cache_limits
from dreammotion.synthetic.captions import MAX_TOKENS, caption, vocabulary
from dreammotion.synthetic.render import render_batch_torch, sample_spec, specs_to_tensors
from dreammotion.utils.atomic import atomic_dir, atomic_path, write_json
from dreammotion.utils.devices import resolve_device

LATENT_SIZE = 16
FRAMES = 8
ARCHIVE_PART_BYTES = 15 * 1024 * 1024


PRESETS = {
    # channels, layers per block, norm groups, attention head size, text width
    "tiny": ((16, 24, 32), 1, 8, 8, 32),  # smoke tests: builds and runs in well under a second on a CPU
    "base": ((64, 96, 128), 2, 32, 32, 128),
}


def unet_config(latent_channels: int, preset: str = "base", head_size: int | None = None) -> dict:
    """The UNet3D: attention only in the two lower levels, so the decoder's up_blocks 0 and 1 hold
    the spatial self-attention (attn1) whose keys the editing method reads.

    In diffusers' UNet3D blocks ``attention_head_dim`` is the head *size*: a block of C channels gets
    C // attention_head_dim heads, and ``transformer_in`` gets 8 heads of that size. (The first
    shipped prior set it to 4 believing it a head count: 24-32 heads of size 4, which made flash
    attention 72% of a training step; bench/prior/NOTES.md.)
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}: {' or '.join(PRESETS)}")
    channels, layers, groups, default_head_size, cross = PRESETS[preset]
    head_size = head_size or default_head_size
    if any(c % head_size for c in channels[1:]):
        raise ValueError(f"head size {head_size} does not divide the attention blocks' channels {channels[1:]}")
    return dict(
        sample_size=LATENT_SIZE,
        in_channels=latent_channels,
        out_channels=latent_channels,
        down_block_types=("DownBlock3D", "CrossAttnDownBlock3D", "CrossAttnDownBlock3D"),
        up_block_types=("CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "UpBlock3D"),
        block_out_channels=channels,
        layers_per_block=layers,
        norm_num_groups=groups,
        cross_attention_dim=cross,
        attention_head_dim=head_size,  # the head size (see the docstring)
    )


def text_config(tokenizer, preset: str = "base"):
    from transformers import CLIPTextConfig

    from dreammotion.models.tokenizer import text_tower_config

    hidden, layers, heads = (128, 3, 4) if preset == "base" else (32, 1, 2)
    return CLIPTextConfig(**text_tower_config(tokenizer, hidden, layers, heads))


def build_model(size: int, preset: str = "base", seed: int = 0, head_size: int | None = None,
                prediction_type: str = "v_prediction", conditioned: bool = False):
    """Fresh (unet, text_encoder, tokenizer, scheduler, autoencoder) for clips of size x size.

    `conditioned` doubles the UNet's input channels for a conditioning clip's latents (the
    second stage, ``dreammotion.upsample.refiner``)."""
    from diffusers import DDIMScheduler, UNet3DConditionModel
    from transformers import CLIPTextModel

    from dreammotion.models.autoencoder import PixelShuffleAutoencoder
    from dreammotion.models.tokenizer import build_word_tokenizer

    if size % LATENT_SIZE:
        raise ValueError(f"--size must be a multiple of {LATENT_SIZE}, got {size}")
    factor = size // LATENT_SIZE
    torch.manual_seed(seed)
    autoencoder = PixelShuffleAutoencoder(factor=factor)
    tokenizer = build_word_tokenizer(vocabulary(), max_length=MAX_TOKENS)
    text_encoder = CLIPTextModel(text_config(tokenizer, preset))
    config = unet_config(autoencoder.latent_channels, preset, head_size)
    if conditioned:
        config["in_channels"] = 2 * autoencoder.latent_channels
    unet = UNet3DConditionModel(**config)
    scheduler = DDIMScheduler(
        num_train_timesteps=1000,
        beta_schedule="squaredcos_cap_v2",
        prediction_type=prediction_type,
        clip_sample=False,
        set_alpha_to_one=False,
        # The refiner runs with very few steps: "leading" spacing puts 1 step at t = 0 and 4 steps at
        # t <= 750, never at pure noise; "trailing" starts at t = 999 (Lin et al. 2023). Training
        # does not read it; the prior keeps the spacing its gates were measured with.
        **({"timestep_spacing": "trailing"} if conditioned else {}),
    )
    return unet, text_encoder, tokenizer, scheduler, autoencoder


def save_model(folder: Path, unet, text_encoder, tokenizer, scheduler, autoencoder, info: dict,
               extra_json: dict | None = None) -> None:
    """Diffusers layout in fp16, every file under 16 MiB; written atomically. `extra_json` maps
    file names to objects written beside training.json."""
    with atomic_dir(folder) as tmp:
        unet.to(torch.float16).save_pretrained(tmp / "unet", max_shard_size="15MB")
        text_encoder.to(torch.float16).save_pretrained(tmp / "text_encoder", max_shard_size="15MB")
        unet.to(torch.float32)
        text_encoder.to(torch.float32)
        tokenizer.save_pretrained(tmp / "tokenizer")
        scheduler.save_pretrained(tmp / "scheduler")
        autoencoder.save_pretrained(tmp / "vae")
        write_json(tmp / "model_index.json", model_index())
        write_json(tmp / "training.json", info)
        for name, value in (extra_json or {}).items():
            write_json(tmp / name, value)


def model_index() -> dict:
    """model_index.json: the folder loads as diffusers' TextToVideoSDPipeline too
    (``import dreammotion.models.autoencoder`` first: diffusers imports no module it does not know)."""
    import diffusers

    return {
        "_class_name": "TextToVideoSDPipeline",
        "_diffusers_version": diffusers.__version__,
        "scheduler": ["diffusers", "DDIMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "PreTrainedTokenizerFast"],
        "unet": ["diffusers", "UNet3DConditionModel"],
        "vae": ["dreammotion.models.autoencoder", "PixelShuffleAutoencoder"],
    }


def write_archive(folder: Path, prefix: Path) -> list[Path]:
    """Tar `folder` and split it into parts of < 15 MiB (PREFIX.tar.part0, ...): the device
    machine returns files of at most 16 MiB. Reassemble with ``cat PREFIX.tar.part* | tar x``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(folder, arcname=folder.name)
    data = buffer.getvalue()
    parts = []
    for index in range(math.ceil(len(data) / ARCHIVE_PART_BYTES)):
        part = prefix.parent / f"{prefix.name}.tar.part{index}"
        with atomic_path(part) as tmp:
            tmp.write_bytes(data[index * ARCHIVE_PART_BYTES : (index + 1) * ARCHIVE_PART_BYTES])
        parts.append(part)
    return parts


def compile_unet(unet, mode: str) -> int:
    """torch.compile the UNet in place; returns how many modules were compiled.

    "blocks" compiles each ResnetBlock2D, TemporalConvLayer, Transformer2DModel and
    TransformerTemporalModel on its own: blocks of one class and shape share one compiled graph, so
    it compiles in a fraction of the whole model's time while fusing the same elementwise chains
    (GroupNorm + SiLU + casts) that dominate a step. "full" compiles the whole forward."""
    from diffusers.models.resnet import ResnetBlock2D, TemporalConvLayer
    from diffusers.models.transformers.transformer_2d import Transformer2DModel
    from diffusers.models.transformers.transformer_temporal import TransformerTemporalModel

    if mode == "none":
        return 0
    raise_dynamo_cache_limits()
    if mode == "full":
        unet.compile()
        return 1
    if mode != "blocks":
        raise ValueError(f"unknown compile mode {mode!r}: none, blocks or full")
    blocks = [m for m in unet.modules()
              if isinstance(m, (ResnetBlock2D, TemporalConvLayer, Transformer2DModel, TransformerTemporalModel))]
    for module in blocks:
        module.compile()
    return len(blocks)


KERNEL_TUNINGS = ("default", "coordinate-descent")


def set_inductor_options(layout: str, tuning: str, compile_mode: str) -> None:
    """Process-wide inductor settings, read when the graph compiles (the first step), so they are set
    here for every trainer, not only for the non-default values.

    layout: "auto" leaves inductor's heuristic for channels-last convolutions, "force" overrides it.
    tuning: "coordinate-descent" lets inductor search the block sizes of its generated kernels (the
    fused GroupNorm/elementwise reductions that dominate the compiled step) at compile time."""
    import torch._inductor.config as inductor_config

    if layout not in ("auto", "force"):
        raise ValueError(f"unknown layout optimisation {layout!r}: auto or force")
    if tuning not in KERNEL_TUNINGS:
        raise ValueError(f"unknown kernel tuning {tuning!r}: {', '.join(KERNEL_TUNINGS)}")
    if compile_mode == "none" and layout == "force":
        raise ValueError("--layout-optimization force acts on the compiled graph: it needs --compile blocks or full")
    if compile_mode == "none" and tuning != "default":
        raise ValueError(f"--kernel-tuning {tuning} tunes compiled kernels: it needs --compile blocks or full")
    inductor_config.force_layout_optimization = layout == "force"
    inductor_config.coordinate_descent_tuning = tuning == "coordinate-descent"


def load_compile_cache(path: Path) -> dict | None:
    """Load torch.compile's cache artifacts (``torch.compiler.load_cache_artifacts``) from `path`;
    returns what was loaded ({kind: entries}), None when the file does not exist yet."""
    if not path.is_file():
        return None
    info = torch.compiler.load_cache_artifacts(path.read_bytes())
    loaded = {} if info is None else {kind: len(entries) for kind, entries in info.artifacts.items() if entries}
    print(f"compile cache: loaded {path} ({loaded or 'nothing usable for this torch/GPU'})", flush=True)
    return loaded


def save_compile_cache(path: Path) -> None:
    """Write the cache artifacts of everything compiled so far to `path` (atomically)."""
    artifacts = torch.compiler.save_cache_artifacts()
    if artifacts is None:
        print("compile cache: nothing was compiled, nothing to save", flush=True)
        return
    data, _ = artifacts
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
    print(f"compile cache: wrote {path} ({len(data) / 2**20:.1f} MiB)", flush=True)


def render_training_batch(rng: np.random.Generator, batch: int, size: int, device, drop_prob: float,
                          render=render_batch_torch):
    """Clips (B, 3, F, H, W) in [-1, 1] and their captions ("" for the dropped ones).

    `render` is ``render_batch_torch`` or a compiled copy of it (``PriorTrainer.render``)."""
    specs = [sample_spec(rng, FRAMES, held_out="exclude") for _ in range(batch)]
    captions = [caption(s) if rng.random() >= drop_prob else "" for s in specs]
    frames, _ = render(specs_to_tensors(specs, device=device), size=size, frames=FRAMES)
    clips = frames.permute(0, 4, 1, 2, 3) / 127.5 - 1.0  # (B, 3, F, H, W)
    return clips, captions


def pack_latents(clips: torch.Tensor, factor: int) -> torch.Tensor:
    """(B, 3, F, H, W) -> (B, 3*factor^2, F, H/factor, W/factor), as PixelShuffleAutoencoder.encode."""
    b, c, f, h, w = clips.shape
    frames = clips.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
    latents = F.pixel_unshuffle(frames, factor)
    return latents.reshape(b, f, *latents.shape[1:]).permute(0, 2, 1, 3, 4)


def token_ids(tokenizer, captions: list[str], device) -> torch.Tensor:
    ids = tokenizer(captions, padding="max_length", max_length=MAX_TOKENS, truncation=True, return_tensors="pt").input_ids
    if torch.device(device).type != "cuda":
        return ids.to(device)
    return ids.pin_memory().to(device, non_blocking=True)  # pageable copies wait for the GPU (specs_to_tensors)


def diffusion_loss(unet, text_encoder, alphas_cumprod, latents, ids, snr_gamma: float,
                   prediction_type: str = "v_prediction", condition: torch.Tensor | None = None,
                   timesteps: tuple[int, int] | None = None):
    """(weighted loss, plain MSE of the prediction), both 0-d tensors; nothing here waits for the GPU.

    v-prediction (v = sqrt(a) eps - sqrt(1-a) x0) is the default: with epsilon prediction the
    first DDIM steps recover x0 = (x_t - sqrt(1-a) eps) / sqrt(a), which multiplies the model's
    error by up to 1/sqrt(a) ~ 16-60 at t > 900; samples then kept a background noise of std ~65
    (of 255) while the same model denoised from t = 700 cleanly (bench/prior/NOTES.md).
    `condition` (latents of a conditioning clip) is concatenated to the UNet's input channels.
    `timesteps` (first, last) restricts the sampled timesteps to that range (default: all): a
    second stage used only as one step from t = 999 can train for that step alone."""
    device = latents.device
    embeddings = text_encoder(ids)[0]
    first, last = timesteps or (0, len(alphas_cumprod) - 1)
    t = torch.randint(first, last + 1, (latents.shape[0],), device=device)
    a = alphas_cumprod[t].view(-1, 1, 1, 1, 1)
    noise = torch.randn_like(latents)
    noisy = a.sqrt() * latents + (1 - a).sqrt() * noise
    inputs = noisy if condition is None else torch.cat([noisy, condition], dim=1)
    # The casts are no-ops except for a bf16 UNet (--precision bf16) fed by the fp32 text encoder.
    pred = unet(inputs.to(unet.dtype), t, encoder_hidden_states=embeddings.to(unet.dtype)).sample
    target = noise if prediction_type == "epsilon" else a.sqrt() * noise - (1 - a).sqrt() * latents
    per_sample = F.mse_loss(pred.float(), target, reduction="none").mean(dim=(1, 2, 3, 4))
    snr = alphas_cumprod[t] / (1 - alphas_cumprod[t])
    if snr_gamma > 0:  # min-SNR-gamma (Hang et al. 2023), in its form for each prediction type
        weights = torch.clamp(snr, max=snr_gamma) / (snr if prediction_type == "epsilon" else snr + 1)
    else:
        weights = torch.ones_like(snr)
    return (weights * per_sample).mean(), per_sample.mean()


def check_timestep_range(given, count: int) -> tuple[int, int] | None:
    """--timestep-range FIRST LAST as a (first, last) pair within [0, count - 1]; None for all."""
    if not given:
        return None
    first, last = (int(v) for v in given)
    if not 0 <= first <= last < count:
        raise ValueError(f"--timestep-range {first} {last}: needs 0 <= first <= last <= {count - 1}")
    return first, last


class EMA:
    """Exponential moving average of parameters, with the usual warm-up of the decay."""

    def __init__(self, params: list[torch.Tensor], decay: float):
        self.params = list(params)
        self.shadow = [p.detach().clone().float() for p in self.params]
        self.decay = decay
        self.updates = 0

    def next_weight(self) -> float:
        """Advance the warm-up and return this update's lerp weight, 1 - decay."""
        self.updates += 1
        return 1 - min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, weight: float | torch.Tensor | None = None) -> None:
        """`weight` (a 0-d tensor under CUDA-graph capture) defaults to ``next_weight()``."""
        weight = self.next_weight() if weight is None else weight
        live = [p.detach().float() for p in self.params]
        if isinstance(weight, torch.Tensor):
            # _foreach_lerp_ reads a tensor weight on the host (not allowed in a graph); this is
            # the same update with the weight staying on the GPU.
            delta = torch._foreach_sub(live, self.shadow)
            torch._foreach_mul_(delta, weight)
            torch._foreach_add_(self.shadow, delta)
        else:
            torch._foreach_lerp_(self.shadow, live, weight)

    @torch.no_grad()
    def copy_to(self) -> list[torch.Tensor]:
        """Load the EMA weights into the parameters; returns the live weights to restore later."""
        live = [p.detach().clone() for p in self.params]
        for p, s in zip(self.params, self.shadow):
            p.copy_(s)
        return live

    @torch.no_grad()
    def restore(self, live: list[torch.Tensor]) -> None:
        for p, w in zip(self.params, live):
            p.copy_(w)


def levels_list(text: str) -> tuple[int, ...]:
    """--fused-spatial-levels "1,2" -> (1, 2); "" -> () (no level)."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated UNet levels such as 1,2; got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="model folder to write (diffusers layout)")
    parser.add_argument("--size", type=int, default=32, help="clip side in pixels: 32 (base) or 64 (second stage)")
    parser.add_argument("--minutes", type=float, default=8.0, help="wall-clock training budget")
    parser.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: no limit)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--lr", type=float, default=6e-4)
    parser.add_argument("--warmup", type=int, default=200, help="linear warm-up steps")
    parser.add_argument("--caption-dropout", type=float, default=0.1)
    parser.add_argument("--snr-gamma", type=float, default=0.0, help="min-SNR-gamma loss weights (0: plain MSE)")
    parser.add_argument("--prediction-type", default="v_prediction", choices=("v_prediction", "epsilon"),
                        help="what the UNet predicts (saved in scheduler/; an --init-from model may switch)")
    parser.add_argument("--timestep-range", type=int, nargs=2, default=None, metavar=("FIRST", "LAST"),
                        help="train on timesteps FIRST..LAST only (default: all); e.g. 999 999 for a second stage "
                             "that runs as one DDIM step from pure noise (bench/upsample/NOTES.md)")
    parser.add_argument("--head-size", type=int, default=None, help="attention head size (default: the preset's)")
    parser.add_argument("--temporal-attention", default="math", choices=TEMPORAL_ATTENTION_KINDS,
                        help="processor of the 8-frame temporal attention: math (baddbmm/bmm), sdpa, broadcast "
                             "(products and sums that --compile fuses) or fused (one Triton kernel each way, CUDA "
                             "only; dreammotion.models.attention, bench/prior/NOTES.md)")
    parser.add_argument("--fused-spatial-levels", type=levels_list, default=(), metavar="LEVELS",
                        help="comma-separated UNet levels (0: full resolution; the base prior's 1 and 2 are 8x8 and "
                             "4x4) whose spatial self-attention runs the fused Triton kernel instead of flash "
                             "attention, which pads each 64- or 16-position sequence to a longer tile (CUDA only; "
                             "bench/prior/NOTES.md)")
    parser.add_argument("--compile", default="none", choices=("none", "blocks", "full"),
                        help="torch.compile the UNet: each resnet/attention/temporal block, or the whole model "
                             "(fuses GroupNorm, SiLU and autocast's casts; bench/prior/NOTES.md); either also "
                             "compiles the batch renderer")
    parser.add_argument("--layout-optimization", default="auto", choices=("auto", "force"),
                        help="with --compile: auto lets inductor decide whether to run the convolutions channels-last "
                             "(it declines for a graph with few convolutions among many nodes, as the UNet's is); "
                             "force makes it (TORCHINDUCTOR_FORCE_LAYOUT_OPT; bench/prior/NOTES.md, run 12)")
    parser.add_argument("--kernel-tuning", default="default", choices=KERNEL_TUNINGS,
                        help="with --compile: coordinate-descent searches the block sizes of inductor's generated "
                             "kernels at compile time (longer compile; bench/prior/NOTES.md)")
    parser.add_argument("--precision", default="autocast", choices=("autocast", "bf16"),
                        help="autocast: fp32 weights, bf16 autocast on CUDA; bf16: UNet weights and activations "
                             "in bf16, fp32 master weights for AdamW and the EMA (bench/prior/NOTES.md)")
    parser.add_argument("--compile-cache", type=Path, default=None,
                        help="with --compile: load torch.compile's cache artifacts from this file first (if it exists), "
                             "and write them there after the first step, so a later run with the same torch and GPU "
                             "skips most of the compile (bench/prior/NOTES.md)")
    parser.add_argument("--cuda-graph", action="store_true",
                        help="capture the whole step (forward, backward, clipping, AdamW, EMA) as one CUDA graph "
                             "and replay it, so Python launches none of its kernels (CUDA, autocast only; "
                             "bench/prior/NOTES.md)")
    parser.add_argument("--channels-last", action="store_true",
                        help="UNet convolution weights in channels-last layout (cuDNN's native NHWC)")
    parser.add_argument("--ema", type=float, default=0.999, help="EMA decay of the saved weights (0: no EMA)")
    parser.add_argument("--preset", default="base", choices=("base", "tiny"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--checkpoint-minutes", type=float, default=2.0)
    parser.add_argument("--archive", type=Path, default=None, help="also write PREFIX.tar.part* at each checkpoint")
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--init-from", type=Path, default=None, help="continue from the weights of a saved model folder")


def load_weights(folder: Path, unet, text_encoder) -> dict:
    """Copy a saved model's weights into fresh modules of the same config; returns its training.json."""
    from diffusers import UNet3DConditionModel
    from transformers import CLIPTextModel

    saved_unet = UNet3DConditionModel.from_pretrained(folder, subfolder="unet", torch_dtype=torch.float32)
    saved_text = CLIPTextModel.from_pretrained(folder, subfolder="text_encoder", dtype=torch.float32)
    unet.load_state_dict(saved_unet.state_dict())
    text_encoder.load_state_dict(saved_text.state_dict())
    return read_training_record(folder)


class PriorTrainer:
    """Model, optimiser, EMA and one training step; ``run`` loops it, bench/prior/throughput.py times it.

    Subclasses (the conditioned second stage, ``dreammotion.prior.train_refiner``) set
    ``conditioned`` and override ``batch`` to return a conditioning clip's latents as a third item."""

    conditioned = False

    def __init__(self, args: argparse.Namespace, device: torch.device):
        if device.type == "cuda":
            torch.backends.cuda.enable_cudnn_sdp(False)  # its backward failed on the lent H100s
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick the fastest conv algorithms
        fused_spatial_levels = getattr(args, "fused_spatial_levels", ())
        if device.type != "cuda" and (args.temporal_attention == "fused" or fused_spatial_levels):
            option = "--temporal-attention fused" if args.temporal_attention == "fused" else "--fused-spatial-levels"
            raise ValueError(f"{option} runs a Triton kernel for CUDA devices; the device is {device} "
                             "(use math or broadcast temporal attention, and no fused spatial levels)")
        self.args, self.device = args, device
        self.unet, self.text_encoder, self.tokenizer, self.scheduler, self.autoencoder = build_model(
            args.size, args.preset, args.seed, args.head_size, args.prediction_type, self.conditioned
        )
        self.previous = load_weights(args.init_from, self.unet, self.text_encoder) if args.init_from else {}
        if args.temporal_attention != "sdpa":  # sdpa: diffusers' default processors
            set_temporal_attention(self.unet, args.temporal_attention)
        if fused_spatial_levels:
            set_spatial_self_attention(self.unet, "fused", fused_spatial_levels)
        self.unet.to(device).train()
        # --precision bf16: the UNet computes in bf16 end to end (autocast keeps GroupNorm and every
        # elementwise chain in fp32 and casts around each matmul); AdamW and the EMA work on fp32
        # master copies, because a step's update (lr x ~1e-3 of a weight) is below bf16's resolution.
        self.unet_params = list(self.unet.parameters())
        self.masters: list[torch.Tensor] = []
        if args.precision == "bf16":
            self.masters = [p.detach().clone().requires_grad_(True) for p in self.unet_params]
            self.unet.to(torch.bfloat16)
        if args.channels_last:
            # Conv2d weights channels-last, the temporal Conv3d weights channels-last-3d (a rank-5
            # tensor has no plain channels-last layout: bench/prior/run7). A (B*F, C, H, W)
            # channels-last activation viewed as the temporal conv's (B, C, F, H, W) is exactly
            # channels-last-3d, so no conv needs an NCHW <-> NHWC copy.
            for module in self.unet.modules():
                if isinstance(module, torch.nn.Conv2d):
                    module.to(memory_format=torch.channels_last)
                elif isinstance(module, torch.nn.Conv3d):
                    module.to(memory_format=torch.channels_last_3d)
        self.compile_cache = getattr(args, "compile_cache", None) if args.compile != "none" else None
        self.compile_cache_loaded = load_compile_cache(self.compile_cache) if self.compile_cache else None
        set_inductor_options(getattr(args, "layout_optimization", "auto"), getattr(args, "kernel_tuning", "default"),
                             args.compile)
        self.compiled_modules = compile_unet(self.unet, args.compile)
        # With --compile the batch renderer is compiled too. Eager, it evaluates every shape at every
        # supersampled point as full-size tensors, a few dozen kernels over B x 8 x 128 x 128 samples,
        # queued between two steps (fresh batches ran 3-4% slower than a fixed one: NOTES, runs 12
        # and 15); compiled, they fuse into kernels that write only the pixels and masks.
        self.render = render_batch_torch if args.compile == "none" else torch.compile(
            render_batch_torch, fullgraph=True, dynamic=False)
        self.text_encoder.to(device).train()
        self.modules = [self.unet, self.text_encoder]
        self.params = (self.masters or self.unet_params) + list(self.text_encoder.parameters())
        self.n_params = {m.__class__.__name__: sum(p.numel() for p in m.parameters()) for m in self.modules}
        self.use_graph = bool(getattr(args, "cuda_graph", False))
        if self.use_graph and (device.type != "cuda" or self.masters):
            raise ValueError("--cuda-graph needs a CUDA device and --precision autocast")
        # fused AdamW: one kernel for all parameters instead of a loop of small ones. Under a CUDA
        # graph the learning rate is a device tensor that each replay reads (capturable=True).
        fused = {"fused": True} if device.type == "cuda" else {}
        lr = torch.tensor(args.lr, device=device) if self.use_graph else args.lr
        self.optimizer = torch.optim.AdamW(self.params, lr=lr, weight_decay=0.01, capturable=self.use_graph, **fused)
        self.ema = EMA(self.params, args.ema) if args.ema > 0 else None
        self.alphas_cumprod = self.scheduler.alphas_cumprod.to(device)
        self.timesteps = check_timestep_range(getattr(args, "timestep_range", None), len(self.alphas_cumprod))
        self.rng = np.random.default_rng(args.seed)
        # A captured graph cannot use autocast's weight-cast cache (its casts would be skipped on replay).
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=not self.use_graph,
                                       enabled=device.type == "cuda" and args.precision == "autocast")
        self.graph: torch.cuda.CUDAGraph | None = None

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Latents (B, C, F, h, w) and token ids (B, MAX_TOKENS) of freshly rendered clips."""
        args = self.args
        clips, captions = render_training_batch(self.rng, args.batch, args.size, self.device, args.caption_dropout,
                                                self.render)
        latents = pack_latents(clips, self.autoencoder.config.factor) * self.autoencoder.config.scaling_factor
        return latents, token_ids(self.tokenizer, captions, self.device)

    def extra_json(self) -> dict:
        """Files written beside training.json in the saved model folder."""
        return {}

    def step(self, latents: torch.Tensor, ids: torch.Tensor, condition: torch.Tensor | None = None, *,
             lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimiser step; returns (weighted loss, prediction MSE) as tensors (no GPU sync)."""
        if self.use_graph:
            losses = self._replay(latents, ids, condition, lr)
        else:
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            losses = self._update(latents, ids, condition, self.ema.next_weight() if self.ema else None)
        if self.compile_cache is not None:  # the first step compiled forward and backward: keep the result
            save_compile_cache(self.compile_cache)
            self.compile_cache = None
        return losses

    def _update(self, latents, ids, condition, ema_weight) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward, backward, clipping, AdamW and EMA: the body that --cuda-graph captures."""
        with self.autocast:
            loss, mse = diffusion_loss(self.unet, self.text_encoder, self.alphas_cumprod, latents, ids,
                                       self.args.snr_gamma, self.args.prediction_type, condition,
                                       self.timesteps)
        if not self.use_graph:  # under a graph, backward writes the captured .grad buffers
            self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.masters:
            for master, param in zip(self.masters, self.unet_params):
                master.grad = param.grad.float()
                param.grad = None
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        if self.masters:
            with torch.no_grad():
                torch._foreach_copy_(self.unet_params, self.masters)
        if self.ema:
            self.ema.update(ema_weight)
        return loss.detach(), mse.detach()

    def _replay(self, latents, ids, condition, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        """--cuda-graph: copy the batch into the graph's input buffers and replay the captured step.

        The first call captures it, following PyTorch's whole-network recipe: three eager warm-up
        steps on a side stream (cuDNN's algorithm search, AdamW's state, the compiler if any) on
        this first batch, then one capture. Every step after is one replay."""
        if self.graph is None:
            self._capture(latents, ids, condition)
        for buffer, value in zip(self.static_inputs, (latents, ids, condition)):
            if value is not None:
                buffer.copy_(value, non_blocking=True)
        self.optimizer.param_groups[0]["lr"].fill_(lr)
        if self.ema:
            self.ema_weight.fill_(self.ema.next_weight())
        self.graph.replay()
        # Clones: the next replay overwrites the graph's outputs, and callers keep these.
        return self.static_loss.clone(), self.static_mse.clone()

    def _capture(self, latents, ids, condition) -> None:
        # (latents, ids, condition or None): the graph's input buffers, in _update's argument order
        self.static_inputs = tuple(None if v is None else v.clone() for v in (latents, ids, condition))
        self.ema_weight = torch.zeros((), device=self.device)
        self.optimizer.param_groups[0]["lr"].fill_(0.0)  # the warm-up builds state, it does not train
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                self.optimizer.zero_grad(set_to_none=True)
                self._update(*self.static_inputs, ema_weight=self.ema_weight)
        torch.cuda.current_stream().wait_stream(side)
        self.optimizer.zero_grad(set_to_none=True)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_loss, self.static_mse = self._update(*self.static_inputs, ema_weight=self.ema_weight)

    @contextlib.contextmanager
    def weights_to_save(self):
        """Inside: the modules hold the weights to save (the EMA's, if any) in fp32. After: the
        training state as it was."""
        live = self.ema.copy_to() if self.ema else None
        if self.masters:
            self.unet.float()
            with torch.no_grad():
                torch._foreach_copy_(self.unet_params, self.masters)
        try:
            yield
        finally:
            if self.ema:
                self.ema.restore(live)
            if self.masters:
                self.unet.to(torch.bfloat16)
                with torch.no_grad():
                    torch._foreach_copy_(self.unet_params, self.masters)


def lr_scale(step: int, warmup: int, progress: float) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to 10% of the peak as `progress`
    (elapsed / wall-clock budget) goes from 0 to 1."""
    return min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def earlier_runs(previous: dict) -> list[dict]:
    """The runs behind an --init-from model's training.json (its own earlier runs, then itself)."""
    return previous.get("previous_runs", []) + ([_run_summary(previous)] if previous else [])


def run_totals(previous_runs: list[dict], steps: int, clips: int, seconds: float) -> dict:
    """training.json's totals: this run plus every earlier one."""
    return {
        "total_steps": steps + sum(r["steps"] for r in previous_runs),
        "total_clips_seen": clips + sum(_clips(r) for r in previous_runs),
        "total_train_seconds": round(seconds + sum(r["train_seconds"] for r in previous_runs), 1),
    }


def train_for_budget(args: argparse.Namespace, device: torch.device, trainer, *, train_step, log_fields, save,
                     model_info: dict, run_info: dict, need_a_step: bool = False) -> int:
    """The wall-clock loop of both trainers (this prior and ``dreammotion.clip.train``).

    Steps until --minutes or --max-steps with ``lr_scale``'s schedule, waits for the GPU only at log
    steps (every --log-every, and the first three), checkpoints every --checkpoint-minutes and at
    the end, with --archive's pieces. What differs between the models comes in as:

    - `train_step(lr)`: one optimiser step on a fresh batch; returns its losses as a tensor;
    - `log_fields(values)`: the loss fields of a log entry, from the losses stacked since the last;
    - `save(info)`: writes the model folder with `info` as its training.json, which is
      `model_info`, this run's counts, `run_info`, then the loss log and the earlier runs;
    - `need_a_step`: raise rather than save an untrained model when no step fits the budget.

    `trainer` gives ``previous`` (the --init-from model's training.json) and ``n_params``."""
    previous_runs = earlier_runs(trainer.previous)
    print(f"parameters: {trainer.n_params}", flush=True)
    budget = args.minutes * 60
    log: list[dict] = []
    start = last_checkpoint = time.time()
    step = 0
    losses: list[torch.Tensor] = []

    def checkpoint(final: bool) -> None:
        seconds = time.time() - start
        save({
            **model_info,
            "steps": step,
            "batch": args.batch,
            "clips_seen": step * args.batch,
            "train_seconds": round(seconds, 1),
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "parameters": trainer.n_params,
            "args": {k: str(v) for k, v in vars(args).items()},
            "final": final,
            **run_info,
            "loss_log": log,
            "init_from": str(args.init_from) if args.init_from else None,
            "previous_runs": previous_runs,
            **run_totals(previous_runs, step, step * args.batch, seconds),
        })
        if args.archive:
            write_archive(args.out, args.archive)
        print(f"checkpoint at step {step} -> {args.out}", flush=True)

    while True:
        elapsed = time.time() - start
        if elapsed >= budget or (args.max_steps and step >= args.max_steps):
            break
        lr = args.lr * lr_scale(step, args.warmup, min(elapsed / budget, 1.0))
        losses.append(train_step(lr))
        step += 1
        if step % args.log_every == 0 or step < 4:
            values = torch.stack(losses)  # the one GPU sync of the loop
            if not torch.isfinite(values).all():
                raise FloatingPointError(f"training loss is not finite between steps {step - len(losses) + 1} and {step}")
            entry = {"step": step, "seconds": round(time.time() - start, 1), **log_fields(values),
                     "lr": round(lr, 7), "clips_per_s": round(step * args.batch / (time.time() - start), 1)}
            log.append(entry)
            losses = []
            print(json.dumps(entry), flush=True)
        if time.time() - last_checkpoint > args.checkpoint_minutes * 60:
            checkpoint(final=False)
            last_checkpoint = time.time()
    if need_a_step and step == 0:
        raise RuntimeError(f"no training step fitted in --minutes {args.minutes}")
    checkpoint(final=True)
    return 0


def run(args: argparse.Namespace, trainer_class: type[PriorTrainer] = PriorTrainer) -> int:
    device = torch.device(resolve_device(args.device))
    trainer = trainer_class(args, device)

    def save(info: dict) -> None:
        with trainer.weights_to_save():
            save_model(args.out, trainer.unet, trainer.text_encoder, trainer.tokenizer, trainer.scheduler,
                       trainer.autoencoder, info, trainer.extra_json())

    return train_for_budget(
        args, device, trainer,
        train_step=lambda lr: trainer.step(*trainer.batch(), lr=lr)[1],  # logs the prediction MSE
        log_fields=lambda values: {"mse": round(values.mean().item(), 5)},
        save=save,
        model_info={"size": args.size, "frames": FRAMES},
        run_info={"ema": args.ema},
    )


def _run_summary(info: dict) -> dict:
    return {k: info.get(k) for k in ("steps", "batch", "clips_seen", "train_seconds", "device", "args")}


def _clips(run: dict) -> int:
    return int(run.get("clips_seen") or run["steps"] * run["batch"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dreammotion.prior.train", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
