"""A second stage against Lanczos on finished edits and on clean renders, split by background.

    python bench/upsample/on_edits.py MODEL [MODEL ...] --out bench/upsample/on_edits.json [--renders 6] [--samples 1 8]

Edits: every edit of the workflow's results (``results/edits/<variant>/<id>/frames``, after ``make demo``)
whose manifest row (``data/demo/manifest.csv``) has a ``ground_truth_upsampled`` clip: the edit is
resized to 64x64 by Lanczos and refined by each model, and both are scored against the true 64x64 edit
(``results/ground_truth_upsampled/<id>``), as the workflow's ``upsampled_gt_psnr`` and ``lanczos_gt_psnr``
are. Renders: clean 32x32 renders of ``sample_spec`` clips (seed 0) against their 64x64 renders.
``--samples K`` also scores the mean of K one-step outputs from different noise seeds (the model's
conditional mean estimated by Monte Carlo): how much of the refiner's error is sampling noise.

Each case also splits the squared error (one-step output, seed 0) over three classes of pixels:
``wrong`` (the Lanczos-resized input is off the truth by more than 30 grey levels: for an edit, where
the edit itself is wrong), ``edges`` (a strong gradient in the truth or the input, dilated by one
pixel) and ``flat`` (the rest): each class's share of the pixels and its mean squared error for
Lanczos and the refiner, so a loss can be placed.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

from dreammotion.io.frames import read_frames
from dreammotion.prior.second_stage_quality import clip_psnr as psnr
from dreammotion.synthetic import caption, render, sample_spec
from dreammotion.upsample.resize import resize_frames
from dreammotion.upsample.v2v import V2VSettings, load_second_stage, recommended_settings, video_to_video
from dreammotion.utils.atomic import write_json


def load_frames(folder: Path) -> np.ndarray:
    try:
        return read_frames(folder)
    except FileNotFoundError as err:
        raise SystemExit(f"{err} (run `make demo` first)") from None


def edit_cases(results: Path, manifest: Path) -> list[dict]:
    cases = []
    for row in csv.DictReader(manifest.open()):
        truth = results / "ground_truth_upsampled" / row["id"]
        for edit in sorted(results.glob(f"edits/*/{row['id']}/frames")):
            cases.append({"name": f"edit {edit.parent.parent.name}/{row['id']}", "kind": "edit",
                          "background": row["target_prompt"].split(" on a ")[-1],
                          "low": load_frames(edit), "truth": load_frames(truth), "prompt": row["target_prompt"]})
    return cases


def render_cases(count: int) -> list[dict]:
    rng = np.random.default_rng(0)
    cases = []
    for _ in range(count):
        spec = sample_spec(rng, 8, held_out="any")
        cases.append({"name": f"render {caption(spec)}", "kind": "render", "background": caption(spec).split(" on a ")[-1],
                      "low": render(spec, 32, 8)[0], "truth": render(spec, 64, 8)[0], "prompt": caption(spec)})
    return cases


def is_plain(background: str) -> bool:
    return not any(word in background for word in ("striped", "checkered"))


WRONG_LEVELS, EDGE_GRADIENT = 30.0, 20.0


def pixel_classes(resized: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
    """(F, H, W) boolean masks of the wrong / edges / flat pixels of a case (see the module docstring)."""
    def edges(clip: np.ndarray) -> np.ndarray:
        grey = clip.astype(float).mean(-1)
        gradient = np.abs(np.diff(grey, axis=1, prepend=grey[:, :1])) + np.abs(np.diff(grey, axis=2, prepend=grey[:, :, :1]))
        return ndimage.binary_dilation(gradient > EDGE_GRADIENT, structure=np.ones((1, 3, 3)))

    wrong = np.abs(resized.astype(float) - truth.astype(float)).mean(-1) > WRONG_LEVELS
    edge = (edges(truth) | edges(resized)) & ~wrong
    return {"wrong": wrong, "edges": edge, "flat": ~wrong & ~edge}


def error_by_class(resized: np.ndarray, refined: np.ndarray, truth: np.ndarray) -> dict:
    squared = {name: ((clip.astype(float) - truth.astype(float)) ** 2).mean(-1)
               for name, clip in (("lanczos", resized), ("refiner", refined))}
    split = {}
    for name, mask in pixel_classes(resized, truth).items():
        share = float(mask.mean())
        split[name] = {"share": share, **{f"{method}_mse": float(err[mask].mean()) if mask.any() else None
                                          for method, err in squared.items()}}
    return split


def score(model: str, cases: list[dict], samples: list[int]) -> list[dict]:
    stage = load_second_stage({"pretrained": model, "device": "cpu"})
    settings = recommended_settings(stage.model)
    rows = []
    for case in cases:
        resized = resize_frames(case["low"], 64, 64)
        outputs = [video_to_video(stage, resized, V2VSettings(case["prompt"], settings["strength"], int(settings["steps"]),
                                                              settings["guidance_scale"], seed=seed)).astype(float)
                   for seed in range(max(samples))]
        row = {"case": case["name"], "kind": case["kind"], "background": case["background"],
               "lanczos_psnr": psnr(resized, case["truth"])}
        for k in samples:
            mean = np.clip(np.mean(outputs[:k], axis=0).round(), 0, 255).astype(np.uint8)
            row[f"refiner_psnr_k{k}"] = psnr(mean, case["truth"])
        row["error_by_pixel_class"] = error_by_class(resized, outputs[0], case["truth"])
        rows.append(row)
        print(model, json.dumps({k: (round(v, 2) if isinstance(v, float) else v) for k, v in row.items()
                                 if k != "error_by_pixel_class"}), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--manifest", type=Path, default=Path("data/demo/manifest.csv"))
    parser.add_argument("--renders", type=int, default=6)
    parser.add_argument("--samples", type=int, nargs="+", default=[1])
    args = parser.parse_args(argv)
    cases = edit_cases(args.results, args.manifest) + render_cases(args.renders)
    report = {"command": "python bench/upsample/on_edits.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "models": {}}
    for model in args.models:
        rows = score(model, cases, args.samples)
        summary = {}
        for kind in ("edit", "render"):
            for plain in (True, False):
                group = [r for r in rows if r["kind"] == kind and is_plain(r["background"]) == plain]
                if group:
                    summary[f"{kind}s, {'plain' if plain else 'textured'} background"] = {
                        "n": len(group),
                        **{f"gain_db_k{k}": float(np.mean([r[f"refiner_psnr_k{k}"] - r["lanczos_psnr"] for r in group]))
                           for k in args.samples},
                        # What each class of pixels adds to the refiner's squared error over Lanczos's.
                        "mse_added_by_pixel_class": {
                            name: float(np.mean([c["share"] * (c["refiner_mse"] - c["lanczos_mse"])
                                                 for r in group if (c := r["error_by_pixel_class"][name])["share"] > 0]
                                                or [0.0]))
                            for name in ("wrong", "edges", "flat")}}
        report["models"][model] = {"summary": summary, "cases": rows}
        print(model, json.dumps(summary, indent=1), flush=True)
    write_json(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
