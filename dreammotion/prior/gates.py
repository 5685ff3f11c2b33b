"""Prompt-following gate of the embedded prior: do DDIM samples show the colour and shape asked for?

    python -m dreammotion.prior.gates --model data/models/dreammotion-shapes-t2v --n 24 --out gate.json --grid grid.png

Prompts come from held-out (colour, shape) pairs (never seen in training) and, for comparison, from
training pairs; each sample is classified by ``dreammotion.prior.classify`` (no learned weights).
Target: colour accuracy >= 0.90 on held-out pairs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from dreammotion.prior.classify import classify_clip
from dreammotion.synthetic.captions import caption
from dreammotion.synthetic.render import sample_spec
from dreammotion.utils.atomic import write_json

COLOUR_TARGET = 0.90


def evaluate(model, specs, *, steps: int, guidance_scale: float, seed: int) -> tuple[dict, np.ndarray]:
    from dreammotion.prior.sample import sample_clips

    prompts = [caption(s) for s in specs]
    clips = sample_clips(model, prompts, frames=8, steps=steps, guidance_scale=guidance_scale, seed=seed)
    results = [classify_clip(c) for c in clips]
    rows = [
        {"prompt": p, "colour": r.colour, "shape": r.shape, "colour_ok": r.colour == s.colour, "shape_ok": r.shape == s.shape}
        for p, r, s in zip(prompts, results, specs)
    ]
    summary = {
        "n": len(rows),
        "colour_accuracy": float(np.mean([r["colour_ok"] for r in rows])),
        "shape_accuracy": float(np.mean([r["shape_ok"] for r in rows])),
        "no_object_found": int(sum(r["colour"] is None for r in rows)),
        "samples": rows,
    }
    return summary, clips


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True)
    parser.add_argument("--n", type=int, default=24, help="prompts per group (held-out pairs, training pairs)")
    parser.add_argument("--steps", type=int, default=25, help="DDIM steps")
    parser.add_argument("--guidance-scale", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="JSON report")
    parser.add_argument("--grid", type=Path, default=None, help="PNG grid of the held-out samples")


def run(args: argparse.Namespace) -> int:
    from dreammotion.models import load_t2v
    from dreammotion.prior.sample import save_grid

    model = load_t2v(args.model)
    rng = np.random.default_rng(args.seed)
    report = {"model": str(args.model), "steps": args.steps, "guidance_scale": args.guidance_scale, "seed": args.seed,
              "colour_target": COLOUR_TARGET, "classifier": "dreammotion.prior.classify (background match + palette + shape IoU)"}
    start = time.time()
    for group in ("held_out", "training"):
        specs = [sample_spec(rng, held_out="only" if group == "held_out" else "exclude") for _ in range(args.n)]
        report[group], clips = evaluate(model, specs, steps=args.steps, guidance_scale=args.guidance_scale, seed=args.seed)
        if group == "held_out" and args.grid:
            save_grid(clips, args.grid, scale=2)
        print(f"{group}: colour {report[group]['colour_accuracy']:.3f} shape {report[group]['shape_accuracy']:.3f}", flush=True)
    report["seconds"] = round(time.time() - start, 1)
    report["passed"] = report["held_out"]["colour_accuracy"] >= COLOUR_TARGET
    write_json(args.out, report)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dreammotion.prior.gates", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
