"""Does a second-stage model beat plain resizing? PSNR to the ground-truth high-resolution render.

The synthetic renderer draws the same clip (a ``ClipSpec`` in normalised coordinates) at any size, so a
32x32 clip has an exact 64x64 ground truth. For each sampled clip:

    low    = render(spec, 32)                       the first stage's resolution
    resize = lanczos(low -> 64x64)                  the `resize` method
    v2v    = video_to_video(model, resize, caption)  the `v2v` method
    psnr_resize = PSNR(resize, render(spec, 64)),  psnr_v2v = PSNR(v2v, render(spec, 64))

PSNR per frame (dB, peak 255; ``dreammotion.metrics.groundtruth.psnr_per_frame``), averaged over frames
and then over clips. The prompt is the clip's own caption, as the target prompt of an edit would be.

With ``--blur`` / ``--colour-shift`` the 32x32 clip is first degraded the way edits are
(``dreammotion.prior.train_refiner.degrade_like_edits``: per clip, a Gaussian blur and a colour offset
drawn uniformly up to these maxima, seeded), while the truth stays the clean 64x64 render: does the
stage repair an edit-like clip, or only resize a clean one?
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dreammotion.metrics.groundtruth import psnr_per_frame, ssim_per_frame
from dreammotion.synthetic import caption, render, sample_spec
from dreammotion.upsample.refiner import takes_condition
from dreammotion.upsample.resize import resize_frames
from dreammotion.upsample.v2v import V2VSettings, load_second_stage, recommended_settings, video_to_video

SECOND_STAGE_MODEL = "data/models/dreammotion-shapes-refiner-64"


def clip_psnr(frames: np.ndarray, reference: np.ndarray) -> float:
    return float(np.mean(psnr_per_frame(frames, reference)))


def clip_ssim(frames: np.ndarray, reference: np.ndarray) -> float:
    return float(np.mean(ssim_per_frame(frames, reference)))


def object_colour_error(frames: np.ndarray, reference: np.ndarray, object_mask: np.ndarray) -> float:
    """Distance (grey levels, RGB Euclidean) between the mean colour of the object's pixels in
    `frames` and in `reference`: does the stage keep the (edited) object's colour?"""
    inside = object_mask.astype(bool)
    return float(np.linalg.norm(frames[inside].mean(axis=0) - reference[inside].astype(float).mean(axis=0)))


def degrade_frames(frames: np.ndarray, blur: float, colour_shift: float, seed: int) -> np.ndarray:
    """(F, H, W, 3) uint8 -> the same degraded as training degrades the condition (seeded)."""
    import torch

    from dreammotion.prior.train_refiner import degrade_like_edits

    clips = torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float()  # (1, 3, F, H, W)
    degraded = degrade_like_edits(clips, blur, colour_shift, generator=torch.Generator().manual_seed(seed))
    return degraded[0].permute(1, 2, 3, 0).numpy().astype(np.uint8)


def evaluate_second_stage(
    model_folder: str | Path,
    *,
    num_clips: int = 8,
    low_size: int = 32,
    high_size: int = 64,
    num_frames: int = 8,
    strength: float | None = None,
    steps: int | None = None,
    guidance_scale: float | None = None,
    seed: int = 0,
    device: str = "auto",
    blur: float = 0.0,
    colour_shift: float = 0.0,
) -> dict:
    """Mean PSNR / SSIM / object colour error to the ground-truth `high_size` render of
    v2v(resize(low clip)) and of resize(low clip).

    Settings left as None take the model's (``dreammotion.upsample.v2v.recommended_settings``).
    Clips are drawn by ``sample_spec`` (all colour/shape pairs) from ``numpy.random.default_rng(seed)``."""
    stage = load_second_stage({"pretrained": str(model_folder), "device": device})
    conditioned = takes_condition(stage.model.unet)
    defaults = recommended_settings(stage.model)
    given = {"strength": strength, "steps": steps, "guidance_scale": guidance_scale}
    chosen = {k: (defaults[k] if v is None else v) for k, v in given.items()}
    rng = np.random.default_rng(seed)
    clips = []
    for index in range(num_clips):
        spec = sample_spec(rng, num_frames, held_out="any")
        low, _ = render(spec, low_size, num_frames)
        if blur > 0 or colour_shift > 0:
            low = degrade_frames(low, blur, colour_shift, seed=seed + index)
        truth, object_mask = render(spec, high_size, num_frames)
        resized = resize_frames(low, high_size, high_size)
        settings = V2VSettings(caption(spec), chosen["strength"], int(chosen["steps"]), chosen["guidance_scale"],
                               seed=seed + index)
        refined = video_to_video(stage, resized, settings)
        clips.append({
            "caption": caption(spec),
            "psnr_resize": clip_psnr(resized, truth), "psnr_v2v": clip_psnr(refined, truth),
            "ssim_resize": clip_ssim(resized, truth), "ssim_v2v": clip_ssim(refined, truth),
            "colour_error_resize": object_colour_error(resized, truth, object_mask),
            "colour_error_v2v": object_colour_error(refined, truth, object_mask),
        })
    means = {f"mean_{key}": float(np.mean([c[key] for c in clips])) for key in clips[0] if key != "caption"}
    return {
        "model": str(model_folder),
        "conditioned": conditioned,
        "settings": {"num_clips": num_clips, "low_size": low_size, "high_size": high_size, "num_frames": num_frames,
                     **chosen, "seed": seed, "blur": blur, "colour_shift": colour_shift},
        **means,
        "clips": clips,
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m dreammotion.prior.second_stage_quality [MODEL] [--num-clips N] [--out JSON]``: the comparison as JSON."""
    import argparse
    import json
    import sys

    from dreammotion.utils.atomic import write_json

    parser = argparse.ArgumentParser(prog="python -m dreammotion.prior.second_stage_quality", description=main.__doc__)
    parser.add_argument("model", nargs="?", default=SECOND_STAGE_MODEL)
    parser.add_argument("--num-clips", type=int, default=8)
    parser.add_argument("--strength", type=float, default=None, help="default: the model's recommendation")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--guidance-scale", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--blur", type=float, default=0.0,
                        help="degrade the 32x32 clip first: Gaussian blur of std up to this (pixels)")
    parser.add_argument("--colour-shift", type=float, default=0.0,
                        help="degrade the 32x32 clip first: per-channel colour offset up to this (grey levels)")
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    result = evaluate_second_stage(args.model, num_clips=args.num_clips, strength=args.strength, steps=args.steps,
                                   guidance_scale=args.guidance_scale, seed=args.seed, device=args.device,
                                   blur=args.blur, colour_shift=args.colour_shift)
    result["command"] = "python -m dreammotion.prior.second_stage_quality " + " ".join(sys.argv[1:] if argv is None else argv)
    print(json.dumps({k: v for k, v in result.items() if k != "clips"}, indent=2))
    if args.out:
        write_json(Path(args.out), result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
