"""The short attentions alone: forward + backward of each kind at the embedded prior's shapes.

    python bench/prior/frame_attention.py --out bench/prior/frame_attention.json [--batch 1024]

For each temporal attention of the base prior (``transformer_in``: 8 heads of 32 over 16x16
positions; the temporal transformers of levels 1 and 2: 96 and 128 channels over 8x8 and 4x4), the
attention core (projections excluded) on bf16 (N, 8, C) inputs, timed as forward + backward:

- ``math``: ``AttnProcessor``'s arithmetic (baddbmm, fp32 softmax, bmm), eager;
- ``broadcast``: ``FrameAttnProcessor``'s arithmetic under ``torch.compile``, as training compiles it;
- ``fused``: the Triton kernels (``dreammotion.models.frame_attention``), once per ``--configs``
  entry TILExWARPS (values per (rows, frames, head size) register tile, and warps per program;
  keys ``fused_TILExWARPS``; the shipped setting is ``kernel_setting()``).

And the spatial self-attention of levels 2 and 1 (B x 8 sequences of 16 and 64 positions), where
``math`` and ``fused`` are set against ``sdpa`` (flash attention, called as diffusers' default
processor calls it in training), for ``train.py --fused-spatial-levels``. The kernel setting is
one for all layers, so the spatial layers run the fused kernels only at the setting that is fastest
at the largest temporal layer (``fastest_fused_config``), the one the training step would use.

Also the largest error of each against an fp32 matmul reference. Times are CUDA-event medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from dreammotion.models import frame_attention as fa
from dreammotion.models.attention import broadcast_attention
from dreammotion.prior import train

FRAMES = train.FRAMES


def layer_shapes(batch: int) -> list[tuple[str, int, int, int, int]]:
    """(name, sequences, sequence length, heads, head size) of the base prior's temporal attentions,
    then of its spatial self-attentions."""
    side, channels, head = train.LATENT_SIZE, train.PRESETS["base"][0], train.PRESETS["base"][3]
    shapes = [("transformer_in", batch * side * side, FRAMES, 8, head)]
    for level, width in enumerate(channels[1:], start=1):
        positions = (side // 2 ** level) ** 2
        shapes.append((f"temporal level {level}", batch * positions, FRAMES, width // head, head))
    # the 16-position level before the 64-position one: its kernels compile faster (the loop over
    # keys is unrolled), so a call cut off by its time limit has it
    for level, width in reversed(list(enumerate(channels[1:], start=1))):
        positions = (side // 2 ** level) ** 2
        shapes.append((f"spatial level {level}", batch * FRAMES, positions, width // head, head))
    return shapes


def split(t: torch.Tensor, heads: int) -> torch.Tensor:
    n, frames, channels = t.shape
    return t.view(n, frames, heads, channels // heads).transpose(1, 2).reshape(n * heads, frames, channels // heads)


def merge(t: torch.Tensor, n: int, heads: int) -> torch.Tensor:
    frames, size = t.shape[1:]
    return t.view(n, heads, frames, size).transpose(1, 2).reshape(n, frames, heads * size)


def math_core(q, k, v, heads, scale):
    n = q.shape[0]
    q, k, v = (split(t, heads) for t in (q, k, v))
    scores = torch.baddbmm(torch.empty(q.shape[0], q.shape[1], k.shape[1], dtype=q.dtype, device=q.device),
                           q, k.transpose(-1, -2), beta=0, alpha=scale)
    return merge(torch.bmm(scores.float().softmax(-1).to(v.dtype), v), n, heads)


def sdpa_core(q, k, v, heads, scale):
    """As ``AttnProcessor2_0``: head-split views in, one copy of the output out."""
    n, length, channels = q.shape
    q, k, v = (t.view(n, length, heads, channels // heads).transpose(1, 2) for t in (q, k, v))
    return F.scaled_dot_product_attention(q, k, v, scale=scale).transpose(1, 2).reshape(n, length, channels)


def reference(q, k, v, heads, scale):
    q, k, v = (t.float() for t in (q, k, v))
    n = q.shape[0]
    q, k, v = (split(t, heads) for t in (q, k, v))
    return merge(((q @ k.transpose(-1, -2)) * scale).softmax(-1) @ v, n, heads)


def time_ms(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def measure(core, q, k, v, grad_out, heads, scale, repeats):
    leaves = [t.detach().clone().requires_grad_(True) for t in (q, k, v)]

    def forward_backward():
        for t in leaves:
            t.grad = None
        core(*leaves, heads, scale).backward(grad_out)

    milliseconds = time_ms(forward_backward, repeats)
    with torch.no_grad():
        forward_ms = time_ms(lambda: core(*leaves, heads, scale), repeats)
    forward_backward()
    expected_leaves = [t.detach().float().requires_grad_(True) for t in (q, k, v)]
    expected = reference(*expected_leaves, heads, scale)
    expected.backward(grad_out.float())
    with torch.no_grad():
        out = core(*leaves, heads, scale)
    errors = {"out": (out.float() - expected).abs().max().item()}
    for name, got, want in zip(("grad_q", "grad_k", "grad_v"), leaves, expected_leaves):
        errors[name] = (got.grad.float() - want.grad).abs().max().item()
    return {"forward_backward_ms": round(milliseconds, 3), "forward_ms": round(forward_ms, 3),
            "max_abs_error": {k: float(f"{v:.3g}") for k, v in errors.items()}}


def fastest_fused_config(layers: dict) -> str:
    """The fused setting with the fastest forward + backward at the largest temporal layer, as
    TILExWARPS (throughput.py's --frame-attention)."""
    largest = max((layer for name, layer in layers.items() if not name.startswith("spatial")),
                  key=lambda layer: layer["sequences"] * layer["heads"])
    fastest = min((key for key in largest if key.startswith("fused_")),
                  key=lambda key: largest[key]["forward_backward_ms"])
    return fastest.removeprefix("fused_")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--batch", type=int, default=1024, help="clips per training batch")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--configs", default="4096x4,8192x4,8192x8,16384x8",
                        help="comma-separated TILExWARPS settings of the fused kernels to time")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("bench/prior/frame_attention.py needs a CUDA GPU")
    configs = args.configs.split(",")
    compiled_broadcast = torch.compile(broadcast_attention)
    shipped = fa.kernel_setting()
    layers = {}
    torch.backends.cuda.enable_cudnn_sdp(False)  # as training sets it: sdpa is flash attention
    for name, n, length, heads, size in layer_shapes(args.batch):
        generator = torch.Generator(device="cuda").manual_seed(0)
        q, k, v, grad_out = (torch.randn(n, length, heads * size, device="cuda", generator=generator,
                                         dtype=torch.bfloat16) for _ in range(4))
        scale = size ** -0.5
        spatial = name.startswith("spatial")
        # the broadcast form materialises (N, L, L, heads, size) products: for 8 frames, not 64 positions
        other_name, other_core = ("sdpa", sdpa_core) if spatial else ("broadcast_compiled", compiled_broadcast)
        result = {"sequences": n, "length": length, "heads": heads, "head_size": size,
                  "math": measure(math_core, q, k, v, grad_out, heads, scale, args.repeats),
                  other_name: measure(other_core, q, k, v, grad_out, heads, scale, args.repeats)}
        for setting in [fastest_fused_config(layers)] if spatial else configs:
            fa.use_kernel_setting(setting)
            result[f"fused_{setting}"] = measure(fa.frame_attention, q, k, v, grad_out, heads, scale, args.repeats)
        fa.use_kernel_setting(shipped)
        # what a bandwidth-bound kernel must move: forward reads q, k, v and writes out; backward reads
        # q, k, v, out, grad_out and writes three gradients (bf16)
        result["bytes_forward_backward"] = 12 * q.numel() * q.element_size()
        layers[name] = result
        print(name, json.dumps(result), flush=True)
        # Written after every layer, the largest first: a call cut off by its time limit keeps the
        # kernel setting to use and what else it measured.
        report = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "batch": args.batch,
                  "shipped_kernel_setting": shipped,
                  "command": "python bench/prior/frame_attention.py " + " ".join(sys.argv[1:] if argv is None else argv),
                  "layers": layers, "fastest_fused_config": fastest_fused_config(layers)}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
