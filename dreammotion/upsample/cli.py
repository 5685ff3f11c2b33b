"""``dreammotion upsample``: cascade upsampling of an edited clip (see dreammotion.upsample.pipeline).

Writes, as one atomic folder ``--out-dir``: ``frames/`` (00000.png...), ``video.mp4``, ``upsample.json``
(settings, every step and whether it is a substitute, runtime) and ``stages/<name>/`` for each
intermediate clip (``resized`` = the plain-resize baseline of v2v, ``interpolated`` = before SR).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

from dreammotion.errors import InputError
from dreammotion.io.frames import read_frames, write_frames
from dreammotion.layout import GPU_LOCKS
from dreammotion.records import CLIP_FRAMES, CLIP_VIDEO, UPSAMPLE_RECORD
from dreammotion.upsample.config import UpsampleConfig, load_config
from dreammotion.upsample.interpolate import SUBSTITUTES, make_interpolator
from dreammotion.upsample.pipeline import UPSAMPLE_METHODS, upsample_clip
from dreammotion.upsample.resize import target_size
from dreammotion.upsample.v2v import UNCONDITIONED_SETTINGS, V2VSettings, load_second_stage, recommended_settings
from dreammotion.utils.atomic import atomic_dir, write_json
from dreammotion.utils.devices import resolve_device, select_gpu_for_job

REPORT_NAME = UPSAMPLE_RECORD


# Flags that set an UpsampleConfig key (their defaults are None: unset flags leave --config's value,
# and UpsampleConfig's defaults fill the rest).
CONFIG_FLAGS = ("method", "scale", "height", "width", "strength", "steps", "guidance_scale", "vae_chunk",
                "cpu_offload", "interpolation_factor", "interpolation_model", "interpolation_substitute")


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = UpsampleConfig()
    p.add_argument("--frames", required=True, type=Path, help="edited frames (results/edits/{variant}/{id}/frames)")
    p.add_argument("--out-dir", required=True, type=Path, help="writes frames/, video.mp4, upsample.json, stages/")
    p.add_argument("--config", default=None,
                   help="the upsample settings as one JSON object or file (the workflow's upsample section; "
                        "dreammotion.upsample.config); the flags below override its keys")
    p.add_argument("--method", default=None, choices=UPSAMPLE_METHODS, help=f"default: {d.method}")
    p.add_argument("--scale", type=int, default=None, help=f"integer spatial factor (ignored with --height/--width; default {d.scale})")
    p.add_argument("--height", type=int, default=None, help="explicit target height (with --width), e.g. 576")
    p.add_argument("--width", type=int, default=None, help="explicit target width (with --height), e.g. 1024")
    p.add_argument("--model", default=None,
                   help='second-stage model: JSON backend settings {"pretrained": ..., "device": ..., "dtype": ...} '
                        "or just a hub id / folder (default: the config's pretrained, revision, variant); "
                        "required by v2v, optional SR model of interpolate+sr")
    p.add_argument("--prompt", default=None, help="target prompt of the edit (conditions the v2v pass)")
    u = UNCONDITIONED_SETTINGS
    p.add_argument("--strength", type=float, default=None,
                   help="fraction of the schedule the v2v pass re-noises to (default: the model's recommendation, "
                        f"its second_stage.json, else {u['strength']})")
    p.add_argument("--steps", type=int, default=None,
                   help=f"DDIM steps over the full schedule (default: as --strength; {u['steps']})")
    p.add_argument("--guidance-scale", type=float, default=None, help=f"default: as --strength; {u['guidance_scale']}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vae-chunk", type=int, default=None, help=f"frames per VAE call (memory; default {d.vae_chunk})")
    p.add_argument("--cpu-offload", action="store_true", default=None,
                   help="keep text encoder and VAE on the CPU; the UNet visits the GPU only while denoising")
    p.add_argument("--interpolation-factor", type=int, default=None,
                   help=f"k: F frames -> (F-1)*k+1 (interpolate+sr; default {d.interpolation_factor})")
    p.add_argument("--interpolation-model", default=None,
                   help="TorchScript frame interpolator model(img0, img1, dt); without it a substitute runs")
    p.add_argument("--interpolation-substitute", default=None, choices=sorted(SUBSTITUTES),
                   help=f"classical substitute used when no --interpolation-model is given (default {d.interpolation_substitute})")
    p.add_argument("--interpolation-device", default="auto", help="torch device of the interpolation model")
    p.add_argument("--fps", type=float, default=8.0, help="frame rate of the input; interpolation multiplies it")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--local-gpus", type=int, default=0,
                   help="GPUs of this machine to share between concurrent jobs (0: leave CUDA_VISIBLE_DEVICES alone)")
    p.add_argument("--gpu-lock-dir", default=f"results/{GPU_LOCKS}", help="lock files for --local-gpus")


def parse_model_settings(text: str) -> dict:
    """--model: JSON settings (text starting with '{') or just the hub id / folder of the second stage."""
    from dreammotion.records import read_json_option

    if not text.strip().startswith("{"):
        return {"pretrained": text.strip()}
    return read_json_option(text, "--model")[1]  # '{...}' parses to an object or is an error


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
    settings = load_config(args.config, {flag: getattr(args, flag) for flag in CONFIG_FLAGS})
    frames = read_frames(args.frames)
    num_frames, in_height, in_width, _ = frames.shape
    height, width = target_size(in_height, in_width, settings.scale, target_height=settings.height,
                                target_width=settings.width)

    model_settings = parse_model_settings(args.model) if args.model else settings.model_settings()
    uses_model = settings.method == "v2v" or (settings.method == "interpolate+sr" and model_settings)
    if settings.method == "v2v" and not model_settings:
        raise InputError("--method v2v needs --model or the config's pretrained "
                         "(the second-stage model: hub id, folder or JSON settings)")
    if uses_model and args.prompt is None:
        raise InputError(f"--method {settings.method} with a second-stage model needs --prompt (the edit's target prompt)")
    second_stage, v2v_settings, load_seconds = None, None, 0.0
    if uses_model:
        load_started = time.perf_counter()
        second_stage = load_second_stage(model_settings, cpu_offload=settings.cpu_offload)
        load_seconds = time.perf_counter() - load_started
        given = {"strength": settings.strength, "steps": settings.steps, "guidance_scale": settings.guidance_scale}
        chosen = {**recommended_settings(second_stage.model), **{k: v for k, v in given.items() if v is not None}}
        v2v_settings = V2VSettings(args.prompt, chosen["strength"], int(chosen["steps"]), chosen["guidance_scale"],
                                   args.seed, settings.vae_chunk)
        if second_stage.compute_device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(second_stage.compute_device)
    interpolator = None
    if settings.method == "interpolate+sr":
        interpolator = make_interpolator(settings.interpolation_model, settings.interpolation_substitute,
                                         resolve_device(args.interpolation_device))

    upsample_started = time.perf_counter()
    result = upsample_clip(
        frames, settings.method, height=height, width=width, second_stage=second_stage, v2v_settings=v2v_settings,
        interpolator=interpolator, interpolation_factor=settings.interpolation_factor, progress=not args.no_progress,
    )
    upsample_seconds = time.perf_counter() - upsample_started
    out_fps = args.fps * (settings.interpolation_factor if settings.method == "interpolate+sr" else 1)

    report = {
        "method": settings.method,
        "settings": settings.to_dict(),
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
        write_frames(result.frames, tmp / CLIP_FRAMES)
        for name, clip in result.stages.items():
            write_frames(clip, tmp / "stages" / name)
        write_video(result.frames, tmp / CLIP_VIDEO, fps=out_fps)
        report["runtime_s"]["total"] = round(time.perf_counter() - started, 3)
        write_json(tmp / REPORT_NAME, report)
    substitutes = f" (substitutes: {'; '.join(report['substitutes'])})" if report["substitutes"] else ""
    print(f"upsample {settings.method}: {num_frames}x{in_height}x{in_width} -> "
          f"{len(result.frames)}x{result.frames.shape[1]}x{result.frames.shape[2]} in {args.out_dir}{substitutes}")
    return 0
