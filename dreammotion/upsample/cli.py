"""``dreammotion upsample``: cascade upsampling of an edited clip (see dreammotion.upsample.pipeline).

Writes, as one atomic folder ``--out-dir``: ``frames/`` (00000.png...), ``video.mp4``, ``upsample.json``
(settings, every step and whether it is a substitute, runtime) and ``stages/<name>/`` for each
intermediate clip (``resized`` = the plain-resize baseline of v2v, ``interpolated`` = before SR).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from dreammotion.errors import InputError
from dreammotion.io.frames import read_frames, write_frames
from dreammotion.upsample.interpolate import SUBSTITUTES, make_interpolator
from dreammotion.upsample.pipeline import UPSAMPLE_METHODS, upsample_clip
from dreammotion.upsample.resize import target_size
from dreammotion.upsample.v2v import V2VSettings, load_second_stage, recommended_settings
from dreammotion.utils.atomic import atomic_dir, write_json
from dreammotion.utils.devices import resolve_device, select_gpu_for_job

REPORT_NAME = "upsample.json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--frames", required=True, type=Path, help="edited frames (results/edits/{variant}/{id}/frames)")
    p.add_argument("--out-dir", required=True, type=Path, help="writes frames/, video.mp4, upsample.json, stages/")
    p.add_argument("--method", required=True, choices=UPSAMPLE_METHODS)
    p.add_argument("--scale", type=int, default=2, help="integer spatial factor (ignored with --height/--width)")
    p.add_argument("--height", type=int, default=None, help="explicit target height (with --width), e.g. 576")
    p.add_argument("--width", type=int, default=None, help="explicit target width (with --height), e.g. 1024")
    p.add_argument("--model", default=None,
                   help='second-stage model: JSON backend settings {"pretrained": ..., "device": ..., "dtype": ...} '
                        "or just a hub id / folder; required by v2v, optional SR model of interpolate+sr")
    p.add_argument("--prompt", default=None, help="target prompt of the edit (conditions the v2v pass)")
    p.add_argument("--strength", type=float, default=None,
                   help="fraction of the schedule the v2v pass re-noises to (default: the model's recommendation, "
                        "its second_stage.json, else 0.4)")
    p.add_argument("--steps", type=int, default=None, help="DDIM steps over the full schedule (default: as --strength; 25)")
    p.add_argument("--guidance-scale", type=float, default=None, help="default: as --strength; 7.5")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vae-chunk", type=int, default=8, help="frames per VAE call (memory)")
    p.add_argument("--cpu-offload", action="store_true",
                   help="keep text encoder and VAE on the CPU; the UNet visits the GPU only while denoising")
    p.add_argument("--interpolation-factor", type=int, default=2, help="k: F frames -> (F-1)*k+1 (interpolate+sr)")
    p.add_argument("--interpolation-model", default=None,
                   help="TorchScript frame interpolator model(img0, img1, dt); without it a substitute runs")
    p.add_argument("--interpolation-substitute", default="farneback", choices=sorted(SUBSTITUTES),
                   help="classical substitute used when no --interpolation-model is given")
    p.add_argument("--interpolation-device", default="auto", help="torch device of the interpolation model")
    p.add_argument("--fps", type=float, default=8.0, help="frame rate of the input; interpolation multiplies it")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--local-gpus", type=int, default=0,
                   help="GPUs of this machine to share between concurrent jobs (0: leave CUDA_VISIBLE_DEVICES alone)")
    p.add_argument("--gpu-lock-dir", default="results/.gpu-locks", help="lock files for --local-gpus")


def parse_model_settings(text: str) -> dict:
    text = text.strip()
    if not text.startswith("{"):
        return {"pretrained": text}
    try:
        settings = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"--model is not valid JSON: {err}") from err
    if not isinstance(settings, dict):
        raise InputError(f"--model must be a JSON object, got {type(settings).__name__}")
    return settings


def _versions() -> dict:
    import diffusers
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "diffusers": diffusers.__version__}


def run(args: argparse.Namespace) -> int:
    # Claim a GPU before anything initialises CUDA; the claim is held until the process exits.
    gpu_claim = select_gpu_for_job(args.gpu_lock_dir, args.local_gpus)  # noqa: F841
    import torch

    from dreammotion.io.write import write_video

    started = time.perf_counter()
    frames = read_frames(args.frames)
    num_frames, in_height, in_width, _ = frames.shape
    height, width = target_size(in_height, in_width, args.scale, target_height=args.height, target_width=args.width)

    uses_model = args.method == "v2v" or (args.method == "interpolate+sr" and args.model)
    if args.method == "v2v" and not args.model:
        raise InputError("--method v2v needs --model (the second-stage model: hub id, folder or JSON settings)")
    if uses_model and args.prompt is None:
        raise InputError(f"--method {args.method} with a second-stage model needs --prompt (the edit's target prompt)")
    second_stage, v2v_settings, load_seconds = None, None, 0.0
    if uses_model:
        load_started = time.perf_counter()
        second_stage = load_second_stage(parse_model_settings(args.model), cpu_offload=args.cpu_offload)
        load_seconds = time.perf_counter() - load_started
        given = {"strength": args.strength, "steps": args.steps, "guidance_scale": args.guidance_scale}
        chosen = {**recommended_settings(second_stage.model), **{k: v for k, v in given.items() if v is not None}}
        v2v_settings = V2VSettings(args.prompt, chosen["strength"], int(chosen["steps"]), chosen["guidance_scale"],
                                   args.seed, args.vae_chunk)
        if second_stage.compute_device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(second_stage.compute_device)
    interpolator = None
    if args.method == "interpolate+sr":
        interpolator = make_interpolator(args.interpolation_model, args.interpolation_substitute,
                                         resolve_device(args.interpolation_device))

    upsample_started = time.perf_counter()
    result = upsample_clip(
        frames, args.method, height=height, width=width, second_stage=second_stage, v2v_settings=v2v_settings,
        interpolator=interpolator, interpolation_factor=args.interpolation_factor, progress=not args.no_progress,
    )
    upsample_seconds = time.perf_counter() - upsample_started
    out_fps = args.fps * (args.interpolation_factor if args.method == "interpolate+sr" else 1)

    report = {
        "method": args.method,
        "input": {"frames": str(args.frames), "num_frames": num_frames, "height": in_height, "width": in_width, "fps": args.fps},
        "output": {"num_frames": len(result.frames), "height": int(result.frames.shape[1]),
                   "width": int(result.frames.shape[2]), "fps": out_fps},
        "steps": result.steps,
        "substitutes": [step["step"] + ": " + step.get("method", step.get("filter", "")) for step in result.steps if step.get("substitute")],
        "stages_kept": {name: f"stages/{name}" for name in result.stages},
        "runtime_s": {"load_model": round(load_seconds, 3), "upsample": round(upsample_seconds, 3),
                      "total": round(time.perf_counter() - started, 3)},
        "peak_gpu_memory_mb": (round(torch.cuda.max_memory_allocated(second_stage.compute_device) / 2**20, 1)
                               if second_stage is not None and second_stage.compute_device.type == "cuda" else None),
        "versions": _versions(),
    }
    with atomic_dir(args.out_dir) as tmp:
        write_frames(result.frames, tmp / "frames")
        for name, clip in result.stages.items():
            write_frames(clip, tmp / "stages" / name)
        write_video(result.frames, tmp / "video.mp4", fps=out_fps)
        report["runtime_s"]["total"] = round(time.perf_counter() - started, 3)
        write_json(tmp / REPORT_NAME, report)
    substitutes = f" (substitutes: {'; '.join(report['substitutes'])})" if report["substitutes"] else ""
    print(f"upsample {args.method}: {num_frames}x{in_height}x{in_width} -> "
          f"{len(result.frames)}x{result.frames.shape[1]}x{result.frames.shape[2]} in {args.out_dir}{substitutes}")
    return 0
