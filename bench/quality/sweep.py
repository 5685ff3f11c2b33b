"""Small sweep of edit settings on three suite edits (one colour, one shape, one background change).

    .venv/bin/python bench/quality/sweep.py --out bench/quality/sweep.json

Each run optimises to its final iteration count with a checkpoint at the halfway point
(checkpoint_every = iterations / 2); the checkpoint's latents are the same trajectory stopped there
(the per-iteration noise depends only on (seed, iteration), and plain SGD has no state), so one run
measures two iteration counts. Results are rewritten after every run (partial sweeps keep their data).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from dreammotion.edit import EditConfig
from dreammotion.edit.methods import edit_clip
from dreammotion.io.frames import to_uint8
from dreammotion.models import load_t2v
from dreammotion.synthetic.edit_quality import SCALAR_METRICS, clip_metrics, render_edit, suite_edits
from dreammotion.utils.atomic import write_json

MODEL = "data/models/dreammotion-shapes-t2v"
# (name, settings); iterations is the final count, half of it is measured too.
RUNS = (
    ("lam0.1_lr0.4", dict(iterations=120, lr=0.4, lambda_s=0.1, lambda_t=0.1)),
    ("lam0_lr0.4", dict(iterations=60, lr=0.4, lambda_s=0.0, lambda_t=0.0)),
    ("lam1_lr0.4", dict(iterations=60, lr=0.4, lambda_s=1.0, lambda_t=1.0)),
    # Same trajectory as the first run, stopped at 60: gives lambda 0.1 at 30 iterations, and its
    # 60-iteration result must equal the first run's halfway checkpoint.
    ("lam0.1_lr0.4_short", dict(iterations=60, lr=0.4, lambda_s=0.1, lambda_t=0.1)),
    # Planned, not run (the shared CPU ran at 2-10 s per iteration): lr 0.8 x 60, lambda 0 x 120.
)


def measure(model, edit, clips, latents) -> dict:
    frames = to_uint8(model.decode_latents(latents))
    return clip_metrics(frames, edit, clips)


def run_one(model, edit, settings: dict, workdir: Path) -> dict:
    clips = render_edit(edit)
    halfway = settings["iterations"] // 2
    config = EditConfig(**settings, seed=edit.seed, checkpoint_every=halfway)
    checkpoint = workdir / f"{edit.edit_id}.pt"
    checkpoint.unlink(missing_ok=True)  # never resume from an earlier run
    edited = edit_clip(model, clips.source_frames, edit.source_prompt, edit.target_prompt,
                       clips.edit_region.astype("float32"), config, checkpoint_path=checkpoint, progress=False)
    halfway_state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    assert halfway_state["iteration"] == halfway
    return {
        "id": edit.edit_id,
        "kind": edit.kind,
        "baseline": clip_metrics(clips.source_frames, edit, clips),
        str(halfway): {**measure(model, edit, clips, halfway_state["x"]), "runtime_s": halfway_state["elapsed_s"]},
        str(settings["iterations"]): {**clip_metrics(edited.frames, edit, clips), "runtime_s": edited.result.runtime_s},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/quality/sweep.json"))
    parser.add_argument("--suite-seed", type=int, default=1)
    parser.add_argument("--runs", nargs="*", default=None, help="names of RUNS to do (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = load_t2v(MODEL)
    edits = suite_edits(3, seed=args.suite_seed)  # 000_colour, 001_shape, 002_background
    report = {"model": MODEL, "suite_seed": args.suite_seed, "edits": [e.edit_id for e in edits],
              "prompts": {e.edit_id: [e.source_prompt, e.target_prompt] for e in edits},
              "metrics": list(SCALAR_METRICS), "runs": {}}
    if args.out.exists():  # keep the runs already done (a sweep can be continued run by run)
        previous = json.loads(args.out.read_text())
        if previous["edits"] == report["edits"]:
            report["runs"] = previous["runs"]
    with tempfile.TemporaryDirectory() as workdir:
        for name, settings in RUNS:
            if args.runs and name not in args.runs or name in report["runs"]:
                continue
            started = time.time()
            rows = []
            for edit in edits:
                rows.append(run_one(model, edit, settings, Path(workdir)))
                print(f"{name} {edit.edit_id} done after {time.time() - started:.0f} s", flush=True)
            report["runs"][name] = {"settings": settings, "wall_s": round(time.time() - started, 1), "edits": rows}
            write_json(args.out, report)
            for row in rows:
                for count in (str(settings["iterations"] // 2), str(settings["iterations"])):
                    v = row[count]["values"]
                    print(f"{name} {row['id']} it={count}: psnr {v['gt_psnr']:.2f} (source "
                          f"{row['baseline']['values']['gt_psnr']:.2f}) inside {v['gt_psnr_inside_mask']:.2f} "
                          f"outside {v['gt_psnr_outside_mask']:.2f} preserved {v['preserved_psnr']:.2f} "
                          f"[{row[count]['runtime_s']:.0f} s]", flush=True)


if __name__ == "__main__":
    main()
