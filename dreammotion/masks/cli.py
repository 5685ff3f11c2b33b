"""``python -m dreammotion masks``: masks of one manifest row's object, with a report and a preview video.

Writes, as one atomic folder ``--out``: ``00000.png...`` (L, 0..255), ``masks.json`` (the report:
method, per-frame areas, drift flags) and ``preview.mp4`` (frames with the mask tinted).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from dreammotion.io.frames import read_frames, write_frames
from dreammotion.masks.make import MASK_METHODS, make_masks
from dreammotion.masks.preview import write_preview
from dreammotion.utils.atomic import atomic_dir, write_json

REPORT_NAME = "masks.json"
PREVIEW_NAME = "preview.mp4"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", required=True, type=Path, help="folder of model-sized frames (00000.png...)")
    parser.add_argument("--spec", required=True, help="mask spec: none | file:PATH | box=x0,y0,x1,y1@F | points=x,y;x,y@F")
    parser.add_argument("--method", default="auto", choices=MASK_METHODS,
                        help="segmenter for box/points specs; auto = sam if --sam-checkpoint is given, else grabcut")
    parser.add_argument("--out", required=True, type=Path, help="output folder (replaced whole, atomically)")
    parser.add_argument("--dilate", type=int, default=0, help="grow the mask by this many pixels")
    parser.add_argument("--feather", type=int, default=0, help="soften the mask edge over this many pixels")
    parser.add_argument("--sam-checkpoint", type=Path, default=None, help="segment-anything checkpoint (.pth)")
    parser.add_argument("--sam-model-type", default="vit_b", help="vit_b | vit_l | vit_h (tiny: test model)")
    parser.add_argument("--device", default="auto", help="torch device for SAM; auto = cuda if available")
    parser.add_argument("--context", default="", help="where the spec came from, for error messages")
    parser.add_argument("--spec-base", type=Path, default=None,
                        help="folder that relative file: paths resolve against (the manifest's folder)")
    parser.add_argument("--fps", type=float, default=8.0, help="frame rate of preview.mp4")


def run(args: argparse.Namespace) -> int:
    frames = read_frames(args.frames)
    masks, report = make_masks(
        frames,
        args.spec,
        method=args.method,
        dilate=args.dilate,
        feather=args.feather,
        sam_checkpoint=args.sam_checkpoint,
        sam_model_type=args.sam_model_type,
        device=args.device,
        context=args.context or f"--spec {args.spec!r}",
        base_dir=args.spec_base,
    )
    report["frames"] = str(args.frames)
    with atomic_dir(args.out) as tmp:
        write_frames(np.rint(masks * 255.0).astype(np.uint8), tmp)
        write_json(tmp / REPORT_NAME, report)
        write_preview(frames, masks, tmp / PREVIEW_NAME, fps=args.fps)
    drifted = sorted({flag["frame"] for flag in report["drift"]})
    drift_note = f" (drift flagged on frames {drifted}: see {PREVIEW_NAME})" if drifted else ""
    print(f"masks: {len(masks)} frames by {report['method']} -> {args.out}{drift_note}")
    return 0
