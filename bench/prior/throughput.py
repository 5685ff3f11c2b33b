"""Training throughput of the embedded prior: clips per second of the real training step.

    python bench/prior/throughput.py --out bench/prior/throughput.json [--variants all|shipped] [--profile]

Each variant builds the model with `dreammotion.prior.train.PriorTrainer` (the class the training loop
uses), runs 3 warm-up steps, then times `--steps` steps with freshly rendered batches (the data path
included) between two GPU synchronisations, then the same steps on one fixed batch, then the data path
alone (``data_ms_per_batch``; compiled variants also with the eager renderer). "shipped" is the variant
whose settings are `dreammotion.prior.train`'s defaults; its numbers are the top-level keys of the JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from dreammotion.models import frame_attention
from dreammotion.prior import train
from dreammotion.synthetic.render import render_batch_torch

# (name, overrides of train.py's defaults). Head size 4 is the first shipped prior's mistake.
VARIANTS: list[tuple[str, dict]] = [
    ("head4_sdpa_b128", {"head_size": 4, "temporal_attention": "sdpa", "batch": 128}),
    ("head32_sdpa_b128", {"head_size": 32, "temporal_attention": "sdpa", "batch": 128}),
    ("head32_sdpa_b256", {"head_size": 32, "temporal_attention": "sdpa", "batch": 256}),
    ("head32_math_b256", {"head_size": 32, "temporal_attention": "math", "batch": 256}),
    ("head16_math_b256", {"head_size": 16, "temporal_attention": "math", "batch": 256}),
    ("head32_math_b512", {"head_size": 32, "temporal_attention": "math", "batch": 512}),
    ("head32_math_b1024", {"head_size": 32, "temporal_attention": "math", "batch": 1024}),
    # Levers on the shipped settings (batch 256, head size 32, math temporal attention).
    ("channels_last_b256", {"channels_last": True}),
    ("compile_blocks_b256", {"compile": "blocks"}),
    ("compile_blocks_b512", {"compile": "blocks", "batch": 512}),
    ("compile_full_b256", {"compile": "full"}),
    # bf16 weights and activations end to end (fp32 master weights in the optimiser) instead of autocast.
    ("bf16_b256", {"precision": "bf16"}),
    ("compile_full_bf16_b256", {"compile": "full", "precision": "bf16"}),
    ("compile_full_bf16_b512", {"compile": "full", "precision": "bf16", "batch": 512}),
    # The whole step (forward, backward, clipping, AdamW, EMA) captured as one CUDA graph.
    ("graph_b256", {"cuda_graph": True}),
    ("graph_b512", {"cuda_graph": True, "batch": 512}),
    ("compile_full_graph_b256", {"compile": "full", "cuda_graph": True}),
    ("compile_full_graph_b512", {"compile": "full", "cuda_graph": True, "batch": 512}),
    ("compile_blocks_graph_b256", {"compile": "blocks", "cuda_graph": True}),
    # Run 10: layouts and the temporal attention's kernels on top of compile + graph at batch 512.
    ("graph_cl_b512", {"cuda_graph": True, "batch": 512, "channels_last": True}),
    ("compile_full_graph_cl_broadcast_b512", {"compile": "full", "cuda_graph": True, "batch": 512,
                                              "channels_last": True, "temporal_attention": "broadcast"}),
    ("compile_full_graph_broadcast_b512", {"compile": "full", "cuda_graph": True, "batch": 512,
                                           "temporal_attention": "broadcast"}),
    ("compile_full_graph_cl_b512", {"compile": "full", "cuda_graph": True, "batch": 512, "channels_last": True}),
    # Run 11's fastest step (broadcast temporal attention), at twice the batch.
    ("compile_full_graph_broadcast_b1024", {"compile": "full", "cuda_graph": True, "batch": 1024,
                                            "temporal_attention": "broadcast"}),
    # Run 12's step with inductor's layout optimisation forced (its heuristic declines it for the UNet).
    ("compile_full_graph_broadcast_layout_b1024", {"compile": "full", "cuda_graph": True, "batch": 1024,
                                                   "temporal_attention": "broadcast", "layout_optimization": "force"}),
    # The same at batch 512, the batch that fits an 80 GB card (run 14, one H100: no faster than without it).
    ("compile_full_graph_broadcast_layout_b512", {"compile": "full", "cuda_graph": True, "batch": 512,
                                                  "temporal_attention": "broadcast", "layout_optimization": "force"}),
    # Coordinate-descent kernel tuning on run 12's step, without the forced layout (run 14 found it gains nothing).
    ("compile_full_graph_broadcast_cdt_b1024", {"compile": "full", "cuda_graph": True, "batch": 1024,
                                                "temporal_attention": "broadcast", "kernel_tuning": "coordinate-descent"}),
    ("compile_full_graph_broadcast_cdt_b512", {"compile": "full", "cuda_graph": True, "batch": 512,
                                               "temporal_attention": "broadcast", "kernel_tuning": "coordinate-descent"}),
    # ... and inductor's coordinate-descent search of its generated kernels' block sizes.
    ("compile_full_graph_broadcast_layout_cdt_b1024", {"compile": "full", "cuda_graph": True, "batch": 1024,
                                                       "temporal_attention": "broadcast", "layout_optimization": "force",
                                                       "kernel_tuning": "coordinate-descent"}),
    # The temporal attention as one Triton kernel each way (dreammotion.models.frame_attention) instead
    # of the broadcast form, whose fused backward kernels were ~19% of run 12's step.
    ("fused_b256", {"temporal_attention": "fused"}),
    ("compile_full_graph_fused_b512", {"compile": "full", "cuda_graph": True, "batch": 512,
                                       "temporal_attention": "fused"}),
    ("compile_full_graph_fused_b1024", {"compile": "full", "cuda_graph": True, "batch": 1024,
                                        "temporal_attention": "fused"}),
    ("compile_full_graph_fused_cdt_b1024", {"compile": "full", "cuda_graph": True, "batch": 1024,
                                            "temporal_attention": "fused", "kernel_tuning": "coordinate-descent"}),
    # ... and the spatial self-attention of the 4x4 level (16 positions), or of the 8x8 and 4x4 levels,
    # by the same kernel instead of flash attention (run 15: flash ~9% of the step's kernel time).
    ("compile_full_graph_fused_spatial2_b512", {"compile": "full", "cuda_graph": True, "batch": 512,
                                               "temporal_attention": "fused", "fused_spatial_levels": (2,)}),
    ("compile_full_graph_fused_spatial12_b512", {"compile": "full", "cuda_graph": True, "batch": 512,
                                                "temporal_attention": "fused", "fused_spatial_levels": (1, 2)}),
    ("compile_full_graph_fused_spatial2_b1024", {"compile": "full", "cuda_graph": True, "batch": 1024,
                                                "temporal_attention": "fused", "fused_spatial_levels": (2,)}),
    ("compile_full_graph_fused_spatial12_b1024", {"compile": "full", "cuda_graph": True, "batch": 1024,
                                                 "temporal_attention": "fused", "fused_spatial_levels": (1, 2)}),
]

SETTINGS = ("batch", "head_size", "temporal_attention", "fused_spatial_levels", "compile", "layout_optimization",
            "kernel_tuning", "precision", "cuda_graph", "channels_last")


def defaults() -> dict:
    parser = argparse.ArgumentParser()
    train.add_arguments(parser)
    return vars(parser.parse_args(["--out", "unused"]))


def file_name_text(value) -> str:
    """An override's value in a file name: (1, 2) -> "1+2", no spaces or brackets."""
    return "+".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


def compile_cache_file(folder: Path | None, overrides: dict) -> Path | None:
    """One cache file per compiled configuration (variants with the same settings share it)."""
    if folder is None or overrides.get("compile", "none") == "none":
        return None
    return folder / ("_".join(f"{k}-{file_name_text(v)}" for k, v in sorted(overrides.items())) + ".bin")


def data_ms(trainer, sync, repeats: int = 5) -> float:
    """Median wall time of drawing one batch alone, between two synchronisations: specs, captions and
    token ids on the host, then the rendering on the GPU."""
    times = []
    for _ in range(repeats + 1):  # the first is a warm-up
        sync()
        start = time.perf_counter()
        trainer.batch()
        sync()
        times.append(time.perf_counter() - start)
    return round(1e3 * statistics.median(times[1:]), 1)


def measure(overrides: dict, steps: int, profile: bool = False, compile_cache_dir: Path | None = None,
            device: str = "cuda") -> dict:
    """One variant's numbers. `device` is CUDA but for the tests, which run this path on a CPU."""
    torch._dynamo.reset()  # each variant compiles (or loads its cache) from scratch, as a training run would
    args = argparse.Namespace(**{**defaults(), **overrides, "device": device,
                                 "compile_cache": compile_cache_file(compile_cache_dir, overrides)})
    device = torch.device(device)
    cuda = device.type == "cuda"
    sync = (lambda: torch.cuda.synchronize(device)) if cuda else (lambda: None)
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    trainer = train.PriorTrainer(args, device)
    start = time.perf_counter()
    for _ in range(3):  # warm-up; with --compile this is where compilation happens
        trainer.step(*trainer.batch(), lr=1e-4)
    sync()
    warmup_seconds = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step(*trainer.batch(), lr=1e-4)
    sync()
    seconds = time.perf_counter() - start
    # The same steps on one fixed batch: the difference is what the data path costs.
    latents, ids = trainer.batch()
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step(latents, ids, lr=1e-4)
    sync()
    fixed = time.perf_counter() - start
    # The data path alone, with the trainer's renderer (compiled under --compile) and, for comparison
    # at the same batch, the eager one.
    data = {"data_ms_per_batch": data_ms(trainer, sync)}
    if trainer.render is not render_batch_torch:
        trainer.render = render_batch_torch
        data["data_ms_per_batch_eager_render"] = data_ms(trainer, sync)
    result = {
        "batch": args.batch,
        "head_size": args.head_size or train.PRESETS[args.preset][3],
        "temporal_attention": args.temporal_attention,
        "fused_spatial_levels": list(args.fused_spatial_levels),
        "compile": args.compile,
        "layout_optimization": args.layout_optimization,
        "kernel_tuning": args.kernel_tuning,
        "precision": args.precision,
        "cuda_graph": args.cuda_graph,
        "channels_last": args.channels_last,
        **({"frame_attention": frame_attention.kernel_setting()} if args.temporal_attention == "fused" else {}),
        "warmup_seconds": round(warmup_seconds, 1),
        "compile_cache_loaded": trainer.compile_cache_loaded,
        "steps_per_s": round(steps / seconds, 3),
        "clips_per_s": round(steps * args.batch / seconds, 1),
        "clips_per_s_fixed_batch": round(steps * args.batch / fixed, 1),
        "peak_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if cuda else None,
        "parameters": trainer.n_params,
        **data,
    }
    if profile:
        from torch.profiler import ProfilerActivity, profile as torch_profile

        start = time.perf_counter()
        with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(3):
                trainer.step(latents, ids, lr=1e-4)
            sync()
        wall = time.perf_counter() - start
        events = prof.key_averages()
        kernel_us = sum(getattr(e, "self_device_time_total", 0) for e in events)
        # Kernel time over wall time: near 1, the GPU is the limit; well below, launches or the host are.
        result["profile_gpu_busy_fraction"] = round(kernel_us / 1e6 / wall, 3)
        result["profile_kernels_per_step"] = sum(e.count for e in events
                                                 if getattr(e, "self_device_time_total", 0) > 0) // 3
        result["profile_top_kernels"] = events.table(sort_by="self_device_time_total", row_limit=25)
    del trainer
    if cuda:
        torch.cuda.empty_cache()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--variants", default="all",
                        help="all, shipped, or a comma-separated list of variant names (shipped is always first)")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--profile", action="store_true", help="add a kernel table of each variant")
    parser.add_argument("--frame-attention", default=None, metavar="TILExWARPS",
                        help="register tile and warps of the fused temporal attention's kernels (default: "
                             "dreammotion.models.frame_attention's; bench/prior/frame_attention.py times them)")
    parser.add_argument("--compile-cache-dir", type=Path, default=None,
                        help="compiled variants load/save torch.compile's cache here (train.py --compile-cache); "
                             "run a second process with a fresh TORCHINDUCTOR_CACHE_DIR to time a warm start "
                             "as a new machine sees it (bench/prior/NOTES.md)")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("bench/prior/throughput.py needs a CUDA GPU")
    if args.frame_attention:
        frame_attention.use_kernel_setting(args.frame_attention)
    base = defaults()
    shipped = {k: base[k] for k in SETTINGS}
    if args.variants in ("all", "shipped"):
        chosen = VARIANTS if args.variants == "all" else []
    else:
        known = dict(VARIANTS)
        names = [n for n in args.variants.split(",") if n and n != "shipped"]
        unknown = [n for n in names if n not in known]
        if unknown:
            raise SystemExit(f"unknown variant(s) {unknown}; known: {', '.join(known)}")
        chosen = [(n, known[n]) for n in names]
    variants = [("shipped", shipped)] + chosen
    results = {}
    for name, overrides in variants:
        try:
            results[name] = measure(overrides, args.steps, profile=args.profile, compile_cache_dir=args.compile_cache_dir)
        except Exception as error:  # a variant that fails (e.g. a kernel's launch limit) is a result too
            results[name] = {"error": f"{type(error).__name__}: {error}"[:500]}
            torch.cuda.empty_cache()
        print(name, json.dumps({k: v for k, v in results[name].items() if k != "profile_top_kernels"}), flush=True)
        # Written after every variant: a call cut off by its time limit keeps what it measured.
        write_report(args, argv, shipped, results)
    for name, result in results.items():
        if "profile_top_kernels" in result:
            print(f"== {name}\n{result['profile_top_kernels']}")
    return 0


def write_report(args, argv, shipped: dict, results: dict) -> None:
    top = results["shipped"]
    report = {
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "clips_per_s": top.get("clips_per_s"),
        "steps_per_s": top.get("steps_per_s"),
        "batch": shipped["batch"],
        "settings": shipped,
        "command": "python bench/prior/throughput.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "variants": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
