"""The matmul-class kernels of one DreamMotion iteration at ZeroScope size, shape by shape (issue 16).

Records every attention, matrix-multiply and convolution op of one iteration of ours (``EditStep`` with
the CUDA default ``FastPath()``; forward, recomputation and backward alike, at the aten level), groups
them by shape, and times each shape on its own with each kernel choice that could replace it:

- attention: each SDPA backend (flash, memory-efficient, math, cuDNN), forward and backward;
- matrix multiplies (the linear layers): float16 against float8 (``torch._scaled_mm``, e4m3 operands
  scaled per tensor; the activation or gradient is quantised in the timed call, the weight beforehand,
  as frozen weights would be);
- convolutions: float16 (cuDNN), and as a lower bound for a float8 convolution, which PyTorch does not
  have, a float8 GEMM of the convolution's implicit-GEMM size (no im2col, no layout work counted).

Multiplying by the counts gives each class's time per iteration with each choice: what the iteration
would cost if only these kernels changed. Writes one JSON and prints a table.

    python3 bench/kernels.py --preset zeroscope --frames 24 --out $OUT/kernels_24f.json   # on the GPU
    python3 bench/kernels.py --preset cpu-smoke --out /tmp/kernels.json                  # CPU check, seconds
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dreammotion_bench import PRESETS, build_unet, edit_step, make_problem, time_step, timings  # noqa: E402

from dreammotion.edit.optimizer import FastPath, default_checkpoint_patterns  # noqa: E402

aten = torch.ops.aten
ATTENTION_BACKENDS = ("flash", "efficient", "math", "cudnn")
# cuDNN's SDPA backward has failed on the lent GPUs (device notes): opt-in, and timed after the others
DEFAULT_BACKENDS = ("flash", "efficient", "math")
FP8_MAX = 448.0  # largest finite float8 e4m3fn value
E5M2_MAX = 57344.0
BOUNDS = ("float8_gemm_only", "float8_gemm_bound")


# --- recording ---------------------------------------------------------------------------------------


def _shape(t) -> tuple[int, ...]:
    return tuple(t.shape)


class OpRecorder(TorchDispatchMode):
    """Counts the attention, matmul and convolution ops that run below autograd, keyed by kind and shape."""

    def __init__(self):
        super().__init__()
        self.counts: Counter = Counter()
        self.other = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        key = self.key(func, args)
        if key is None:
            self.other += 1
        else:
            self.counts[key] += 1
        return func(*args, **kwargs)

    @staticmethod
    def key(func, args):
        name = func.__name__  # e.g. "_scaled_dot_product_flash_attention.default"
        if "attention" in name and ("scaled_dot_product" in name or "efficient_attention" in name
                                    or "flash_attention" in name or "cudnn_attention" in name):
            backward = "backward" in name
            q, k, v = (args[1], args[2], args[3]) if backward else (args[0], args[1], args[2])
            b, h, lq, d = _shape(q)
            ran = next((backend for backend in ("flash", "efficient", "cudnn") if backend in name), "math")
            return ("attention_backward" if backward else "attention", b, h, lq, _shape(k)[2], d, str(q.dtype), ran)
        if func in (aten.mm.default, aten.addmm.default):
            a, b = (args[0], args[1]) if func is aten.mm.default else (args[1], args[2])
            return ("matmul", a.shape[0], a.shape[1], b.shape[1], str(a.dtype))
        if func in (aten.bmm.default, aten.baddbmm.default):
            a, b = (args[0], args[1]) if func is aten.bmm.default else (args[1], args[2])
            return ("bmm", a.shape[0], a.shape[1], a.shape[2], b.shape[2], str(a.dtype))
        if func is aten.convolution.default:
            x, w = args[0], args[1]
            stride, padding, dilation, transposed, _, groups = args[3:9]
            if transposed or groups != 1:
                return ("convolution_other", _shape(x), _shape(w))
            return ("convolution", _shape(x), _shape(w), tuple(stride), tuple(padding), tuple(dilation), str(x.dtype))
        if func is aten.convolution_backward.default:
            x, w = args[1], args[2]  # args[0] is the incoming gradient
            stride, padding, dilation, transposed, _, groups, mask = args[4:11]
            if transposed or groups != 1:
                return ("convolution_other", _shape(x), _shape(w))
            return ("convolution_backward", _shape(x), _shape(w), tuple(stride), tuple(padding), tuple(dilation),
                    str(x.dtype), tuple(bool(m) for m in mask))
        return None


def record_iteration(step, problem) -> OpRecorder:
    recorder = OpRecorder()
    with recorder:
        step(problem.x, problem.t, problem.noise)
    return recorder


# --- timing one shape --------------------------------------------------------------------------------


def timed(fn, device, warmup: int, reps: int) -> float:
    """Median seconds of fn()."""
    return statistics.median(timings(fn, device, warmup, reps))


def _try(fn) -> dict:
    try:
        return {"s": fn()}
    except Exception as err:  # a backend that does not take a shape is a result, not a crash
        return {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"}


def _backend(name: str):
    from torch.nn.attention import SDPBackend

    return {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
            "math": SDPBackend.MATH, "cudnn": SDPBackend.CUDNN_ATTENTION}[name]


def time_attention(b, h, lq, lk, d, dtype, device, backend: str, warmup: int, reps: int) -> dict:
    """Forward and backward (gradient of q, k and v) seconds of one SDPA call, laid out as diffusers
    lays it out: (batch, tokens, heads, head size) transposed to (batch, heads, tokens, head size)."""
    from torch.nn.attention import sdpa_kernel

    def make(length, grad):
        return torch.randn(b, length, h, d, device=device, dtype=dtype).transpose(1, 2).requires_grad_(grad)

    out = {}
    with sdpa_kernel(_backend(backend)):
        q, k, v = make(lq, False), make(lk, False), make(lk, False)
        out["forward"] = _try(lambda: timed(lambda: F.scaled_dot_product_attention(q, k, v), device, warmup, reps))
        if "s" in out["forward"]:
            qg, kg, vg = make(lq, True), make(lk, True), make(lk, True)
            o = F.scaled_dot_product_attention(qg, kg, vg)
            grad = torch.randn_like(o)
            out["backward"] = _try(lambda: timed(lambda: torch.autograd.grad(o, (qg, kg, vg), grad, retain_graph=True),
                                                 device, warmup, reps))
    return out


def fp8_supported(device) -> str | None:
    """None when float8 GEMMs run here, else why not."""
    if device.type != "cuda":
        return "float8 GEMMs (torch._scaled_mm) need a CUDA GPU"
    if torch.cuda.get_device_capability(device) < (8, 9):
        return "float8 GEMMs need compute capability 8.9 or newer"
    return None


def _round16(n: int) -> int:
    return max(16, -(-n // 16) * 16)


def _short(dtype: str) -> str:
    return dtype.split(".")[-1]  # "torch.float16" -> "float16": the model's own dtype, the baseline


def time_matmul_model_dtype(m, k, n, dtype, device, warmup, reps) -> float:
    a = torch.randn(m, k, device=device, dtype=dtype)
    w = torch.randn(n, k, device=device, dtype=dtype)  # a linear layer's weight, used transposed
    return timed(lambda: torch.mm(a, w.t()), device, warmup, reps)


def time_bmm(batch, m, k, n, dtype, device, warmup, reps) -> float:
    a = torch.randn(batch, m, k, device=device, dtype=dtype)
    b = torch.randn(batch, k, n, device=device, dtype=dtype)
    return timed(lambda: torch.bmm(a, b), device, warmup, reps)


def time_matmul_fp8(m, k, n, device, warmup, reps, quantise: bool, a_format=torch.float8_e4m3fn) -> float:
    """A float8 GEMM of (m, k) x (k, n), dims rounded up to multiples of 16 as _scaled_mm requires; with
    `quantise`, the timed call also scales and casts the float16 activation (a per-tensor amax)."""
    m, k, n = _round16(m), _round16(k), _round16(n)
    a16 = torch.randn(m, k, device=device, dtype=torch.float16)
    w8 = torch.randn(n, k, device=device, dtype=torch.float16).to(torch.float8_e4m3fn)  # column-major once transposed
    one = torch.ones((), device=device)
    a_max = FP8_MAX if a_format is torch.float8_e4m3fn else E5M2_MAX

    def gemm(a8, scale_a):
        return torch._scaled_mm(a8, w8.t(), scale_a=scale_a, scale_b=one, out_dtype=torch.float16)

    if not quantise:
        a8 = a16.to(a_format)
        return timed(lambda: gemm(a8, one), device, warmup, reps)

    def quantised():
        scale = a16.abs().amax().float().clamp(min=1e-12) / a_max
        return gemm((a16 / scale).to(a_format), scale)

    return timed(quantised, device, warmup, reps)


def implicit_gemm(x_shape, w_shape, stride, padding, dilation) -> tuple[int, int, int]:
    """(M, K, N) of a convolution as a GEMM: output positions x (input channels x kernel) x output channels."""
    spatial_in, kernel = x_shape[2:], w_shape[2:]
    out_spatial = [(i + 2 * p - dl * (kk - 1) - 1) // s + 1
                   for i, kk, s, p, dl in zip(spatial_in, kernel, stride, padding, dilation)]
    return x_shape[0] * math.prod(out_spatial), w_shape[1] * math.prod(kernel), w_shape[0]


def time_convolution(x_shape, w_shape, stride, padding, dilation, dtype, device, warmup, reps, backward_mask=None):
    x = torch.randn(x_shape, device=device, dtype=dtype)
    w = torch.randn(w_shape, device=device, dtype=dtype)
    if backward_mask is None:
        return timed(lambda: aten.convolution(x, w, None, stride, padding, dilation, False, [0] * len(stride), 1),
                     device, warmup, reps)
    y = aten.convolution(x, w, None, stride, padding, dilation, False, [0] * len(stride), 1)
    grad = torch.randn_like(y)
    return timed(lambda: aten.convolution_backward(grad, x, w, None, stride, padding, dilation, False,
                                                   [0] * len(stride), 1, list(backward_mask)), device, warmup, reps)


# --- the whole iteration ----------------------------------------------------------------------------


def measure_shapes(counts: Counter, device, warmup: int, reps: int, backends=DEFAULT_BACKENDS,
                   deadline: float = math.inf, log=print) -> list[dict]:
    """One row per recorded shape with its count and seconds per choice; shapes past `deadline`
    (a perf_counter time) are listed as skipped, which leaves their class's totals unknown."""
    dtype_of = lambda s: getattr(torch, s.split(".")[-1])  # noqa: E731
    fp8_reason = fp8_supported(device)
    attention_pairs: dict[tuple, dict] = {}
    rows = []
    for key, count in sorted(counts.items(), key=lambda kv: str(kv[0])):
        kind = key[0]
        row = {"kind": kind, "count": count}
        if time.perf_counter() > deadline and kind != "convolution_other" and kind != "bmm":
            row.update(key=[list(x) if isinstance(x, tuple) else x for x in key[1:]], seconds={}, skipped="time budget")
            rows.append(row)
            continue
        if kind in ("attention", "attention_backward"):
            _, b, h, lq, lk, d, dt, ran = key
            row.update(batch=b, heads=h, query_tokens=lq, key_tokens=lk, head_size=d, dtype=dt, ran=ran,
                       score_elements=b * h * lq * lk)
            shape = (b, h, lq, lk, d, dt)
            if shape not in attention_pairs:
                attention_pairs[shape] = {name: time_attention(b, h, lq, lk, d, dtype_of(dt), device, name, warmup, reps)
                                          for name in backends}
            part = "backward" if kind == "attention_backward" else "forward"
            row["seconds"] = {name: r.get(part, {"error": "forward failed"}) for name, r in attention_pairs[shape].items()}
        elif kind == "matmul":
            _, m, k, n, dt = key
            row.update(m=m, k=k, n=n, dtype=dt, flop=2 * m * k * n)
            row["seconds"] = {_short(dt): _try(lambda: time_matmul_model_dtype(m, k, n, dtype_of(dt), device, warmup, reps))}
            if fp8_reason is None:
                row["seconds"]["float8"] = _try(lambda: time_matmul_fp8(m, k, n, device, warmup, reps, quantise=True))
                row["seconds"]["float8_gemm_only"] = _try(lambda: time_matmul_fp8(m, k, n, device, warmup, reps,
                                                                                  quantise=False))
            else:
                row["float8_skipped"] = fp8_reason
        elif kind == "bmm":
            _, batch, m, k, n, dt = key
            row.update(batch=batch, m=m, k=k, n=n, dtype=dt, flop=2 * batch * m * k * n)
            row["seconds"] = {_short(dt): _try(lambda: time_bmm(batch, m, k, n, dtype_of(dt), device, warmup, reps))}
        elif kind in ("convolution", "convolution_backward"):
            x_shape, w_shape, stride, padding, dilation, dt = key[1:7]
            mask = key[7] if kind == "convolution_backward" else None
            m, k, n = implicit_gemm(x_shape, w_shape, stride, padding, dilation)
            row.update(input=list(x_shape), weight=list(w_shape), stride=list(stride), padding=list(padding),
                       dtype=dt, implicit_gemm=[m, k, n], flop=2 * m * k * n * (sum(mask[:2]) if mask else 1))
            if mask:
                row["grads"] = [name for name, want in zip(("input", "weight", "bias"), mask) if want]
            row["seconds"] = {_short(dt): _try(lambda: time_convolution(x_shape, w_shape, stride, padding, dilation,
                                                                       dtype_of(dt), device, warmup, reps, mask))}
            if fp8_reason is None:
                # bound: the GEMM(s) of an implicit-GEMM convolution in float8, nothing else
                gemms = sum(mask[:2]) if mask else 1
                bound = _try(lambda: gemms * time_matmul_fp8(m, k, n, device, warmup, reps, quantise=False))
                row["seconds"]["float8_gemm_bound"] = bound
            else:
                row["float8_skipped"] = fp8_reason
        else:
            row["key"] = [list(x) if isinstance(x, tuple) else x for x in key[1:]]
            row["note"] = "recorded, not timed"
        rows.append(row)
        log(f"[kernels] {json.dumps({k: v for k, v in row.items()}, default=str)[:400]}")
    return rows


def totals(rows: list[dict]) -> dict:
    """Seconds per iteration of each kernel class with each choice (None where a choice failed on a shape
    or a shape went untimed), as the step ran them (attention: the backend each call used), and with the
    fastest working choice per shape. An attention shape takes one backend for its forward and backward
    calls alike (the backward kernel follows the forward's)."""
    classes = {"attention": ("attention", "attention_backward"), "matmul": ("matmul",), "bmm": ("bmm",),
               "convolution": ("convolution", "convolution_backward")}
    out = {}
    for cls, kinds in classes.items():
        members = [r for r in rows if r["kind"] in kinds]
        if not members:
            continue
        choices = sorted({c for r in members for c in r["seconds"]})
        per_choice = {}
        for choice in choices:
            parts = [r["count"] * r["seconds"][choice]["s"] for r in members if "s" in r["seconds"].get(choice, {})]
            per_choice[choice] = sum(parts) if len(parts) == len(members) else None
        # bounds (a GEMM without its quantisation or im2col) are not kernels one could pick
        real = lambda r: {c: v["s"] for c, v in r["seconds"].items() if "s" in v and c not in BOUNDS}  # noqa: E731
        if cls == "attention":
            shapes: dict[tuple, list[dict]] = {}
            for r in members:
                shapes.setdefault(tuple(r[k] for k in ("batch", "heads", "query_tokens", "key_tokens", "head_size",
                                                       "dtype")), []).append(r)
            best = []
            for group in shapes.values():
                usable = set.intersection(*(set(real(r)) for r in group))
                if usable:
                    best.append(min(sum(r["count"] * real(r)[c] for r in group) for c in usable))
            complete = len(best) == len(shapes)
        else:
            best = [r["count"] * min(real(r).values()) for r in members if real(r)]
            complete = len(best) == len(members)
        # as the step ran them: the backend each attention call used, the model's own dtype elsewhere
        ran = [r["count"] * r["seconds"][c]["s"] for r in members
               if "s" in r["seconds"].get(c := r.get("ran") or _short(r.get("dtype", "")), {})]
        as_run = sum(ran) if len(ran) == len(members) else None
        out[cls] = {"ops": sum(r["count"] for r in members), "shapes": len(members), "seconds": per_choice,
                    "as_run": as_run, "fastest_per_shape": sum(best) if complete else None,
                    "flop": sum(r.get("flop", 0) * r["count"] for r in members) or None,
                    "score_elements": sum(r.get("score_elements", 0) * r["count"] for r in members) or None}
    untimed = [r for r in rows if r["kind"] not in {k for kinds in classes.values() for k in kinds}]
    if untimed:
        out["untimed"] = {"ops": sum(r["count"] for r in untimed), "kinds": sorted({r["kind"] for r in untimed})}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=("zeroscope", "cpu-smoke"), default="zeroscope")
    parser.add_argument("--frames", type=int, default=None, help="default: the preset's first frame count")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--backends", nargs="+", choices=ATTENTION_BACKENDS, default=list(DEFAULT_BACKENDS),
                        help="SDPA backends to time per attention shape")
    parser.add_argument("--budget-s", type=float, default=math.inf, help="stop timing new shapes after this long")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    preset = PRESETS[args.preset]
    frames = args.frames or preset.frames[0]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    warmup = args.warmup if args.warmup is not None else (3 if device.type == "cuda" else 0)
    reps = args.reps if args.reps is not None else (10 if device.type == "cuda" else 1)
    started = time.perf_counter()

    unet = build_unet(preset, device)
    problem = make_problem(unet, frames, preset, device)
    fast_path = FastPath(checkpoint=default_checkpoint_patterns(unet))  # the CUDA default, on the CPU too
    with edit_step(problem, fast_path)() as step:
        times, _ = time_step(step, problem, warmup=1 if device.type == "cuda" else 0, iters=3 if device.type == "cuda" else 1)
        recorder = record_iteration(step, problem)
    del step
    print(f"[kernels] ours: {statistics.median(times):.3f} s per iteration; {sum(recorder.counts.values())} "
          f"matmul-class ops in {len(recorder.counts)} shapes, {recorder.other} other ops", flush=True)
    rows = measure_shapes(recorder.counts, device, warmup, reps, args.backends, started + args.budget_s)
    report = {
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (no GPU)",
        "torch": torch.__version__, "preset": args.preset, "frames": frames, "height": preset.height,
        "width": preset.width, "dtype": preset.dtype,
        "command": "python3 bench/kernels.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "timing": f"each shape on its own: median of {reps} after {warmup} warm-up"
                  + (" (CUDA events)" if device.type == "cuda" else " (perf_counter)"),
        "multiprocessors": torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else None,
        "ours_s_per_iter": statistics.median(times), "fast_path": repr(fast_path),
        "other_ops_per_iter": recorder.other, "totals": totals(rows), "shapes": rows,
        "seconds": time.perf_counter() - started,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=1, default=str))
    os.replace(tmp, args.out)
    print_table(report)


def print_table(report: dict) -> None:
    print(f"[kernels] {report['gpu']}, {report['frames']} frames, ours {report['ours_s_per_iter']:.3f} s/iter; "
          "seconds per iteration by kernel class and choice:")
    for cls, t in report["totals"].items():
        if cls == "untimed":
            print(f"  untimed: {t['ops']} ops ({', '.join(t['kinds'])})")
            continue
        choices = ", ".join(f"{c} {'n/a' if s is None else f'{s:.4f}'}" for c, s in t["seconds"].items())
        best, as_run = t["fastest_per_shape"], t["as_run"]
        print(f"  {cls:12s} {t['ops']:5d} ops, {t['shapes']:3d} shapes: as run {'-' if as_run is None else f'{as_run:.4f}'}; "
              f"{choices}; fastest per shape {'-' if best is None else f'{best:.4f}'}")
        if t.get("score_elements") and best:
            # each score element costs one exponential in the forward and one in the backward (recomputed)
            print(f"  {'':12s} {t['score_elements'] / 1e9:.1f} G attention scores (forward and backward): "
                  f"{t['score_elements'] / best / 1e12:.2f} T per second at the fastest choice")


if __name__ == "__main__":
    main()
