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
"""

from __future__ import annotations

import math
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from dreammotion.edit.config import EditConfig
from dreammotion.edit.hooks import KeyCapture, select_spatial_self_attention
from dreammotion.edit.losses import spatial_ssm_loss, temporal_ssm_loss
from dreammotion.errors import NumericalError
from dreammotion.utils.atomic import atomic_path

LOG_FIELDS = (
    "iteration",
    "t",
    "vdds_grad_norm",
    "loss_s",
    "loss_t",
    "ssm_grad_norm",
    "update_norm",
    "latent_change",
)


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


def _peak_memory(device: torch.device) -> tuple[float, str]:
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
) -> EditResult:
    """Optimise the latents of the edited video, starting from the source latents.

    model: a ``dreammotion.models.T2VModel``. source_latents: (1, C, F, h, w). masks: (F, H, W) in
    [0, 1] at frame resolution, or None (no mask). text_embeddings: optional {prompt: (tokens, dim)}
    cache, so that many rows share one text encoder pass per prompt.
    """
    unet = model.unet
    device, dtype = model.device, model.dtype
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()

    x_src = source_latents.detach().to(device, torch.float32)
    frames = x_src.shape[2]
    mask = latent_mask(masks if config.use_mask else None, tuple(x_src.shape)).to(device)

    def embed(prompt: str) -> torch.Tensor:
        if text_embeddings is not None and prompt in text_embeddings:
            return text_embeddings[prompt].to(device, dtype)
        return model.encode_prompt([prompt])[0].to(device, dtype)

    emb_target, emb_source, emb_null = embed(target_prompt), embed(source_prompt), embed("")
    use_ssm = config.lambda_s > 0 or config.lambda_t > 0
    layers = select_spatial_self_attention(unet, config.key_layers) if use_ssm else []
    alphas = model.alphas_cumprod.to(device, torch.float32)
    if config.t_max >= len(alphas):
        raise ValueError(f"t_max={config.t_max} is beyond the model's {len(alphas)} training timesteps")

    x = x_src.clone().requires_grad_(True)
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD([x], lr=config.lr)
    else:
        optimizer = torch.optim.Adam([x], lr=config.lr)

    fingerprint = config.fingerprint()
    checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
    log: list[dict] = []
    start, resumed_from, elapsed_before = 0, None, 0.0
    state = _load_checkpoint(checkpoint_path, fingerprint, tuple(x.shape), config.iterations) if checkpoint_path else None
    if state is not None:
        with torch.no_grad():
            x.copy_(state["x"].to(device))
        optimizer.load_state_dict(state["optimizer"])
        start = resumed_from = state["iteration"]
        log = state["log"]
        elapsed_before = state["elapsed_s"]

    source_std = float(x_src.std()) or 1.0
    batch_embeddings = (
        torch.stack([emb_target, emb_null, emb_source, emb_null])
        if config.score == "dds"
        else torch.stack([emb_target, emb_null, emb_null])
    )
    capture = KeyCapture(unet, layers) if use_ssm else None
    if capture is not None:
        capture.__enter__()
    try:
        bar = tqdm(range(start, config.iterations), desc="dreammotion edit", disable=not progress,
                   initial=start, total=config.iterations)
        for it in bar:
            gen = _iteration_generator(config.seed, it)
            t = int(torch.randint(config.t_min, config.t_max + 1, (1,), generator=gen))
            noise = torch.randn(x.shape, generator=gen).to(device)
            a = alphas[t]
            sqrt_a, sqrt_1a = a.sqrt(), (1 - a).sqrt()

            # 1) one batched no-grad pass: V-DDS predictions and the source video's keys.
            with torch.no_grad():
                x_t = sqrt_a * x.detach() + sqrt_1a * noise
                x_src_t = sqrt_a * x_src + sqrt_1a * noise
                inputs = [x_t, x_t, x_src_t, x_src_t] if config.score == "dds" else [x_t, x_t, x_src_t]
                batch = torch.cat(inputs).to(dtype)
                timesteps = torch.full((batch.shape[0],), t, device=device)
                if capture is not None:
                    eps = capture.run(unet, batch, timesteps, encoder_hidden_states=batch_embeddings, truncate=False).sample
                    # the last batch entry is x^_t under the null prompt
                    source_keys = {n: k[-frames:] for n, k in capture.keys.items()}
                else:
                    eps = unet(batch, timesteps, encoder_hidden_states=batch_embeddings).sample
                eps = eps.float()
                eps_target = eps[1] + config.guidance_scale * (eps[0] - eps[1])
                if config.score == "dds":
                    eps_source = eps[3] + config.guidance_scale * (eps[2] - eps[3])
                    score_grad = (eps_target - eps_source)[None]
                else:  # SDS ablation: the target prediction against the injected noise
                    score_grad = (eps_target - noise[0])[None]
            if config.mask_applies_to == "vdds":
                score_grad = score_grad * mask

            # 2) with-grad pass over x_t, stopped after the last key layer: S-SSM and T-SSM.
            loss_s = loss_t = torch.zeros((), device=device)
            ssm_grad = torch.zeros_like(x)
            if capture is not None:
                x_t = sqrt_a * x + sqrt_1a * noise
                capture.run(
                    unet, x_t.to(dtype), timesteps[:1], encoder_hidden_states=emb_null[None], truncate=config.truncate_forward
                )
                loss_s = sum(spatial_ssm_loss(capture.keys[n], source_keys[n]) for n in layers) / len(layers)
                loss_t = sum(temporal_ssm_loss(capture.keys[n], source_keys[n], frames) for n in layers) / len(layers)
                total = config.lambda_s * loss_s + config.lambda_t * loss_t
                _check_finite(it, loss_s=loss_s, loss_t=loss_t)
                (ssm_grad,) = torch.autograd.grad(total, x)
                capture.keys = {}

            update = score_grad + ssm_grad
            if config.mask_applies_to == "all":
                update = update * mask
            _check_finite(it, vdds_gradient=score_grad, ssm_gradient=ssm_grad)
            x.grad = update
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

            with torch.no_grad():
                change = float((x - x_src).std())
            row = {
                "iteration": it,
                "t": t,
                "vdds_grad_norm": float(score_grad.norm()),
                "loss_s": float(loss_s.detach()),
                "loss_t": float(loss_t.detach()),
                "ssm_grad_norm": float(ssm_grad.norm()),
                "update_norm": float(update.norm()),
                "latent_change": change,
            }
            log.append(row)
            bar.set_postfix(loss_s=f"{row['loss_s']:.3g}", loss_t=f"{row['loss_t']:.3g}", change=f"{change:.3g}")
            if not math.isfinite(change) or change > config.divergence_factor * source_std:
                raise NumericalError(
                    f"iteration {it}: the edit diverged (latent change std {change:.3g} > "
                    f"{config.divergence_factor} x source std {source_std:.3g}); lower lr"
                )
            if checkpoint_path and (it + 1) % config.checkpoint_every == 0 and it + 1 < config.iterations:
                _save_checkpoint(checkpoint_path, x, optimizer, it + 1, fingerprint, log,
                                 elapsed_before + time.perf_counter() - started)
    finally:
        if capture is not None:
            capture.__exit__(None, None, None)

    peak, kind = _peak_memory(device)
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
