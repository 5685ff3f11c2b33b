"""Training throughput of the embedded prior: clips per second of the real training step.

    python bench/prior/throughput.py --out bench/prior/throughput.json [--variants all|shipped] [--profile]

Each variant builds the model with `dreammotion.prior.train.Trainer` (the class the training loop
uses), runs 3 warm-up steps, then times `--steps` steps with freshly rendered batches (the data path
included) between two GPU synchronisations. "shipped" is the variant whose settings are
`dreammotion.prior.train`'s defaults; its numbers are the top-level keys of the JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from dreammotion.prior import train

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
]


def defaults() -> dict:
    parser = argparse.ArgumentParser()
    train.add_arguments(parser)
    return vars(parser.parse_args(["--out", "unused"]))


def measure(overrides: dict, steps: int, profile: bool = False) -> dict:
    args = argparse.Namespace(**{**defaults(), **overrides, "device": "cuda"})
    device = torch.device("cuda")
    torch.cuda.reset_peak_memory_stats(device)
    trainer = train.Trainer(args, device)
    start = time.perf_counter()
    for _ in range(3):  # warm-up; with --compile this is where compilation happens
        trainer.step(*trainer.batch(), lr=1e-4)
    torch.cuda.synchronize(device)
    warmup_seconds = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step(*trainer.batch(), lr=1e-4)
    torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    # The same steps on one fixed batch: the difference is what the data path costs.
    latents, ids = trainer.batch()
    torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step(latents, ids, lr=1e-4)
    torch.cuda.synchronize(device)
    fixed = time.perf_counter() - start
    result = {
        "batch": args.batch,
        "head_size": args.head_size or train.PRESETS[args.preset][3],
        "temporal_attention": args.temporal_attention,
        "compile": args.compile,
        "channels_last": args.channels_last,
        "warmup_seconds": round(warmup_seconds, 1),
        "steps_per_s": round(steps / seconds, 3),
        "clips_per_s": round(steps * args.batch / seconds, 1),
        "clips_per_s_fixed_batch": round(steps * args.batch / fixed, 1),
        "peak_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2),
        "parameters": trainer.n_params,
    }
    if profile:
        from torch.profiler import ProfilerActivity, profile as torch_profile

        with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(3):
                trainer.step(latents, ids, lr=1e-4)
            torch.cuda.synchronize(device)
        result["profile_top_kernels"] = prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=15)
    del trainer
    torch.cuda.empty_cache()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--variants", default="all",
                        help="all, shipped, or a comma-separated list of variant names (shipped is always first)")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--profile", action="store_true", help="add a kernel table of the shipped variant")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("bench/prior/throughput.py needs a CUDA GPU")
    base = defaults()
    shipped = {k: base[k] for k in ("batch", "head_size", "temporal_attention", "compile", "channels_last")}
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
            results[name] = measure(overrides, args.steps, profile=args.profile and name == "shipped")
        except Exception as error:  # a variant that fails (e.g. a kernel's launch limit) is a result too
            results[name] = {"error": f"{type(error).__name__}: {error}"[:500]}
            torch.cuda.empty_cache()
        print(name, json.dumps({k: v for k, v in results[name].items() if k != "profile_top_kernels"}), flush=True)
        # Written after every variant: a call cut off by its time limit keeps what it measured.
        write_report(args, argv, shipped, results)
    top = results["shipped"]
    if "profile_top_kernels" in top:
        print(top["profile_top_kernels"])
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
