"""The DreamMotion optimisation loop.

Each iteration draws one timestep t and one noise sample e, shared by all three losses:

* V-DDS: one batched no-grad UNet pass over [x_t | y, x_t | null, x^_t | y^, x^_t | null] gives the
  classifier-free-guided predictions of the edited video with the target prompt and of the source video
  with the source prompt; their difference is the gradient (a constant: no backward through the UNet),
  multiplied by the per-frame object mask.
* S-SSM / T-SSM: the same pass captures the spatial self-attention keys of x^_t; a second, with-grad
  pass over x_t stops after the last key layer, and the self-similarity losses between the two key
  sets are back-propagated to x.

The keys of both videos are read under the unconditional (empty-prompt) embedding, so that the
self-similarities compare the structure of the two videos and not their prompts: at x == x^ both
losses are zero.

Fast path (``FastPath``, the default; bench/NOTES.md has the GPU measurements): when the key layers
reach into the UNet's last up block, truncation saves almost nothing, so the with-grad pass over
x_t | null runs to the end and its output *is* the V-DDS branch eps(x_t, null): the no-grad pass
shrinks from 4 to 3 videos. On CUDA, activation checkpointing of the chosen UNet modules keeps the
with-grad pass's memory low. Temporal attention runs in batch slices (CUDA grid limit). The update is
the same as the straightforward loop's up to floating-point rounding (tests/test_bench_equivalence.py).
"""

from __future__ import annotations

import contextlib
import math
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from dreammotion.edit.config import EditConfig
from dreammotion.edit.hooks import (
    ActivationCheckpointing,
    AttentionKernelsByLength,
    KeyCapture,
    TemporalAttentionChunking,
    select_checkpoint_units,
    select_spatial_self_attention,
)
from dreammotion.edit.losses import frame_key_means, spatial_ssm_loss, temporal_cross_ssm_loss, temporal_ssm_loss
from dreammotion.edit.windows import Windows, windowed_update
from dreammotion.errors import NumericalError
from dreammotion.models.compile import CompiledConvBlocks
from dreammotion.utils.atomic import atomic_path


@dataclass
class EditResult:
    latents: torch.Tensor  # (1, C, F, h, w) float32, on the CPU
    log: list[dict]
    runtime_s: float
    peak_memory_mib: float
    peak_memory_kind: str
    resumed_from: int | None = None
    final: dict = field(default_factory=dict)
    batch_size: int = 1  # edits optimised together (runtime_s and peak memory are the batch's)


def latent_mask(masks: torch.Tensor | None, latent_shape: tuple[int, ...]) -> torch.Tensor:
    """Per-frame pixel masks (F, H, W) in [0, 1] -> (1, 1, F, h, w) by area averaging.

    A latent cell is fully on only if all its pixels are; cells wholly outside the object are exactly 0.
    """
    _, _, frames, h, w = latent_shape
    if masks is None:
        return torch.ones(1, 1, frames, h, w)
    masks = torch.as_tensor(masks, dtype=torch.float32)
    if masks.ndim != 3 or masks.shape[0] != frames:
        raise ValueError(f"expected {frames} masks of shape (H, W), got a tensor of shape {tuple(masks.shape)}")
    return F.adaptive_avg_pool2d(masks[:, None], (h, w))[:, 0][None, None]


def _iteration_generator(seed: int, iteration: int) -> torch.Generator:
    # One generator per iteration: a resumed run draws exactly what an uninterrupted run draws.
    return torch.Generator("cpu").manual_seed(seed * 1_000_003 + iteration)


def peak_memory(device: torch.device) -> tuple[float, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_memory_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process_max_rss"


def _check_finite(iteration: int, **tensors: torch.Tensor) -> None:
    for name, value in tensors.items():
        if not torch.isfinite(value).all():
            raise NumericalError(
                f"iteration {iteration}: {name} is not finite (NaN or Inf); "
                "try a smaller lr, float32 instead of float16, or a narrower t range"
            )


def _load_checkpoint(path: Path, fingerprint: str, shape: tuple[int, ...], iterations: int) -> dict | None:
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("fingerprint") != fingerprint or tuple(state["x"].shape) != shape or state["iteration"] > iterations:
        print(f"[dreammotion] ignoring checkpoint {path}: it was made with other settings or inputs")
        return None
    print(f"[dreammotion] resuming from {path} at iteration {state['iteration']}")
    return state


def default_checkpoint_patterns(unet: torch.nn.Module) -> tuple[str, ...]:
    """Activation checkpointing used on CUDA by default: the UNet's first down block and last up
    block, the full-resolution levels whose activations are the largest (bench/NOTES.md has the
    memory/time trade-off at ZeroScope size, where these are down_blocks.0 and up_blocks.3).
    Derived from the model, so a UNet with another number of levels gets its own outer blocks."""
    return ("down_blocks.0.*", f"up_blocks.{len(unet.up_blocks) - 1}.*")


@dataclass
class FastPath:
    """How one iteration is computed. Performance only: every setting gives the same update up to
    floating-point rounding, so these are not edit settings (not part of EditConfig's fingerprint).

    fuse_null_branch: take eps(x_t, null) from the with-grad key pass instead of the no-grad batch.
        None: yes when the key layers reach the UNet's last up block (truncation would save little).
    checkpoint: glob patterns of UNet modules to checkpoint in the with-grad pass (see
        ``select_checkpoint_units``). None: ``default_checkpoint_patterns(unet)`` on CUDA, nothing on the CPU.
    chunk_temporal_attention: run temporal attention in batch slices (needed on CUDA at 576x320).
    compile_conv_blocks: ``torch.compile`` the UNet's resnet and temporal-conv blocks (static shapes) while
        the step is entered, fusing their GroupNorm + SiLU + elementwise chains (``CompiledConvBlocks``).
    attention_kernels_by_length: memory-efficient attention for short sequences (temporal attention),
        flash attention for long ones (``AttentionKernelsByLength``). None: on CUDA (ZeroScope size, 24 frames,
        one H100: 0.689 -> 0.651 s an iteration, bench/NOTES.md), not on the CPU, which has one SDPA kernel.
    """

    fuse_null_branch: bool | None = None
    checkpoint: tuple[str, ...] | None = None
    chunk_temporal_attention: bool = True
    compile_conv_blocks: bool = False
    attention_kernels_by_length: bool | None = None

    def resolve_fuse(self, unet: torch.nn.Module, layers: list[str], config: EditConfig) -> bool:
        if not layers:
            return False  # no with-grad pass to take the branch from
        if self.fuse_null_branch is not None:
            return self.fuse_null_branch
        if not config.truncate_forward:
            return True
        last_up_block = f"up_blocks.{len(unet.up_blocks) - 1}."
        return layers[-1].startswith(last_up_block)

    def resolve_checkpoint(self, unet: torch.nn.Module, device: torch.device) -> tuple[str, ...]:
        if self.checkpoint is not None:
            return tuple(self.checkpoint)
        return default_checkpoint_patterns(unet) if device.type == "cuda" else ()

    def resolve_attention_kernels(self, device: torch.device) -> bool:
        if self.attention_kernels_by_length is not None:
            return self.attention_kernels_by_length
        return device.type == "cuda"


PREDICTION_TYPES = ("epsilon", "v_prediction")


def to_epsilon(prediction: torch.Tensor, x_t: torch.Tensor, sqrt_a: torch.Tensor, sqrt_1a: torch.Tensor,
               prediction_type: str) -> torch.Tensor:
    """The noise prediction for a UNet output: as it is for epsilon models; from
    v = sqrt(a) eps - sqrt(1-a) x0 and x_t = sqrt(a) x0 + sqrt(1-a) eps, eps = sqrt(a) v + sqrt(1-a) x_t."""
    if prediction_type == "epsilon":
        return prediction
    if prediction_type == "v_prediction":
        return sqrt_a * prediction + sqrt_1a * x_t.float()
    raise ValueError(f"unsupported prediction type {prediction_type!r}")


@dataclass
class PromptEmbeddings:
    target: torch.Tensor  # (tokens, dim), in the UNet's dtype and device
    source: torch.Tensor
    null: torch.Tensor


@dataclass
class IterationOutput:
    update: torch.Tensor  # what the optimiser applies as x.grad, float32, shape of x
    score_grad: torch.Tensor  # (masked) V-DDS / SDS term
    ssm_grad: torch.Tensor  # d(lambda_s S-SSM + lambda_t T-SSM)/dx
    loss_s: torch.Tensor
    loss_t: torch.Tensor


class EditStep:
    """One DreamMotion iteration: given x, t and the noise, the update (x.grad) of the edited latents.

    The edit loop and bench/ both call it, so that the benchmark times the real code. Use it as a
    context manager: entering installs the key-capturing processors, the temporal-attention slicing
    and activation checkpointing on the UNet (and freezes its weights: no activation is kept for
    weight gradients); leaving restores everything.

    It edits a batch of B videos at once (``dreammotion_edit_batch``): x_src (B, C, F, h, w), mask
    (B, 1, F, h, w), target and source embeddings (B, tokens, dim) or (tokens, dim) for all, and per
    video its own timestep and noise. Each video's update is the one it would get alone (the UNet
    treats the videos of a batch independently; the SSM losses are summed over videos, not averaged).
    """

    def __init__(
        self,
        unet: torch.nn.Module,
        x_src: torch.Tensor,
        embeddings: PromptEmbeddings,
        mask: torch.Tensor,
        alphas: torch.Tensor,
        config: EditConfig,
        fast_path: FastPath | None = None,
        prediction_type: str = "epsilon",
    ):
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(
                f"the model predicts {prediction_type!r}; V-DDS needs noise predictions and can convert "
                f"from {' or '.join(PREDICTION_TYPES)} only"
            )
        self.prediction_type = prediction_type
        # Windowed edits read each window's key means as the next window's T-SSM context; other
        # edits never do, so they are computed only when asked for.
        self.record_key_means = False
        self.key_means: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.unet = unet
        self.x_src = x_src
        self.embeddings = embeddings
        self.mask = mask
        self.alphas = alphas
        self.config = config
        self.fast_path = fast_path or FastPath()
        self.frames = x_src.shape[2]
        self.device = x_src.device
        self.dtype = next(unet.parameters()).dtype
        self.use_ssm = config.lambda_s > 0 or config.lambda_t > 0
        self.layers = select_spatial_self_attention(unet, config.key_layers) if self.use_ssm else []
        self.fuse = self.fast_path.resolve_fuse(unet, self.layers, config)
        self.attention_kernels_by_length = self.fast_path.resolve_attention_kernels(self.device)
        self.checkpoint_units = (
            select_checkpoint_units(unet, self.fast_path.resolve_checkpoint(unet, self.device)) if self.use_ssm else []
        )
        self._stack = contextlib.ExitStack()
        self.capture: KeyCapture | None = None

    def __enter__(self) -> "EditStep":
        stack = self._stack
        frozen = [p for p in self.unet.parameters() if p.requires_grad]
        for p in frozen:
            p.requires_grad_(False)
        stack.callback(lambda: [p.requires_grad_(True) for p in frozen])
        if self.fast_path.chunk_temporal_attention:
            stack.enter_context(TemporalAttentionChunking(self.unet))
        if self.use_ssm:
            self.capture = stack.enter_context(KeyCapture(self.unet, self.layers))
        if self.attention_kernels_by_length:  # around the chunking and key-capturing processors
            stack.enter_context(AttentionKernelsByLength(self.unet))
        if self.fast_path.compile_conv_blocks:  # before checkpointing, which then wraps the compiled forwards
            stack.enter_context(CompiledConvBlocks(self.unet))
        if self.checkpoint_units:
            stack.enter_context(ActivationCheckpointing(self.unet, self.checkpoint_units))
        return self

    def __exit__(self, *exc) -> None:
        self.capture = None
        self._stack.close()

    def _no_grad_branches(self, x_t: torch.Tensor, x_src_t: torch.Tensor) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        """(name, latents, embedding) of the videos of the batched no-grad pass, in batch order.

        x^_t | null comes last whenever the keys are needed: the source keys are read from it.
        """
        emb, cfg = self.embeddings, self.config
        branches = [("target_cond", x_t, emb.target)]
        if not self.fuse:
            branches.append(("target_null", x_t, emb.null))
        if cfg.score == "dds":
            branches.append(("source_cond", x_src_t, emb.source))
        if cfg.score == "dds" or self.use_ssm:
            branches.append(("source_null", x_src_t, emb.null))
        return branches

    def set_window(self, x_src: torch.Tensor, mask: torch.Tensor) -> None:
        """Point the step at another window of the same length (long videos, ``dreammotion.edit.windows``):
        the hooks stay installed, only the source latents and mask change."""
        if x_src.shape != self.x_src.shape:
            raise ValueError(f"window of shape {tuple(x_src.shape)}; this step edits {tuple(self.x_src.shape)}")
        self.x_src, self.mask = x_src, mask

    def set_videos(self, x_src: torch.Tensor, mask: torch.Tensor, embeddings: PromptEmbeddings) -> None:
        """Point the step at another batch of videos of the same frame count and size (an edit of a
        batch that finished leaves it): the hooks stay installed."""
        if x_src.shape[1:] != self.x_src.shape[1:]:
            raise ValueError(f"videos of shape {tuple(x_src.shape[1:])}; this step edits {tuple(self.x_src.shape[1:])}")
        self.x_src, self.mask, self.embeddings = x_src, mask, embeddings

    @staticmethod
    def _per_video(embedding: torch.Tensor, videos: int) -> torch.Tensor:
        """(tokens, dim) for every video, or (videos, tokens, dim) -> (videos, tokens, dim)."""
        if embedding.ndim == 2:
            return embedding[None].expand(videos, -1, -1)
        if embedding.shape[0] != videos:
            raise ValueError(f"{embedding.shape[0]} prompt embeddings for {videos} videos")
        return embedding

    def __call__(
        self, x: torch.Tensor, t: int | torch.Tensor, noise: torch.Tensor,
        context: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> IterationOutput:
        """The update for x (B, C, F, h, w) at timestep t (an int, or one per video) with `noise` (x's
        shape). context: see ``ssm_gradient`` (one video only); after the call, ``key_means`` holds
        this call's (edited, source) key means per layer (when ``record_key_means``), to be a
        neighbour's context."""
        if self.use_ssm and self.capture is None:
            raise RuntimeError("EditStep must be entered (with EditStep(...) as step:) before it is called")
        if x.shape != self.x_src.shape or noise.shape != x.shape:
            raise ValueError(f"x {tuple(x.shape)} and noise {tuple(noise.shape)} for source latents "
                             f"{tuple(self.x_src.shape)}")
        cfg, unet, capture = self.config, self.unet, self.capture
        videos = x.shape[0]
        t = torch.as_tensor(t, device=self.alphas.device).reshape(-1).expand(videos)
        a = self.alphas[t].view(videos, 1, 1, 1, 1)
        sqrt_a, sqrt_1a = a.sqrt(), (1 - a).sqrt()
        timesteps = t.to(self.device)

        # 1) one batched no-grad pass: V-DDS predictions and the source videos' keys.
        with torch.no_grad():
            x_t = sqrt_a * x.detach() + sqrt_1a * noise
            x_src_t = sqrt_a * self.x_src + sqrt_1a * noise
            branches = self._no_grad_branches(x_t, x_src_t)
            batch = torch.cat([b[1] for b in branches]).to(self.dtype)
            batch_embeddings = torch.cat([self._per_video(b[2], videos) for b in branches])
            batch_timesteps = timesteps.repeat(len(branches))
            if capture is not None:
                out = capture.run(unet, batch, batch_timesteps, encoder_hidden_states=batch_embeddings, truncate=False)
                source_keys = {n: k[-videos * self.frames :] for n, k in capture.keys.items()}
            else:
                out = unet(batch, batch_timesteps, encoder_hidden_states=batch_embeddings)
            eps = {
                name: to_epsilon(pred, video, sqrt_a, sqrt_1a, self.prediction_type)
                for (name, video, _), pred in zip(branches, out.sample.float().split(videos))
            }
            del out, batch

        # 2) with-grad pass over x_t | null: S-SSM and T-SSM. Fused, it runs to the end and also
        #    gives eps(x_t, null); otherwise it stops after the last key layer.
        loss_s = loss_t = torch.zeros(videos, device=self.device)
        ssm_grad = torch.zeros_like(x)
        if capture is not None:
            x_t_grad = sqrt_a * x + sqrt_1a * noise
            out = capture.run(
                unet, x_t_grad.to(self.dtype), timesteps, encoder_hidden_states=self._per_video(self.embeddings.null, videos),
                truncate=cfg.truncate_forward and not self.fuse,
            )
            if self.fuse:
                eps["target_null"] = to_epsilon(out.sample.detach().float(), x_t, sqrt_a, sqrt_1a, self.prediction_type)
            del out  # frees what the tail after the last key layer saved for backward
            ssm_grad, loss_s, loss_t = ssm_gradient(capture.keys, source_keys, x, cfg, self.frames, gram=None,
                                                     context=context)
            if self.record_key_means:
                self.key_means = {
                    n: (frame_key_means(capture.keys[n].detach(), self.frames), frame_key_means(source_keys[n], self.frames))
                    for n in capture.keys
                }
            capture.keys = {}
            del source_keys

        with torch.no_grad():
            eps_target = eps["target_null"] + cfg.guidance_scale * (eps["target_cond"] - eps["target_null"])
            if cfg.score == "dds":
                eps_source = eps["source_null"] + cfg.guidance_scale * (eps["source_cond"] - eps["source_null"])
                score_grad = eps_target - eps_source
            else:  # SDS ablation: the target prediction against the injected noise
                score_grad = eps_target - noise
            if cfg.mask_applies_to == "vdds":
                score_grad = score_grad * self.mask
            update = score_grad + ssm_grad
            if cfg.mask_applies_to == "all":
                update = update * self.mask
        return IterationOutput(update, score_grad, ssm_grad, loss_s, loss_t)


def ssm_gradient(
    keys: dict[str, torch.Tensor],
    source_keys: dict[str, torch.Tensor],
    x: torch.Tensor,
    config: EditConfig,
    frames: int,
    *,
    gram: bool | None = None,
    context: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """d(lambda_s S-SSM + lambda_t T-SSM)/dx, and S-SSM and T-SSM per video ((B,) each), for keys
    (B * frames, HW, C) computed from x (B, C, frames, h, w) with grad.

    The loss is the sum of the videos' losses, so that each video's gradient is the one it would get
    alone; a video whose loss is not finite gets no gradient (the caller reports it).

    context: per key layer, (edited, source) key means (1, Fc, C) of frames outside x (the
    neighbouring window of a long video, one video only); T-SSM then also matches the similarities
    between x's frames and those (``temporal_cross_ssm_loss``), and the returned T-SSM includes that term.

    The gradient at the keys can be tiny (each of (HW)^2 similarity entries contributes a little; with
    a mean over entries it was ~1e-9 at ZeroScope size and underflowed to exactly zero in float16,
    bench/NOTES.md). So the loss is differentiated in float32 up to the keys first, and the UNet
    backward then runs on those key gradients multiplied, per video, by a power of two that brings the
    video's largest to [1, 2); dividing by it at the end is exact. In float32 the result is the same as
    plain autograd.
    """
    names = list(keys)
    videos = next(iter(keys.values())).shape[0] // frames
    if context and videos != 1:
        raise ValueError(f"cross-window T-SSM context is for one video; got a batch of {videos}")
    keys32 = {n: keys[n].detach().float().requires_grad_(True) for n in names}

    def video(k: torch.Tensor, index: int) -> torch.Tensor:
        return k[index * frames : (index + 1) * frames]

    loss_s = torch.stack([
        sum(spatial_ssm_loss(video(keys32[n], i), video(source_keys[n], i), gram=gram) for n in names) / len(names)
        for i in range(videos)
    ])
    loss_t = torch.stack([
        sum(temporal_ssm_loss(video(keys32[n], i), video(source_keys[n], i), frames) for n in names) / len(names)
        for i in range(videos)
    ])
    if context:
        loss_t = loss_t + sum(
            temporal_cross_ssm_loss(keys32[n], source_keys[n], frames, *context[n]) for n in names
        ) / len(names)
    totals = config.lambda_s * loss_s + config.lambda_t * loss_t
    finite = torch.isfinite(totals)
    zero = torch.zeros_like(x)
    if not finite.any():
        return zero, loss_s.detach(), loss_t.detach()
    key_grads = torch.autograd.grad(totals[finite].sum(), [keys32[n] for n in names])
    peaks = torch.stack([g.reshape(videos, -1).abs().amax(1) for g in key_grads]).amax(0).double().cpu()
    usable = (peaks > 0) & torch.isfinite(peaks)
    scale = torch.ones(videos, dtype=torch.float64)
    scale[usable] = torch.exp2(-torch.floor(torch.log2(peaks[usable])))
    per_video = (-1,) + (1,) * (x.ndim - 1)  # x is (videos, ...)
    poisoned = torch.where(torch.isfinite(peaks), 0.0, float("nan")).float().view(per_video).to(x.device)
    if not usable.any():
        return zero + poisoned, loss_s.detach(), loss_t.detach()
    per_row = scale.float().repeat_interleave(frames).view(-1, 1, 1).to(x.device)
    (grad,) = torch.autograd.grad(
        [keys[n] for n in names], x, grad_outputs=[(g * per_row).to(keys[n].dtype) for g, n in zip(key_grads, names)]
    )
    # a non-finite key gradient poisons its video's result, which the caller then reports
    return grad / scale.float().view(per_video).to(x.device) + poisoned, loss_s.detach(), loss_t.detach()


# Settings that each edit of a batch may have its own of: they act on the edit's own draws, optimiser
# and bookkeeping. Every other EditConfig field shapes the step itself, which a batch shares.
PER_EDIT_FIELDS = ("seed", "iterations", "checkpoint_every", "extra", "lr", "optimizer", "t_min", "t_max",
                   "use_mask", "divergence_factor")


@dataclass
class EditJob:
    """One edit of a batch (``dreammotion_edit_batch``). source_latents: (1, C, F, h, w); masks:
    (F, H, W) in [0, 1] at frame resolution, or None (no mask)."""

    source_latents: torch.Tensor
    source_prompt: str
    target_prompt: str
    masks: torch.Tensor | None
    config: EditConfig
    checkpoint_path: str | Path | None = None
    name: str = ""  # for messages: the manifest row id


def step_settings(config: EditConfig) -> dict:
    """The settings an edit shares with the others of its batch (all but ``PER_EDIT_FIELDS``)."""
    return {k: v for k, v in config.to_dict().items() if k not in PER_EDIT_FIELDS}


def batch_groups(jobs: list[EditJob]) -> list[list[int]]:
    """Indices of `jobs` in groups that can run as one batch, in order of first appearance: the same
    latent shape and step settings; a clip longer than its window (several windows) runs alone."""
    groups: dict[str, list[int]] = {}
    for index, job in enumerate(jobs):
        windows = Windows.for_clip(job.source_latents.shape[2], job.config.window, job.config.window_overlap)
        key = repr((tuple(job.source_latents.shape), sorted(step_settings(job.config).items())))
        if len(windows.starts) > 1:
            key = f"alone {index}"
        groups.setdefault(key, []).append(index)
    return list(groups.values())


@dataclass
class _EditState:
    """An edit of a running batch: its latents (its own leaf and optimiser) and bookkeeping."""

    job: EditJob
    x_src: torch.Tensor
    mask: torch.Tensor
    target: torch.Tensor
    source: torch.Tensor
    x: torch.Tensor
    optimizer: torch.optim.Optimizer
    fingerprint: str
    iteration: int = 0
    log: list = field(default_factory=list)
    resumed_from: int | None = None
    elapsed_before: float = 0.0
    source_std: float = 1.0
    error: Exception | None = None

    @property
    def active(self) -> bool:
        return self.error is None and self.iteration < self.job.config.iterations


def dreammotion_edit(
    model,
    source_latents: torch.Tensor,
    source_prompt: str,
    target_prompt: str,
    masks: torch.Tensor | None,
    config: EditConfig,
    *,
    checkpoint_path: str | Path | None = None,
    text_embeddings: dict[str, torch.Tensor] | None = None,
    progress: bool = True,
    progress_every: int = 0,
    fast_path: FastPath | None = None,
) -> EditResult:
    """Optimise the latents of the edited video, starting from the source latents.

    model: a ``dreammotion.models.T2VModel``. source_latents: (1, C, F, h, w). masks: (F, H, W) in
    [0, 1] at frame resolution, or None (no mask). text_embeddings: optional {prompt: (tokens, dim)}
    cache, so that many rows share one text encoder pass per prompt. progress_every: when > 0, one
    printed line every that many iterations instead of the progress bar (for log files). fast_path:
    how an iteration is computed (same result; default ``FastPath()``). A diverging edit raises
    ``NumericalError``.
    """
    job = EditJob(source_latents, source_prompt, target_prompt, masks, config, checkpoint_path)
    (result,) = dreammotion_edit_batch(model, [job], text_embeddings=text_embeddings, progress=progress,
                                       progress_every=progress_every, fast_path=fast_path)
    if isinstance(result, Exception):
        raise result
    return result


def dreammotion_edit_batch(
    model,
    jobs: list[EditJob],
    *,
    text_embeddings: dict[str, torch.Tensor] | None = None,
    progress: bool = True,
    progress_every: int = 0,
    fast_path: FastPath | None = None,
) -> list[EditResult | NumericalError]:
    """Optimise several edits as one batch: each UNet call takes all their videos, and each edit keeps
    its own prompts, mask, seed (timestep and noise draws), optimiser and checkpoint, so its result is
    the one it gets alone (up to the rounding of batched kernels; tests/test_batch_edit.py).

    The jobs must share the latent shape and step settings (``batch_groups`` sorts a list into such
    groups); a clip longer than its window runs alone. Edits resumed from checkpoints at different
    iterations run side by side, each leaving the batch when it is done. Returns, per job, its
    ``EditResult`` or the ``NumericalError`` that stopped it (the others go on).
    """
    if not jobs:
        return []
    groups = batch_groups(jobs)
    if len(groups) > 1:
        raise ValueError(
            f"these {len(jobs)} edits cannot run as one batch (latent shapes or step settings differ, or a clip "
            f"has several windows); split them with batch_groups: {groups}"
        )
    unet = model.unet
    device, dtype = model.device, model.dtype
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    config = jobs[0].config  # the step settings, which all jobs share
    alphas = model.alphas_cumprod.to(device, torch.float32)
    for job in jobs:
        if job.config.t_max >= len(alphas):
            raise ValueError(f"t_max={job.config.t_max} is beyond the model's {len(alphas)} training timesteps")
    cache = dict(text_embeddings or {})

    def embed(prompt: str) -> torch.Tensor:
        if prompt not in cache:
            cache[prompt] = model.encode_prompt([prompt])[0]
        return cache[prompt].to(device, dtype)

    states = [_start_edit(job, device, embed) for job in jobs]
    frames = states[0].x_src.shape[2]
    windows = Windows.for_clip(frames, config.window, config.window_overlap)
    first = windows.slices[0]
    prediction_type = model.scheduler.config.get("prediction_type", "epsilon")

    def batch_of(active: list[_EditState]) -> tuple[torch.Tensor, torch.Tensor, PromptEmbeddings]:
        embeddings = PromptEmbeddings(torch.stack([s.target for s in active]), torch.stack([s.source for s in active]),
                                      embed(""))
        return torch.cat([s.x_src for s in active]), torch.cat([s.mask for s in active]), embeddings

    x_src, mask, embeddings = batch_of(states)
    step = EditStep(unet, x_src[:, :, first], embeddings, mask[:, :, first], alphas, config, fast_path, prediction_type)
    rounds = max(s.job.config.iterations - s.iteration for s in states)
    done_before = min(s.iteration for s in states)
    label = "dreammotion edit" if len(jobs) == 1 else f"dreammotion edit x{len(jobs)}"
    members: list[int] = [id(s) for s in states]
    with step:
        bar = tqdm(range(rounds), desc=label, disable=not progress or progress_every > 0)
        for round_index in bar:
            active = [s for s in states if s.active]
            if not active:
                break
            if [id(s) for s in active] != members:  # an edit finished or failed: the batch shrinks
                members = [id(s) for s in active]
                x_src, mask, embeddings = batch_of(active)
                step.set_videos(x_src, mask, embeddings)
            draws = [_draws(s) for s in active]
            t = torch.tensor([d[0] for d in draws])
            noise = torch.cat([d[1] for d in draws]).to(device)
            x = torch.cat([s.x.detach() for s in active]).requires_grad_(True)
            if len(windows.starts) == 1:
                out = step(x, t, noise)
            else:  # one clip (batch_groups keeps windowed clips alone)
                grid = windows.random_offset(draws[0][2]) if config.window_grid == "random" else windows
                out = windowed_update(step, x, x_src, mask, int(t[0]), noise, grid,
                                      cross_window=config.cross_window_tssm, weighting=config.window_weighting)
            del x
            for index, state in enumerate(active):
                try:
                    _apply_update(state, out, index, int(t[index]))
                except NumericalError as err:
                    if len(jobs) == 1:
                        raise
                    state.error = err
                    print(f"[dreammotion] {state.job.name or f'edit {states.index(state)}'}: {err}", flush=True)
                    continue
                if state.job.checkpoint_path and state.iteration % state.job.config.checkpoint_every == 0 \
                        and state.active:
                    _save_checkpoint(Path(state.job.checkpoint_path), state.x, state.optimizer, state.iteration,
                                     state.fingerprint, state.log,
                                     state.elapsed_before + time.perf_counter() - started)
            lead = max(active, key=lambda s: s.iteration)
            row = lead.log[-1] if lead.log else None
            if row is not None:
                bar.set_postfix(loss_s=f"{row['loss_s']:.3g}", loss_t=f"{row['loss_t']:.3g}",
                                change=f"{row['latent_change']:.3g}")
            done = round_index + 1
            if progress_every > 0 and row is not None and ((done_before + done) % progress_every == 0 or done == rounds):
                spent = time.perf_counter() - started
                left = spent / done * (rounds - done)
                print(f"[dreammotion] iteration {done_before + done}/{done_before + rounds}: {spent:.0f} s, "
                      f"~{left:.0f} s left, loss_s={row['loss_s']:.3g} loss_t={row['loss_t']:.3g} "
                      f"change={row['latent_change']:.3g}", flush=True)

    peak, kind = peak_memory(device)
    runtime = time.perf_counter() - started
    results: list[EditResult | NumericalError] = []
    for state in states:
        if state.error is not None:
            results.append(state.error)
            continue
        log = state.log
        final = {k: log[-1][k] for k in ("loss_s", "loss_t", "vdds_grad_norm", "latent_change")} if log else {}
        results.append(EditResult(
            latents=state.x.detach().cpu(), log=log, runtime_s=state.elapsed_before + runtime,
            peak_memory_mib=peak, peak_memory_kind=kind, resumed_from=state.resumed_from, final=final,
            batch_size=len(jobs),
        ))
    return results


def _start_edit(job: EditJob, device: torch.device, embed) -> _EditState:
    """An edit's latents, optimiser and mask, resumed from its checkpoint when it has a matching one."""
    config = job.config
    x_src = job.source_latents.detach().to(device, torch.float32)
    if x_src.ndim != 5 or x_src.shape[0] != 1:
        raise ValueError(f"source latents of shape {tuple(x_src.shape)}; expected one video (1, C, F, h, w)")
    mask = latent_mask(job.masks if config.use_mask else None, tuple(x_src.shape)).to(device)
    x = x_src.clone().requires_grad_(True)
    optimizer = torch.optim.SGD([x], lr=config.lr) if config.optimizer == "sgd" else torch.optim.Adam([x], lr=config.lr)
    state = _EditState(job, x_src, mask, embed(job.target_prompt), embed(job.source_prompt), x, optimizer,
                       config.fingerprint())
    path = Path(job.checkpoint_path) if job.checkpoint_path else None
    saved = _load_checkpoint(path, state.fingerprint, tuple(x.shape), config.iterations) if path else None
    if saved is not None:
        with torch.no_grad():
            x.copy_(saved["x"].to(device))
        optimizer.load_state_dict(saved["optimizer"])
        state.iteration = state.resumed_from = saved["iteration"]
        state.log = saved["log"]
        state.elapsed_before = saved["elapsed_s"]
    state.source_std = float(x_src.std()) or 1.0
    return state


def _draws(state: _EditState) -> tuple[int, torch.Tensor, torch.Generator]:
    """The edit's timestep and noise at its current iteration (from its own seed), and the generator
    that drew them, for what else the iteration draws after them (the window grid's offset)."""
    config = state.job.config
    gen = _iteration_generator(config.seed, state.iteration)
    t = int(torch.randint(config.t_min, config.t_max + 1, (1,), generator=gen))
    shape = list(state.x.shape)
    if config.window_noise == "window" and 0 < config.window < shape[2]:
        shape[2] = config.window  # one window's noise, which windowed_update gives every window
    return t, torch.randn(shape, generator=gen), gen


def _apply_update(state: _EditState, out: IterationOutput, index: int, t: int) -> None:
    """The optimiser step of video `index` of the batch's output, its log row and divergence check."""
    it, config = state.iteration, state.job.config
    part = slice(index, index + 1)
    loss_s, loss_t = out.loss_s.reshape(-1)[index], out.loss_t.reshape(-1)[index]
    _check_finite(it, loss_s=loss_s, loss_t=loss_t)
    _check_finite(it, vdds_gradient=out.score_grad[part], ssm_gradient=out.ssm_grad[part])
    state.x.grad = out.update[part]
    state.optimizer.step()
    state.optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():
        change = float((state.x - state.x_src).std())
    state.log.append({
        "iteration": it,
        "t": t,
        "vdds_grad_norm": float(out.score_grad[part].norm()),
        "loss_s": float(loss_s),
        "loss_t": float(loss_t),
        "ssm_grad_norm": float(out.ssm_grad[part].norm()),
        "update_norm": float(out.update[part].norm()),
        "latent_change": change,
    })
    state.iteration = it + 1
    if not math.isfinite(change) or change > config.divergence_factor * state.source_std:
        raise NumericalError(
            f"iteration {it}: the edit diverged (latent change std {change:.3g} > "
            f"{config.divergence_factor} x source std {state.source_std:.3g}); lower lr"
        )


def _save_checkpoint(path: Path, x, optimizer, iteration: int, fingerprint: str, log: list[dict], elapsed_s: float) -> None:
    state = {
        "x": x.detach().cpu(),
        "optimizer": optimizer.state_dict(),
        "iteration": iteration,
        "fingerprint": fingerprint,
        "log": log,
        "elapsed_s": elapsed_s,
    }
    with atomic_path(path) as tmp:  # the previous checkpoint is replaced whole: only the last is kept
        torch.save(state, tmp)
