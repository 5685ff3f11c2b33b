"""GPU time and memory of one DreamMotion iteration at ZeroScope size (GitHub issue 9).

Times, in one run, the straightforward iteration (``dreammotion.edit.reference.NaiveStep``) and ours
(``dreammotion.edit.optimizer.EditStep``, the code the edit loop runs) on a randomly initialised
UNet3DConditionModel with the ZeroScope/ModelScope config (weights do not change the cost), then the
levers one by one at 24 frames. Writes one JSON per frame count and prints a table.

    python3 bench/dreammotion_bench.py --preset zeroscope --out bench/results     # on the GPU
    python3 bench/dreammotion_bench.py --preset cpu-smoke --out /tmp/bench       # CPU check, seconds

The exact command of the committed results is in bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dreammotion.edit.config import EditConfig
from dreammotion.edit.hooks import SHORT_SEQUENCE_TOKENS
from dreammotion.edit.optimizer import EditStep, FastPath, IterationOutput, PromptEmbeddings, default_checkpoint_patterns
from dreammotion.edit.reference import NaiveStep

ZEROSCOPE_UNET = dict(
    sample_size=32,
    in_channels=4,
    out_channels=4,
    down_block_types=("CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D"),
    up_block_types=("UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"),
    block_out_channels=(320, 640, 1280, 1280),
    layers_per_block=2,
    cross_attention_dim=1024,
    attention_head_dim=64,
    norm_num_groups=32,
)
# Same block structure and layer count, far fewer channels: exercises every code path on a CPU.
SMOKE_UNET = dict(ZEROSCOPE_UNET, block_out_channels=(8, 16, 32, 32), cross_attention_dim=16,
                  attention_head_dim=4, norm_num_groups=4)


@dataclass
class Preset:
    unet: dict
    frames: tuple[int, ...]
    height: int  # pixels; latents are 8x smaller
    width: int
    tokens: int
    dtype: str
    warmup: int
    iters: int
    levers: bool = True
    compile: bool = True
    default_attention_order: bool = False  # also ours with PyTorch's SDPA order (attention_kernels_by_length=False)


PRESETS = {
    "zeroscope": Preset(ZEROSCOPE_UNET, (24, 16, 8), 320, 576, 77, "float16", warmup=2, iters=6),
    # second GPU call: the float16 underflow fix and the float32 noise floor, headline settings only
    "zeroscope-check": Preset(ZEROSCOPE_UNET, (24, 8), 320, 576, 77, "float16", warmup=1, iters=4, levers=False,
                              compile=False),
    # the conv blocks compiled (FastPath.compile_conv_blocks) against ours, at 24 frames (issue 16)
    "zeroscope-compile": Preset(ZEROSCOPE_UNET, (24,), 320, 576, 77, "float16", warmup=2, iters=4, levers=False),
    # ours (attention kernels chosen by sequence length, FastPath.attention_kernels_by_length, the CUDA default
    # since run 5) against ours with PyTorch's SDPA order (issue 16)
    "zeroscope-attention": Preset(ZEROSCOPE_UNET, (24, 8), 320, 576, 77, "float16", warmup=2, iters=6, levers=False,
                                  compile=False, default_attention_order=True),
    "cpu-smoke": Preset(SMOKE_UNET, (4,), 64, 64, 8, "float32", warmup=1, iters=2, compile=False),
    "cpu-smoke-quick": Preset(SMOKE_UNET, (4,), 64, 64, 8, "float32", warmup=0, iters=1, levers=False, compile=False,
                              default_attention_order=True),
}


# --- measurement -----------------------------------------------------------------------------------


@dataclass
class Problem:
    frames: int
    unet: torch.nn.Module
    x_src: torch.Tensor
    x: torch.Tensor
    noise: torch.Tensor
    t: int
    emb: PromptEmbeddings
    mask: torch.Tensor
    alphas: torch.Tensor
    config: EditConfig = field(default_factory=lambda: EditConfig(lambda_s=1.0, lambda_t=1.0))


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timings(fn, device, warmup: int, iters: int) -> list[float]:
    """Seconds of each of `iters` calls of fn() after `warmup` untimed ones (CUDA events on the GPU,
    perf_counter on the CPU)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(iters):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
    return times


def time_step(step, problem: Problem, warmup: int, iters: int) -> tuple[list[float], IterationOutput]:
    """Seconds per call and the last output."""
    outputs = []

    def call():
        outputs[:] = [step(problem.x, problem.t, problem.noise)]

    return timings(call, problem.x.device, warmup, iters), outputs[0] if outputs else None


def count_flops(step, problem: Problem) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step(problem.x, problem.t, problem.noise)
    return float(counter.get_total_flops())


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def peak_gib(device) -> tuple[float, float]:
    if device.type != "cuda":
        return float("nan"), float("nan")
    return torch.cuda.max_memory_allocated(device) / 2**30, torch.cuda.max_memory_reserved(device) / 2**30


def reset_memory(device):
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def measure(name: str, make_step, problem: Problem, preset: Preset, reference: IterationOutput | None,
            note: str = "", flops: bool = False) -> dict:
    device = problem.x.device
    row = {"variant": name, "note": note}
    reset_memory(device)
    try:
        with make_step() as step:
            times, out = time_step(step, problem, preset.warmup, preset.iters)
            row["peak_gib"], row["reserved_gib"] = peak_gib(device)
            if flops:
                row["tflop_per_iter"] = count_flops(step, problem) / 1e12
        row["s_per_iter"] = statistics.median(times)
        row["s_min"], row["s_max"] = min(times), max(times)
        row["finite"] = bool(torch.isfinite(out.update).all())
        row["update_norm"] = float(out.update.norm())
        row["ssm_grad_norm"] = float(out.ssm_grad.norm())
        if reference is not None:
            row["rel_err_update"] = rel_err(out.update, reference.update)
            row["rel_err_ssm_grad"] = rel_err(out.ssm_grad, reference.ssm_grad)
            row["rel_err_score_grad"] = rel_err(out.score_grad, reference.score_grad)
        if "tflop_per_iter" in row:
            row["tflop_per_s"] = row["tflop_per_iter"] / row["s_per_iter"]
        row["_output"] = out
    except Exception as err:  # an OOM or a kernel failure of one variant must not lose the others
        row["error"] = f"{type(err).__name__}: {str(err)[:400]}"
    finally:
        reset_memory(device)
    printable = {k: (float(f"{v:.4g}") if isinstance(v, float) else v) for k, v in row.items() if k != "_output"}
    print(f"[bench] {printable}", flush=True)
    return row


def make_problem(unet, frames: int, preset: Preset, device, seed: int = 0) -> Problem:
    from diffusers import DDIMScheduler

    g = torch.Generator("cpu").manual_seed(seed)
    h, w = preset.height // 8, preset.width // 8
    x_src = torch.randn(1, 4, frames, h, w, generator=g).to(device)
    # away from x^ so that the SSM losses and their gradient are not zero
    x = (x_src + 0.3 * torch.randn(x_src.shape, generator=g).to(device)).requires_grad_(True)
    noise = torch.randn(x_src.shape, generator=g).to(device)
    dtype = next(unet.parameters()).dtype
    dim = unet.config.cross_attention_dim
    emb = PromptEmbeddings(*(torch.randn(preset.tokens, dim, generator=g).to(device, dtype) for _ in range(3)))
    mask = torch.zeros(1, 1, frames, h, w, device=device)
    mask[..., h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 1.0
    # ZeroScope's training schedule
    scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    alphas = scheduler.alphas_cumprod.to(device, torch.float32)
    return Problem(frames, unet, x_src, x, noise, 500, emb, mask, alphas)


def edit_step(problem: Problem, fast_path: FastPath, config: EditConfig | None = None):
    p = problem
    return lambda: EditStep(p.unet, p.x_src, p.emb, p.mask, p.alphas, config or p.config, fast_path)


def naive_step(problem: Problem):
    p = problem
    return lambda: NaiveStep(p.unet, p.x_src, p.emb, p.mask, p.alphas, p.config)


def build_unet(preset: Preset, device):
    from diffusers import UNet3DConditionModel

    torch.manual_seed(0)
    with torch.device(device):
        unet = UNet3DConditionModel(**preset.unet)
    unet = unet.to(getattr(torch, preset.dtype)).eval().requires_grad_(False)
    return unet


def fp32_noise_floor(unet, preset: Preset, device, frames: int, fast_path: FastPath) -> dict:
    """How far the half-precision updates (naive and ours) are from the naive update in float32.

    The fused fast path changes batch composition, so its rounding differs from the naive loop's; this
    says whether that difference is within the rounding that half precision makes anyway.
    """
    import copy

    unet32 = copy.deepcopy(unet).float()
    p32 = make_problem(unet32, frames, preset, device, seed=2)
    p16 = make_problem(unet, frames, preset, device, seed=2)
    with naive_step(p32)() as step:
        ref = step(p32.x, p32.t, p32.noise)
    del unet32, p32
    reset_memory(device)
    with naive_step(p16)() as step:
        naive = step(p16.x, p16.t, p16.noise)
    with edit_step(p16, fast_path)() as step:
        ours = step(p16.x, p16.t, p16.noise)
    return {
        "naive_vs_fp32": {k: rel_err(getattr(naive, k), getattr(ref, k)) for k in ("update", "score_grad", "ssm_grad")},
        "ours_vs_fp32": {k: rel_err(getattr(ours, k), getattr(ref, k)) for k in ("update", "score_grad", "ssm_grad")},
        "ours_vs_naive": {k: rel_err(getattr(ours, k), getattr(naive, k)) for k in ("update", "score_grad", "ssm_grad")},
        "ssm_grad_norm_fp32": float(ref.ssm_grad.norm()), "ssm_grad_norm_naive": float(naive.ssm_grad.norm()),
        "ssm_grad_norm_ours": float(ours.ssm_grad.norm()),
    }


def set_conv_memory_format(unet, memory_format) -> None:
    """2D conv weights only: the temporal Conv3d weights are 5D (channels_last needs rank 4)."""
    for module in unet.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.weight.data = module.weight.data.contiguous(memory_format=memory_format)


def profile_step(step_factory, problem: Problem, out_path: Path) -> dict:
    """Kernel time by kind for one iteration, and how much of the wall time kernels fill."""
    from torch.profiler import ProfilerActivity, profile

    device = problem.x.device
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with step_factory() as step:
        step(problem.x, problem.t, problem.noise)
        _sync(device)
        started = time.perf_counter()
        with profile(activities=activities) as prof:
            step(problem.x, problem.t, problem.noise)
            _sync(device)
        wall = time.perf_counter() - started
    kernel_us: dict[str, float] = {}
    total = 0.0
    for evt in prof.key_averages():
        us = getattr(evt, "self_device_time_total", 0.0) if device.type == "cuda" else 0.0
        if us <= 0 or evt.key.startswith("aten::"):
            continue  # aten ops report their kernels' time again: count kernels only
        total += us
        kernel_us[evt.key] = kernel_us.get(evt.key, 0.0) + us
    kinds = {"matmul/conv": 0.0, "attention": 0.0, "norm": 0.0, "other (elementwise, copies, reductions)": 0.0}
    for key, us in kernel_us.items():
        k = key.lower()
        if any(s in k for s in ("flash", "fmha", "attention", "sdpa", "cutlass_80_wmma_tensorop_f16_s161616gemm_f16_32x32")):
            kinds["attention"] += us
        elif any(s in k for s in ("gemm", "conv", "xmma", "cutlass", "sm90", "implicit", "wgrad", "dgrad", "nhwc")):
            kinds["matmul/conv"] += us
        elif "norm" in k:
            kinds["norm"] += us
        else:
            kinds["other (elementwise, copies, reductions)"] += us
    table = prof.key_averages().table(sort_by="self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total",
                                      row_limit=30, max_name_column_width=90)
    out_path.write_text(table)
    return {"wall_s": wall, "kernel_s": total / 1e6, "kernel_s_by_kind": {k: v / 1e6 for k, v in kinds.items()},
            "top_kernels": sorted(((v / 1e6, k[:120]) for k, v in kernel_us.items()), reverse=True)[:12]}


def print_table(results: dict) -> None:
    print("\n| frames | variant | s/iter | peak GiB | TFLOP/s | rel err update | rel err SSM grad | note |")
    print("|---|---|---|---|---|---|---|---|")
    for frames, r in results.items():
        for row in r["variants"]:
            fmt = lambda k, f: (f % row[k]) if isinstance(row.get(k), float) else "-"  # noqa: E731
            extra = row.get("error") or row.get("skipped") or ""
            print(f"| {frames} | {row['variant']} | {fmt('s_per_iter', '%.3f')} | {fmt('peak_gib', '%.1f')} | "
                  f"{fmt('tflop_per_s', '%.0f')} | {fmt('rel_err_update', '%.1e')} | {fmt('rel_err_ssm_grad', '%.1e')} | {extra[:80]} |")


def _public(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "_output"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="zeroscope")
    parser.add_argument("--out", required=True, help="folder for <preset>_<F>f.json and the profile")
    parser.add_argument("--frames", type=int, nargs="*", help="frame counts (default: the preset's)")
    parser.add_argument("--budget-s", type=float, default=330.0, help="skip the optional variants past this time")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--fp32-reference-frames", type=int, default=0,
                        help="also compare naive and ours (model dtype) with the naive update in float32 at this frame count")
    args = parser.parse_args(argv)
    preset = PRESETS[args.preset]
    frames_list = tuple(args.frames or preset.frames)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    left = lambda: args.budget_s - (time.perf_counter() - started)  # noqa: E731

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cuda.enable_cudnn_sdp(False)  # its backward failed on these machines (device notes)
    import diffusers

    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (no GPU)"
    unet = build_unet(preset, device)
    params = sum(p.numel() for p in unet.parameters())
    command = "python3 bench/dreammotion_bench.py " + " ".join(argv if argv is not None else sys.argv[1:])
    common = {"gpu": gpu, "preset": args.preset, "unet_params": params, "dtype": preset.dtype,
              "torch": torch.__version__, "diffusers": diffusers.__version__, "command": command,
              "timing": f"median of {preset.iters} iterations after {preset.warmup} warm-up; "
                        + ("CUDA events" if device.type == "cuda" else "perf_counter"),
              "ours_fast_path": f"FastPath() default on CUDA: fused null branch, checkpoint "
                                f"{list(default_checkpoint_patterns(unet))}, attention kernels by sequence length"}
    print(f"[bench] {gpu}, UNet3D {params / 1e9:.3f} B params, {preset.dtype}, torch {torch.__version__}", flush=True)
    # the CUDA default, named so that the CPU smoke run uses it too
    ours_fp = FastPath(checkpoint=default_checkpoint_patterns(unet), attention_kernels_by_length=True)

    results: dict[int, dict] = {}

    def write(frames: int) -> None:
        r = results[frames]
        path = out / f"{args.preset}_{frames}f.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(r, indent=1, default=str))
        os.replace(tmp, path)

    # 1) naive vs ours at every frame count (the headline numbers)
    for frames in frames_list:
        problem = make_problem(unet, frames, preset, device)
        naive = measure("naive", naive_step(problem), problem, preset, None, flops=True,
                        note="4-way CFG no-grad + separate source-key pass + full with-grad pass, HWxHW matrices")
        reference = naive.get("_output")
        ours = measure("ours", edit_step(problem, ours_fp), problem, preset, reference, flops=True,
                       note="EditStep with FastPath() (the edit loop's default on CUDA)")
        extra = []
        if preset.default_attention_order:
            default_order_fp = FastPath(checkpoint=ours_fp.checkpoint, attention_kernels_by_length=False)
            extra.append(measure("ours_default_attention_order", edit_step(problem, default_order_fp), problem, preset,
                                 reference, note="ours with PyTorch's SDPA backend order (flash first) instead of "
                                                 f"memory-efficient attention up to {SHORT_SEQUENCE_TOKENS} tokens"))
        # a second random draw (other t and noise) for the equivalence check
        check = make_problem(unet, frames, preset, device, seed=1)
        check.t = 800
        errs = [ours.get("rel_err_update", float("nan"))]
        second_draw_error = None
        try:  # one step at a time: two installed at once would stack their key-capturing processors
            with naive_step(check)() as step:
                naive_update = step(check.x, check.t, check.noise).update
            with edit_step(check, ours_fp)() as step:
                errs.append(rel_err(step(check.x, check.t, check.noise).update, naive_update))
            del naive_update
        except Exception as err:  # recorded, not hidden
            second_draw_error = f"{type(err).__name__}: {str(err)[:300]}"
            print(f"[bench] second equivalence draw failed: {second_draw_error}", flush=True)
        reset_memory(device)
        results[frames] = {
            **common, "frames": frames, "height": preset.height, "width": preset.width,
            "latents": [4, frames, preset.height // 8, preset.width // 8],
            "naive_s_per_iter": naive.get("s_per_iter"), "ours_s_per_iter": ours.get("s_per_iter"),
            "speedup": (naive["s_per_iter"] / ours["s_per_iter"]) if "s_per_iter" in naive and "s_per_iter" in ours else None,
            "naive_peak_gib": naive.get("peak_gib"), "ours_peak_gib": ours.get("peak_gib"),
            "naive_tflop_per_s": naive.get("tflop_per_s"), "ours_tflop_per_s": ours.get("tflop_per_s"),
            "naive_tflop_per_iter": naive.get("tflop_per_iter"), "ours_tflop_per_iter": ours.get("tflop_per_iter"),
            "max_rel_err": max(errs), "rel_err_draws": errs, "second_draw_error": second_draw_error,
            "rel_err_ssm_grad": ours.get("rel_err_ssm_grad"), "ssm_grad_norm": ours.get("ssm_grad_norm"),
            "variants": [_public(naive), _public(ours)] + [_public(row) for row in extra],
        }
        write(frames)
        if frames == frames_list[0]:
            head = (problem, reference)
    if args.fp32_reference_frames:
        frames = args.fp32_reference_frames
        results[frames]["fp32_reference"] = fp32_noise_floor(unet, preset, device, frames, ours_fp)
        print(f"[bench] float32 reference at {frames} frames: {results[frames]['fp32_reference']}", flush=True)
        write(frames)
    if preset.compile and not args.no_compile and left() > 150:
        frames = frames_list[0]
        problem, reference = head
        compiled_fp = FastPath(checkpoint=ours_fp.checkpoint, compile_conv_blocks=True)
        compiled = measure("ours_compiled_conv_blocks", edit_step(problem, compiled_fp), problem, preset, reference,
                           note="ours + torch.compile(dynamic=False) of every ResnetBlock2D and TemporalConvLayer "
                                f"(FastPath.compile_conv_blocks; compile time inside the warm-up; {left():.0f} s were left)")
        results[frames]["variants"].append(_public(compiled))
        write(frames)
    if not preset.levers:
        print_table(results)
        return

    # 2) levers one by one at the first (largest) frame count
    frames = frames_list[0]
    problem, reference = head
    levers = [
        ("lead_loop_truncated", FastPath(fuse_null_branch=False, checkpoint=()), None,
         "4-way no-grad capturing source keys + with-grad pass truncated after the last key layer"),
        ("fused_no_ckpt", FastPath(fuse_null_branch=True, checkpoint=()), None,
         "3-way no-grad + full with-grad pass giving eps(x_t, null)"),
        ("fused_ckpt_top_blocks", FastPath(checkpoint=("down_blocks.0", "up_blocks.3")), None,
         "checkpoint the two full-resolution blocks whole"),
        ("fused_ckpt_all_blocks", FastPath(checkpoint=("down_blocks.*", "mid_block", "up_blocks.*")), None,
         "checkpoint every block"),
        ("fused_ckpt_all_layers", FastPath(checkpoint=("down_blocks.*.*", "mid_block.*", "up_blocks.*.*")), None,
         "checkpoint every resnet/attention/temporal layer"),
        ("keys_up1_truncated", FastPath(checkpoint=()),
         EditConfig(key_layers=("up_blocks.1.attentions.*.transformer_blocks.*.attn1",)),
         "key subset: up_blocks.1 only, truncated with-grad pass (different loss: no rel err)"),
        ("keys_up1_up2_truncated", FastPath(checkpoint=()),
         EditConfig(key_layers=("up_blocks.1.attentions.*.transformer_blocks.*.attn1",
                                "up_blocks.2.attentions.*.transformer_blocks.*.attn1")),
         "key subset: up_blocks.1-2, truncated with-grad pass (different loss: no rel err)"),
    ]
    rows = results[frames]["variants"]
    for name, fast_path, config, note in levers:
        if left() < 40:
            rows.append({"variant": name, "note": note, "skipped": "time budget"})
            continue
        ref = reference if config is None else None
        rows.append(_public(measure(name, edit_step(problem, fast_path, config), problem, preset, ref, note=note)))
        write(frames)

    # memory format and precision levers, on the default fast path
    if left() > 40:
        set_conv_memory_format(unet, torch.channels_last)
        rows.append(_public(measure("ours_channels_last", edit_step(problem, ours_fp), problem, preset, reference,
                                    note="conv weights channels_last")))
        set_conv_memory_format(unet, torch.contiguous_format)
        write(frames)
    if left() > 30:
        prof = profile_step(edit_step(problem, ours_fp), problem, out / f"profile_{frames}f.txt")
        results[frames]["profile_ours"] = prof
        print(f"[bench] profile: {json.dumps(prof, default=str)[:1500]}", flush=True)
        write(frames)
    if device.type == "cuda" and left() > 40:
        unet.to(torch.bfloat16)
        bf_problem = make_problem(unet, frames, preset, device)
        rows.append(_public(measure("ours_bf16", edit_step(bf_problem, ours_fp), bf_problem, preset, reference,
                                    note="bf16 weights and activations; rel err against the fp16 naive update")))
        unet.to(getattr(torch, preset.dtype))
        write(frames)
    # last: an unsliced temporal attention may fail its launch at this size
    if left() > 20:
        rows.append(_public(measure(
            "no_temporal_chunking", edit_step(problem, FastPath(checkpoint=default_checkpoint_patterns(problem.unet), chunk_temporal_attention=False)),
            problem, preset, reference, note="does unsliced temporal attention run at this size?")))
        write(frames)

    print_table(results)
    print(f"[bench] done in {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
