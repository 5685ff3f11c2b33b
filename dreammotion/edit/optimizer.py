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
    KeyCapture,
    TemporalAttentionChunking,
    select_checkpoint_units,
    select_spatial_self_attention,
)
from dreammotion.edit.losses import frame_key_means, spatial_ssm_loss, temporal_cross_ssm_loss, temporal_ssm_loss
from dreammotion.edit.windows import Windows, windowed_update
from dreammotion.errors import NumericalError
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
    """

    fuse_null_branch: bool | None = None
    checkpoint: tuple[str, ...] | None = None
    chunk_temporal_attention: bool = True

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

    def __call__(
        self, x: torch.Tensor, t: int, noise: torch.Tensor, context: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None
    ) -> IterationOutput:
        """The update for x at timestep t with `noise`. context: see ``ssm_gradient``; after the call,
        ``key_means`` holds this call's (edited, source) key means per layer (when ``record_key_means``),
        to be a neighbour's context."""
        if self.use_ssm and self.capture is None:
            raise RuntimeError("EditStep must be entered (with EditStep(...) as step:) before it is called")
        cfg, unet, capture = self.config, self.unet, self.capture
        a = self.alphas[t]
        sqrt_a, sqrt_1a = a.sqrt(), (1 - a).sqrt()

        # 1) one batched no-grad pass: V-DDS predictions and the source video's keys.
        with torch.no_grad():
            x_t = sqrt_a * x.detach() + sqrt_1a * noise
            x_src_t = sqrt_a * self.x_src + sqrt_1a * noise
            branches = self._no_grad_branches(x_t, x_src_t)
            batch = torch.cat([b[1] for b in branches]).to(self.dtype)
            batch_embeddings = torch.stack([b[2] for b in branches])
            timesteps = torch.full((batch.shape[0],), t, device=self.device)
            if capture is not None:
                out = capture.run(unet, batch, timesteps, encoder_hidden_states=batch_embeddings, truncate=False)
                source_keys = {n: k[-self.frames :] for n, k in capture.keys.items()}
            else:
                out = unet(batch, timesteps, encoder_hidden_states=batch_embeddings)
            eps = {
                name: to_epsilon(pred, video[0], sqrt_a, sqrt_1a, self.prediction_type)
                for (name, video, _), pred in zip(branches, out.sample.float())
            }
            del out, batch

        # 2) with-grad pass over x_t | null: S-SSM and T-SSM. Fused, it runs to the end and also
        #    gives eps(x_t, null); otherwise it stops after the last key layer.
        loss_s = loss_t = torch.zeros((), device=self.device)
        ssm_grad = torch.zeros_like(x)
        if capture is not None:
            x_t_grad = sqrt_a * x + sqrt_1a * noise
            out = capture.run(
                unet, x_t_grad.to(self.dtype), timesteps[:1], encoder_hidden_states=self.embeddings.null[None],
                truncate=cfg.truncate_forward and not self.fuse,
            )
            if self.fuse:
                eps["target_null"] = to_epsilon(
                    out.sample.detach().float()[0], x_t[0], sqrt_a, sqrt_1a, self.prediction_type
                )
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
                score_grad = (eps_target - eps_source)[None]
            else:  # SDS ablation: the target prediction against the injected noise
                score_grad = (eps_target - noise[0])[None]
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
    """d(lambda_s S-SSM + lambda_t T-SSM)/dx, S-SSM and T-SSM, for keys computed from x with grad.

    context: per key layer, (edited, source) key means (batch, Fc, C) of frames outside x (the
    neighbouring window of a long video); T-SSM then also matches the similarities between x's frames
    and those (``temporal_cross_ssm_loss``), and the returned T-SSM includes that term.

    The gradient at the keys can be tiny (each of (HW)^2 similarity entries contributes a little; with
    a mean over entries it was ~1e-9 at ZeroScope size and underflowed to exactly zero in float16,
    bench/NOTES.md). So the loss is
    differentiated in float32 up to the keys first, and the UNet backward then runs on those key
    gradients multiplied by a power of two that brings the largest to [1, 2); dividing by it at the end
    is exact. In float32 the result is the same as plain autograd.
    """
    names = list(keys)
    keys32 = {n: keys[n].detach().float().requires_grad_(True) for n in names}
    loss_s = sum(spatial_ssm_loss(keys32[n], source_keys[n], gram=gram) for n in names) / len(names)
    loss_t = sum(temporal_ssm_loss(keys32[n], source_keys[n], frames) for n in names) / len(names)
    if context:
        loss_t = loss_t + sum(
            temporal_cross_ssm_loss(keys32[n], source_keys[n], frames, *context[n]) for n in names
        ) / len(names)
    total = config.lambda_s * loss_s + config.lambda_t * loss_t
    zero = torch.zeros_like(x)
    if not torch.isfinite(total):
        return zero, loss_s.detach(), loss_t.detach()  # the caller reports the non-finite loss
    key_grads = torch.autograd.grad(total, [keys32[n] for n in names])
    peak = float(max(g.abs().max() for g in key_grads))
    if peak == 0 or not math.isfinite(peak):
        return (zero if peak == 0 else zero + float("nan")), loss_s.detach(), loss_t.detach()
    scale = 2.0 ** -math.floor(math.log2(peak))
    (grad,) = torch.autograd.grad(
        [keys[n] for n in names], x, grad_outputs=[(g * scale).to(keys[n].dtype) for g, n in zip(key_grads, names)]
    )
    return grad / scale, loss_s.detach(), loss_t.detach()


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
    how an iteration is computed (same result; default ``FastPath()``).
    """
    unet = model.unet
    device, dtype = model.device, model.dtype
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()

    x_src = source_latents.detach().to(device, torch.float32)
    mask = latent_mask(masks if config.use_mask else None, tuple(x_src.shape)).to(device)
    windows = Windows.for_clip(x_src.shape[2], config.window, config.window_overlap)
    first = windows.slices[0]

    def embed(prompt: str) -> torch.Tensor:
        if text_embeddings is not None and prompt in text_embeddings:
            return text_embeddings[prompt].to(device, dtype)
        return model.encode_prompt([prompt])[0].to(device, dtype)

    embeddings = PromptEmbeddings(target=embed(target_prompt), source=embed(source_prompt), null=embed(""))
    alphas = model.alphas_cumprod.to(device, torch.float32)
    if config.t_max >= len(alphas):
        raise ValueError(f"t_max={config.t_max} is beyond the model's {len(alphas)} training timesteps")
    prediction_type = model.scheduler.config.get("prediction_type", "epsilon")
    step = EditStep(unet, x_src[:, :, first], embeddings, mask[:, :, first], alphas, config, fast_path, prediction_type)

    x = x_src.clone().requires_grad_(True)
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD([x], lr=config.lr)
    else:
        optimizer = torch.optim.Adam([x], lr=config.lr)

    fingerprint = config.fingerprint()
    checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
    log: list[dict] = []
    start, resumed_from, elapsed_before = 0, None, 0.0
    state = (
        _load_checkpoint(checkpoint_path, fingerprint, tuple(x.shape), config.iterations) if checkpoint_path else None
    )
    if state is not None:
        with torch.no_grad():
            x.copy_(state["x"].to(device))
        optimizer.load_state_dict(state["optimizer"])
        start = resumed_from = state["iteration"]
        log = state["log"]
        elapsed_before = state["elapsed_s"]

    source_std = float(x_src.std()) or 1.0
    with step:
        bar = tqdm(range(start, config.iterations), desc="dreammotion edit",
                   disable=not progress or progress_every > 0, initial=start, total=config.iterations)
        for it in bar:
            gen = _iteration_generator(config.seed, it)
            t = int(torch.randint(config.t_min, config.t_max + 1, (1,), generator=gen))
            noise = torch.randn(x.shape, generator=gen).to(device)
            if len(windows.starts) == 1:
                out = step(x, t, noise)
            else:
                out = windowed_update(step, x, x_src, mask, t, noise, windows, cross_window=config.cross_window_tssm)
            _check_finite(it, loss_s=out.loss_s, loss_t=out.loss_t)
            _check_finite(it, vdds_gradient=out.score_grad, ssm_gradient=out.ssm_grad)
            x.grad = out.update
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

            with torch.no_grad():
                change = float((x - x_src).std())
            row = {
                "iteration": it,
                "t": t,
                "vdds_grad_norm": float(out.score_grad.norm()),
                "loss_s": float(out.loss_s),
                "loss_t": float(out.loss_t),
                "ssm_grad_norm": float(out.ssm_grad.norm()),
                "update_norm": float(out.update.norm()),
                "latent_change": change,
            }
            log.append(row)
            bar.set_postfix(loss_s=f"{row['loss_s']:.3g}", loss_t=f"{row['loss_t']:.3g}", change=f"{change:.3g}")
            if progress_every > 0 and ((it + 1) % progress_every == 0 or it + 1 == config.iterations):
                spent = time.perf_counter() - started
                left = spent / (it + 1 - start) * (config.iterations - it - 1)
                print(f"[dreammotion] iteration {it + 1}/{config.iterations}: {spent:.0f} s, ~{left:.0f} s left, "
                      f"loss_s={row['loss_s']:.3g} loss_t={row['loss_t']:.3g} change={change:.3g}", flush=True)
            if not math.isfinite(change) or change > config.divergence_factor * source_std:
                raise NumericalError(
                    f"iteration {it}: the edit diverged (latent change std {change:.3g} > "
                    f"{config.divergence_factor} x source std {source_std:.3g}); lower lr"
                )
            if checkpoint_path and (it + 1) % config.checkpoint_every == 0 and it + 1 < config.iterations:
                _save_checkpoint(checkpoint_path, x, optimizer, it + 1, fingerprint, log,
                                 elapsed_before + time.perf_counter() - started)

    peak, kind = peak_memory(device)
    final = {k: log[-1][k] for k in ("loss_s", "loss_t", "vdds_grad_norm", "latent_change")} if log else {}
    return EditResult(
        latents=x.detach().cpu(),
        log=log,
        runtime_s=elapsed_before + time.perf_counter() - started,
        peak_memory_mib=peak,
        peak_memory_kind=kind,
        resumed_from=resumed_from,
        final=final,
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
