"""How close do the interpolation substitutes come to the true in-between frames?

    python bench/upsample/interpolation.py --out bench/upsample/interpolation.json [--clips 24]

The renderer draws any frame count, so a clip of (K - 1) * k + 1 frames has exact in-between frames
for its K keyframes (every k-th frame). For each substitute of ``dreammotion.upsample.interpolate``
(``linear``, ``farneback``) and each factor k, the keyframes are interpolated back to the full clip
and the new frames (never the copied keyframes) are compared with the truth: PSNR (dB, peak 255; exact frames count as 60 dB) and
the object's centroid error (px, between nearest-colour object masks of the result and the truth).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from dreammotion.metrics.groundtruth import centroid, nearest_colour_mask, psnr_per_frame, reference_colours
from dreammotion.synthetic import render, sample_spec
from dreammotion.upsample.interpolate import interpolate_frames, make_interpolator
from dreammotion.utils.atomic import write_json


PSNR_CAP = 60.0  # an exactly right frame has infinite PSNR; it counts as 60 dB in the means


def measure(substitute: str, factor: int, clips: int, keyframes: int, size: int, seed: int) -> dict:
    interpolator = make_interpolator(substitute=substitute)
    rng = np.random.default_rng(seed)
    psnrs, errors = [], []
    start = time.perf_counter()
    for _ in range(clips):
        frames = (keyframes - 1) * factor + 1
        spec = sample_spec(rng, frames, held_out="any")
        truth, object_mask = render(spec, size, frames)
        result = interpolate_frames(truth[::factor], factor, interpolator)
        new = [i for i in range(frames) if i % factor]
        psnrs += [min(p, PSNR_CAP) for p in psnr_per_frame(result[new], truth[new]) if p is not None]
        object_colour, background_colour = reference_colours(truth, object_mask)
        # Both centroids from the same nearest-colour rule, so antialiased edges count alike.
        found = nearest_colour_mask(result[new], object_colour, background_colour)
        expected = nearest_colour_mask(truth[new], object_colour, background_colour)
        for mask_true, mask_found in zip(expected, found):
            a, b = centroid(mask_true), centroid(mask_found)
            if a is not None and b is not None:
                errors.append(float(np.hypot(a[0] - b[0], a[1] - b[1])))
    return {
        "substitute": substitute, "factor": factor, "clips": clips, "keyframes": keyframes, "size": size,
        "new_frames": len(psnrs),
        "exact_frames": int(sum(p == PSNR_CAP for p in psnrs)),
        "psnr_median": round(float(np.median(psnrs)), 2),
        "psnr_mean": round(float(np.mean(psnrs)), 2), "psnr_std": round(float(np.std(psnrs, ddof=1)), 2),
        "centroid_error_px_mean": round(float(np.mean(errors)), 3) if errors else None,
        "seconds": round(time.perf_counter() - start, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--keyframes", type=int, default=8, help="keyframes per clip (the model's window)")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    results = [measure(s, k, args.clips, args.keyframes, args.size, args.seed)
               for k in (2, 4) for s in ("linear", "farneback")]
    for r in results:
        print(json.dumps(r))
    write_json(args.out, {"command": "python bench/upsample/interpolation.py " + " ".join(sys.argv[1:] if argv is None else argv),
                          "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
