"""Edits per GPU hour, one-by-one vs batched (issue 16, item 2).

Times ``dreammotion_edit_batch`` (the code `dreammotion edit-batch` runs) on B edits at once, for
the embedded prior and for a randomly initialised UNet of ZeroScope's config (weights do not change
the cost), at several frame counts. Per case: warm-up iterations, then timed ones; the time per
iteration of the batch gives edits per hour at the paper's 200 iterations:
3600 / (seconds per batch iteration x 200 / B). Writes one JSON and prints a table.

    python3 bench/edits_per_hour.py --out bench/results/edits_per_hour.json          # on the GPU
    python3 bench/edits_per_hour.py --preset cpu-smoke --out /tmp/eph.json           # CPU check, seconds

Random latents and prompt embeddings stand in for real clips: the cost of an iteration depends on
the shapes only. The exact command of the committed results is in bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dreammotion_bench import SMOKE_UNET, ZEROSCOPE_UNET  # noqa: E402

from dreammotion.edit.config import EditConfig  # noqa: E402
from dreammotion.edit.optimizer import EditJob, dreammotion_edit_batch  # noqa: E402

PAPER_ITERATIONS = 200
REPO = Path(__file__).resolve().parents[1]

# (model, frames, batch sizes, height, width); latents are 8x smaller for the UNets of ZeroScope's
# config and the prior's autoencoder factor smaller for the prior.
PRESETS = {
    "h200": [
        ("prior", 8, (1, 4, 16, 32, 64), 32, 32),
        ("zeroscope-random", 8, (1, 2, 4, 8), 320, 576),
        ("zeroscope-random", 24, (1, 2, 4), 320, 576),
    ],
    "cpu-smoke": [
        ("prior", 8, (1, 2), 32, 32),
        ("smoke-random", 4, (1, 2), 64, 64),
    ],
}


class RandomUNetModel:
    """What the edit loop needs of a model (``dreammotion.models.T2VModel``): a UNet, its noise
    schedule and prompt embeddings; here a random UNet and random embeddings."""

    def __init__(self, config: dict, device, dtype, tokens: int = 77):
        from diffusers import DDIMScheduler, UNet3DConditionModel

        torch.manual_seed(0)
        self.unet = UNet3DConditionModel(**config).to(device, dtype).eval()
        self.scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                       clip_sample=False)
        self.device, self.dtype, self.tokens = torch.device(device), dtype, tokens
        self.source = f"random UNet3DConditionModel ({sum(p.numel() for p in self.unet.parameters()) / 1e9:.2f} B params)"

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        return self.scheduler.alphas_cumprod

    def encode_prompt(self, prompts: list[str]) -> torch.Tensor:
        g = torch.Generator().manual_seed(sum(map(ord, prompts[0])))
        dim = self.unet.config.cross_attention_dim
        return torch.randn(len(prompts), self.tokens, dim, generator=g).to(self.device, self.dtype)


def load(name: str, device, dtype):
    if name == "prior":
        from dreammotion.models import load_t2v

        model = load_t2v(REPO / "data/models/dreammotion-shapes-t2v", device=device, dtype=dtype)
        return model, lambda frames, h, w: tuple(model.encode_frames(torch.zeros(frames, 3, h, w)).shape[1:])
    config = ZEROSCOPE_UNET if name == "zeroscope-random" else SMOKE_UNET
    return RandomUNetModel(config, device, dtype), lambda frames, h, w: (config["in_channels"], frames, h // 8, w // 8)


def time_batch(model, batch: int, latent_shape: tuple, warmup: int, iters: int, device) -> dict:
    torch.manual_seed(batch)
    jobs = [EditJob(torch.randn(1, *latent_shape), f"a red circle {i}", f"a blue square {i}", None,
                    EditConfig(iterations=warmup + iters, seed=i, checkpoint_every=10**6))
            for i in range(batch)]
    warm = [EditJob(j.source_latents, j.source_prompt, j.target_prompt, None, EditConfig(iterations=warmup, seed=1))
            for j in jobs]
    dreammotion_edit_batch(model, warm, progress=False)  # kernels chosen, memory pools grown
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    results = dreammotion_edit_batch(model, jobs, progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    failed = [r for r in results if isinstance(r, Exception)]
    if failed:
        raise failed[0]
    per_iteration = seconds / (warmup + iters)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {
        "batch": batch,
        "seconds_per_batch_iteration": round(per_iteration, 4),
        "seconds_per_edit_iteration": round(per_iteration / batch, 4),
        "edit_seconds_at_200_iterations": round(per_iteration * PAPER_ITERATIONS / batch, 2),
        "edits_per_hour": round(3600 / (per_iteration * PAPER_ITERATIONS / batch), 1),
        "peak_gib": round(peak, 2) if peak is not None else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="h200")
    parser.add_argument("--out", required=True)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5, help="timed iterations per case (whole edit loop)")
    parser.add_argument("--max-seconds", type=float, default=0, help="skip the remaining cases after this long")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    if device.type == "cuda":
        torch.backends.cuda.enable_cudnn_sdp(False)  # its backward failed on these machines (device notes)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    started = time.perf_counter()
    cases, loaded = [], {}
    for name, frames, batches, height, width in PRESETS[args.preset]:
        if name not in loaded:
            loaded.clear()  # one model on the GPU at a time
            if device.type == "cuda":
                torch.cuda.empty_cache()
            loaded[name] = load(name, device, dtype)
        model, latent_shape = loaded[name]
        shape = latent_shape(frames, height, width)
        rows = []
        for batch in batches:
            if args.max_seconds and time.perf_counter() - started > args.max_seconds:
                rows.append({"batch": batch, "skipped": f"past --max-seconds {args.max_seconds}"})
                continue
            try:
                row = time_batch(model, batch, shape, args.warmup, args.iters, device)
            except torch.OutOfMemoryError:
                torch.cuda.empty_cache()
                rows.append({"batch": batch, "out_of_memory": True})
                break
            rows.append(row)
            print(f"[eph] {name} {frames}f {height}x{width} batch {batch}: {row['seconds_per_batch_iteration']:.3f} s/iter, "
                  f"{row['edits_per_hour']:.0f} edits/h, peak {row['peak_gib']} GiB", flush=True)
        one = next((r for r in rows if r.get("batch") == 1 and "edits_per_hour" in r), None)
        best = max((r for r in rows if "edits_per_hour" in r), key=lambda r: r["edits_per_hour"], default=None)
        cases.append({
            "model": name, "model_source": model.source, "frames": frames, "height": height, "width": width,
            "latents": list(shape), "rows": rows,
            "speedup_best_batch_vs_one_by_one": round(best["edits_per_hour"] / one["edits_per_hour"], 2)
            if one and best else None,
        })
    result = {
        "gpu": gpu, "dtype": str(dtype).removeprefix("torch."), "torch": torch.__version__,
        "settings": "EditConfig defaults (lambda_s = lambda_t = 0.1, DDS, guidance 7.5), FastPath defaults",
        "timing": f"whole edit loop, {args.warmup} warm-up iterations (separate run) then {args.warmup + args.iters} "
                  "timed; edits_per_hour = 3600 / (s per batch iteration x 200 / batch)",
        "command": "python3 bench/edits_per_hour.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "cases": cases,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
