"""The cascaded route's temporal half: edit keyframes, interpolate, against editing every frame (issue 15).

    HF_HUB_OFFLINE=1 PYTHONPATH=. python bench/upsample/keyframes.py --clips 0 1 2 --out bench/upsample/keyframes.json

A synthetic colour edit rendered at 15 frames with its ground truth (`bench/long/seams.py`'s clips),
edited two ways by the embedded prior (8-frame window) with the demo's settings:

- **every frame**: the 15 frames at once, over overlapping 8-frame windows (``edit.window: 8``,
  overlap 4: 3 windows per iteration), the workflow's long-clip route;
- **keyframes + interpolation**: frames 0, 2, ..., 14 (8 keyframes, one window) edited, then the 7
  frames between them made by the Farneback optical-flow substitute (``upsample.interpolate``, k = 2),
  the `interpolate+sr` route's temporal half.

Per route: PSNR to the true edit over all 15 frames, over the keyframes and over the in-between
frames, and the edit's wall time (CPU, so a ratio, not a speed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "long"))
from seams import decode, draw_clip, psnr  # noqa: E402

from dreammotion.utils.atomic import write_json  # noqa: E402

FRAMES, FACTOR = 15, 2


def main(argv: list[str] | None = None) -> int:
    from dreammotion.edit import EditConfig, dreammotion_edit
    from dreammotion.models import load_t2v
    from dreammotion.synthetic import caption, render
    from dreammotion.upsample.interpolate import interpolate_frames, make_interpolator

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="data/models/dreammotion-shapes-t2v")
    parser.add_argument("--clips", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--guidance-scale", type=float, default=2.0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (the seconds are then GPU seconds)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    model = load_t2v(args.model, device=args.device)
    interpolator = make_interpolator(None, "farneback")
    keys = list(range(0, FRAMES, FACTOR))  # the frames the keyframe route edits
    between = [f for f in range(FRAMES) if f not in keys]
    settings = {"iterations": args.iterations, "guidance_scale": args.guidance_scale}
    rows = []
    for index in args.clips:
        source, target = draw_clip(args.seed, index, FRAMES)
        frames, masks = render(source, frames=FRAMES)
        truth, _ = render(target, frames=FRAMES)

        def encode(clip):
            return model.encode_frames(torch.tensor(clip).permute(0, 3, 1, 2).float() / 127.5 - 1)

        row = {"clip": index, "source": caption(source), "target": caption(target), "source_psnr": psnr(frames, truth)}
        started = time.perf_counter()
        # clip noise: the library default when bench/upsample's numbers were taken (it is window since 2026-12-07)
        config = EditConfig(seed=index, window=8, window_overlap=4, window_noise="clip", **settings)
        every = decode(model, dreammotion_edit(model, encode(frames), caption(source), caption(target),
                                               torch.tensor(masks, dtype=torch.float32), config, progress=False).latents)
        row["every_frame"] = {"seconds": round(time.perf_counter() - started, 1)}
        started = time.perf_counter()
        config = EditConfig(seed=index, **settings)
        edited_keys = decode(model, dreammotion_edit(model, encode(frames[keys]), caption(source), caption(target),
                                                     torch.tensor(masks[keys], dtype=torch.float32), config,
                                                     progress=False).latents)
        keyframed = interpolate_frames(edited_keys, FACTOR, interpolator)
        row["keyframes_interpolated"] = {"seconds": round(time.perf_counter() - started, 1)}
        for name, clip in (("every_frame", every), ("keyframes_interpolated", keyframed)):
            row[name].update({
                "psnr_all": float(np.mean([psnr(clip[f], truth[f]) for f in range(FRAMES)])),
                "psnr_keyframes": float(np.mean([psnr(clip[f], truth[f]) for f in keys])),
                "psnr_between": float(np.mean([psnr(clip[f], truth[f]) for f in between])),
            })
        print(json.dumps(row), flush=True)
        rows.append(row)
        report = result(args, argv, keys, settings, rows)
        if args.out:  # after every clip: a run cut off by a time limit keeps the clips it finished
            write_json(args.out, report)
    print(json.dumps(report["summary"], indent=1))
    return 0


def result(args, argv, keys, settings, rows) -> dict:
    summary = {name: {key: round(float(np.mean([r[name][key] for r in rows])), 2)
                      for key in ("psnr_all", "psnr_keyframes", "psnr_between", "seconds")}
               for name in ("every_frame", "keyframes_interpolated")}
    return {"frames": FRAMES, "factor": FACTOR, "keyframes": keys, "settings": settings, "device": args.device,
            "rows": rows, "summary": summary,
            "interpolation": "farneback optical flow (a substitute for a learned interpolator)",
            "command": "python bench/upsample/keyframes.py " + " ".join(sys.argv[1:] if argv is None else argv)}


if __name__ == "__main__":
    raise SystemExit(main())
