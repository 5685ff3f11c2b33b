"""Gates of the embedded prior: do DDIM samples show what the prompt asks for, and are they clean?

    python -m dreammotion.prior.gates --model data/models/dreammotion-shapes-t2v --n 48 \
        --out data/models/dreammotion-shapes-t2v/gates.json --card data/models/dreammotion-shapes-t2v/README.md

One command measures everything the model card claims and writes both ``gates.json`` and the card's
"Gates" section (between ``<!-- gates:begin -->`` and ``<!-- gates:end -->``):

- prompt following: samples from held-out (colour, shape) pairs (never seen in training) and from
  training pairs, classified by ``dreammotion.prior.classify`` (no learned weights);
- the classifier itself, on ground-truth renders under realistic degradations (noise, blur, colour
  shift), so that a gate number can be trusted;
- background noise: the pixel standard deviation of the background of samples from plain-background
  prompts (a rendered plain background has 0).

Targets (issue 13): held-out colour accuracy >= 0.90, shape >= 0.80, background noise <= 8 (of 255),
at guidance 5 and 25 DDIM steps.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from dreammotion import model_files
from dreammotion.model_files import read_training_record
from dreammotion.prior.classify import DIFF_THRESHOLD, classify_clip, validate
from dreammotion.synthetic.captions import caption
from dreammotion.synthetic.render import BACKGROUND_COLOURS, sample_spec
from dreammotion.utils.atomic import write_json
from dreammotion.utils.devices import resolve_device

TARGETS = {"colour_accuracy": 0.90, "shape_accuracy": 0.80, "background_noise_std": 8.0}
CARD_BEGIN, CARD_END = "<!-- gates:begin -->", "<!-- gates:end -->"


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


def background_noise(clip: np.ndarray, background: str) -> float:
    """Pixel standard deviation (of 255) of a clip's background, for a plain `background` colour.

    The object is, per frame, the largest region whose 3x3-averaged distance to the background
    colour exceeds the classifier's threshold, grown by one pixel; the rest is background (noise
    specks outside the object count as noise). The std is taken about the background's own mean
    colour per channel, so a uniform tint does not count as noise. If the "object" covers nearly
    the whole frame (a sample that is all noise), every pixel is counted."""
    from scipy import ndimage

    from dreammotion.prior.classify import largest_region

    pixels = clip.astype(np.float64)
    distance = np.abs(pixels - np.array(BACKGROUND_COLOURS[background], dtype=np.float64)).max(axis=-1)
    smoothed = ndimage.uniform_filter(distance, size=(1, 3, 3))
    objects = np.stack([largest_region(frame) for frame in smoothed > DIFF_THRESHOLD])
    objects = ndimage.binary_dilation(objects, structure=np.ones((1, 3, 3), dtype=bool))
    rest = pixels[~objects]  # (N, 3)
    if len(rest) < 0.1 * objects.size:
        rest = pixels.reshape(-1, 3)
    return float(np.sqrt(((rest - rest.mean(axis=0)) ** 2).mean()))


def measure_background_noise(model, rng, n: int, *, steps: int, guidance_scale: float, seed: int) -> dict:
    from dreammotion.prior.sample import sample_clips

    specs = []
    while len(specs) < n:
        spec = sample_spec(rng, held_out="any")
        if spec.texture == "plain":
            specs.append(spec)
    clips = sample_clips(model, [caption(s) for s in specs], frames=8, steps=steps,
                         guidance_scale=guidance_scale, seed=seed)
    values = [background_noise(c, s.background) for c, s in zip(clips, specs)]
    return {"n": n, "mean": float(np.mean(values)), "median": float(np.median(values)),
            "max": float(np.max(values)), "per_sample": [round(v, 2) for v in values]}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="model folder (not needed with --from-report)")
    parser.add_argument("--n", type=int, default=48, help="prompts per group (held-out pairs, training pairs, plain backgrounds)")
    parser.add_argument("--steps", type=int, default=25, help="DDIM steps")
    parser.add_argument("--guidance-scale", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=None, help="gates.json to write")
    parser.add_argument("--grid", type=Path, default=None, help="PNG grid of the held-out samples")
    parser.add_argument("--card", type=Path, default=None, help="model card whose Gates section is rewritten")
    parser.add_argument("--from-report", type=Path, default=None,
                        help="rewrite --card from this gates.json (measured earlier, e.g. on a GPU) instead of sampling")


def gates(model, *, n: int, steps: int, guidance_scale: float, seed: int) -> tuple[dict, np.ndarray]:
    """Every gate measurement of one model (see the module docstring); returns (report, held-out clips)."""
    rng = np.random.default_rng(seed)
    report: dict = {"steps": steps, "guidance_scale": guidance_scale, "seed": seed, "targets": TARGETS,
                    "classifier": "dreammotion.prior.classify (background match + palette + shape IoU, no weights)"}
    start = time.time()
    held_out_clips = None
    for group in ("held_out", "training"):
        specs = [sample_spec(rng, held_out="only" if group == "held_out" else "exclude") for _ in range(n)]
        report[group], clips = evaluate(model, specs, steps=steps, guidance_scale=guidance_scale, seed=seed)
        if group == "held_out":
            held_out_clips = clips
    report["background_noise"] = measure_background_noise(model, rng, n, steps=steps, guidance_scale=guidance_scale, seed=seed)
    report["background_noise_std"] = report["background_noise"]["mean"]
    report["classifier_validation"] = validate([sample_spec(rng, held_out="any") for _ in range(n)], seed=seed)
    report["passed"] = {
        "held_out.colour_accuracy": report["held_out"]["colour_accuracy"] >= TARGETS["colour_accuracy"],
        "held_out.shape_accuracy": report["held_out"]["shape_accuracy"] >= TARGETS["shape_accuracy"],
        "background_noise_std": report["background_noise_std"] <= TARGETS["background_noise_std"],
    }
    report["seconds"] = round(time.time() - start, 1)
    return report, held_out_clips


def card_section(report: dict) -> str:
    """The model card's Gates section, from a gates.json report."""
    ok = lambda passed: "met" if passed else "**not met**"  # noqa: E731
    passed = report["passed"]
    lines = [
        CARD_BEGIN,
        f"Measured by `python -m dreammotion.prior.gates` (DDIM {report['steps']} steps, guidance "
        f"{report['guidance_scale']}, seed {report['seed']}, {report['held_out']['n']} prompts per group, "
        f"weights after {report.get('clips_seen', '?'):,} training clips); data: `gates.json`.",
        "",
        "| gate | held-out pairs | training pairs | target |",
        "|---|---|---|---|",
        f"| colour accuracy | {report['held_out']['colour_accuracy']:.3f} | {report['training']['colour_accuracy']:.3f} "
        f"| >= {TARGETS['colour_accuracy']} ({ok(passed['held_out.colour_accuracy'])}) |",
        f"| shape accuracy | {report['held_out']['shape_accuracy']:.3f} | {report['training']['shape_accuracy']:.3f} "
        f"| >= {TARGETS['shape_accuracy']} ({ok(passed['held_out.shape_accuracy'])}) |",
        "",
        f"Background noise (pixel std of the background of {report['background_noise']['n']} samples from "
        f"plain-background prompts, of 255; a render has 0): mean {report['background_noise_std']:.2f}, "
        f"median {report['background_noise']['median']:.2f}, max {report['background_noise']['max']:.2f}; "
        f"target <= {TARGETS['background_noise_std']} ({ok(passed['background_noise_std'])}).",
        "",
        "The classifier on ground-truth renders under degradations (what the numbers above can be trusted for):",
        "",
        "| degradation | colour acc. | shape acc. |",
        "|---|---|---|",
    ]
    for name, row in report["classifier_validation"].items():
        lines.append(f"| {name} | {row['colour_accuracy']:.3f} | {row['shape_accuracy']:.3f} |")
    lines.append(CARD_END)
    return "\n".join(lines)


def write_card_section(card: Path, report: dict) -> None:
    """Rewrite the Gates section of `card` (added at its end when the card has none yet)."""
    model_files.write_card_section(card, card_section(report), (CARD_BEGIN, CARD_END), append_heading="Gates")


def run(args: argparse.Namespace) -> int:
    if args.from_report:
        return model_files.card_from_report(args.card, args.from_report, write_card_section)
    if not args.model:
        raise SystemExit("--model is required (unless --from-report)")
    import torch

    from dreammotion.models import load_t2v
    from dreammotion.prior.sample import save_grid

    device = resolve_device(args.device)
    model = load_t2v(args.model, device=device, dtype=torch.float32)
    report, clips = gates(model, n=args.n, steps=args.steps, guidance_scale=args.guidance_scale, seed=args.seed)
    info = read_training_record(args.model)
    if info:
        report["clips_seen"] = info.get("total_clips_seen", info.get("clips_seen"))
        report["training_steps"] = info.get("total_steps")
    report["model"] = str(args.model)
    report["command"] = "python -m dreammotion.prior.gates " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None and k != "device"
    )
    if args.out:
        write_json(args.out, report)
    if args.grid:
        save_grid(clips, args.grid, scale=2)
    if args.card:
        write_card_section(args.card, report)
    print(json.dumps({"held_out": {k: report["held_out"][k] for k in ("colour_accuracy", "shape_accuracy")},
                      "training": {k: report["training"][k] for k in ("colour_accuracy", "shape_accuracy")},
                      "background_noise_std": report["background_noise_std"], "passed": report["passed"]}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dreammotion.prior.gates", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
