"""Long clips: seams at window borders, and memory against clip length (issue 19).

    python bench/long/seams.py seams --model data/models/dreammotion-shapes-t2v --frames 32 --window 8 \
        --overlap 4 --n 3 --out bench/long/seams.json
    python bench/long/seams.py memory --model data/models/dreammotion-shapes-t2v --lengths 8 32 128 \
        --window 8 --out bench/long/memory_prior.json

`seams`: synthetic colour edits rendered at `--frames` frames with their ground truth; each edited
twice, jointly over overlapping windows (``edit.window``) and by the naive route (each window apart,
then cross-faded). Per frame: PSNR to the ground truth and flicker, |mean((e_t - e_{t-1})^2) -
mean((g_t - g_{t-1})^2)| (how much more or less the edit changes between frames than the truth
does). Border frames (where a window starts or ends) are compared with window middles.
`memory`: peak memory of a few windowed iterations per clip length (CUDA: max allocated; CPU: RSS).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def per_frame(edit: np.ndarray, truth: np.ndarray) -> dict:
    psnrs = [psnr(e, g) for e, g in zip(edit, truth)]
    e, g = edit.astype(np.float64), truth.astype(np.float64)
    energy_e = np.mean((e[1:] - e[:-1]) ** 2, axis=(1, 2, 3))
    energy_g = np.mean((g[1:] - g[:-1]) ** 2, axis=(1, 2, 3))
    return {"psnr": psnrs, "flicker": [0.0] + list(np.abs(energy_e - energy_g))}


def decode(model, latents) -> np.ndarray:
    pixels = model.decode_latents(latents.to(model.device))
    return ((pixels.permute(0, 2, 3, 1) + 1) * 127.5).round().clamp(0, 255).byte().cpu().numpy()


def seams(args) -> dict:
    from dreammotion.edit import EditConfig, dreammotion_edit
    from dreammotion.edit.windows import Windows, independent_windows
    from dreammotion.models import load_t2v
    from dreammotion.synthetic import caption, render
    from dreammotion.synthetic.render import OBJECT_COLOURS, colours_compatible, sample_spec

    model = load_t2v(args.model, device=args.device)
    windows = Windows.for_clip(args.frames, args.window, args.overlap)
    borders = set(windows.borders())
    middles = {s + windows.length // 2 for s in windows.starts} - borders
    rng = np.random.default_rng(args.seed)
    settings = {"iterations": args.iterations, "guidance_scale": args.guidance_scale, "lambda_s": 0.1, "lambda_t": 0.1}
    edits = []
    for index in range(args.n):
        source = sample_spec(rng, frames=args.frames)
        colours = [c for c in OBJECT_COLOURS if c != source.colour and colours_compatible(c, source.background)]
        target = source.replace(colour=str(rng.choice(colours)))
        frames, masks = render(source, frames=args.frames)
        truth, _ = render(target, frames=args.frames)
        latents = model.encode_frames(torch.tensor(frames).permute(0, 3, 1, 2).float() / 127.5 - 1)
        mask = torch.tensor(masks, dtype=torch.float32)
        record = {"source": caption(source), "target": caption(target)}
        for route in ("joint", "naive"):
            start = time.perf_counter()
            if route == "joint":
                config = EditConfig(seed=index, window=args.window, window_overlap=args.overlap, **settings)
                result = dreammotion_edit(model, latents, caption(source), caption(target), mask, config, progress=False)
                edited = result.latents
            else:
                config = EditConfig(seed=index, **settings)
                edited = independent_windows(model, latents, caption(source), caption(target), mask, config, windows,
                                             progress=False)
            values = per_frame(decode(model, edited), truth)
            values["seconds"] = round(time.perf_counter() - start, 1)
            values["border_psnr"] = float(np.mean([values["psnr"][f] for f in sorted(borders)]))
            values["middle_psnr"] = float(np.mean([values["psnr"][f] for f in sorted(middles)]))
            values["worst_border_drop_db"] = float(np.mean([values["psnr"][f] for f in sorted(middles)])
                                                   - min(values["psnr"][f] for f in sorted(borders)))
            values["border_flicker"] = float(np.mean([values["flicker"][f] for f in sorted(borders) if f > 0]))
            values["middle_flicker"] = float(np.mean([values["flicker"][f] for f in sorted(middles) if f > 0]))
            record[route] = values
            print(index, route, {k: round(v, 2) for k, v in values.items() if isinstance(v, float)}, flush=True)
        record["source_psnr"] = psnr(frames, truth)
        edits.append(record)
    return {"windows": windows.describe(), "borders": sorted(borders), "middles": sorted(middles),
            "settings": settings, "edits": edits}


def memory(args) -> dict:
    from dreammotion.edit import EditConfig, dreammotion_edit
    from dreammotion.models import load_t2v

    model = load_t2v(args.model, device=args.device)
    c, h, w = model.unet.config.in_channels, model.unet.config.sample_size, model.unet.config.sample_size
    rows = []
    for length in args.lengths:
        latents = torch.randn(1, c, length, h, w) * 0.2
        if model.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(model.device)
        config = EditConfig(iterations=args.iterations, window=args.window, window_overlap=args.overlap)
        result = dreammotion_edit(model, latents, "a red circle", "a blue circle", None, config, progress=False)
        rows.append({"frames": length, "peak_memory_mib": round(result.peak_memory_mib, 1),
                     "kind": result.peak_memory_kind, "seconds": round(result.runtime_s, 1)})
        print(rows[-1], flush=True)
    return {"window": args.window, "overlap": args.overlap, "rows": rows}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("seams", "memory"))
    parser.add_argument("--model", required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--lengths", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--overlap", type=int, default=4)
    parser.add_argument("--n", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--guidance-scale", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    report = seams(args) if args.mode == "seams" else memory(args)
    report["command"] = "python bench/long/seams.py " + " ".join(sys.argv[1:] if argv is None else argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
