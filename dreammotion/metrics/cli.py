"""``python -m dreammotion metrics``: every metric of one edit, written to one JSON record."""

from __future__ import annotations

import argparse
from pathlib import Path

from dreammotion.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input-frames", required=True, help="folder of the input clip's PNG frames")
    parser.add_argument("--edit-frames", required=True, help="folder of the edited clip's PNG frames")
    parser.add_argument("--masks", required=True, help="folder of the source object's masks (one PNG per frame)")
    parser.add_argument("--target-prompt", required=True, help="the prompt the edit was made for (CLIP text alignment)")
    parser.add_argument("--source-prompt", default=None, help="the source prompt (copied into the record; default: edit.json)")
    parser.add_argument("--ground-truth", default=None, help="folder of the ground-truth edit's frames (synthetic rows)")
    parser.add_argument("--gt-masks", default=None, help="folder of the ground-truth edited object's masks (centroid error, motion against the true trajectories)")
    parser.add_argument("--upsampled-frames", default=None,
                        help="folder of the cascade's upsampled edit (results/upsampled/{variant}/{id}/frames): adds the upsampled_* metrics")
    parser.add_argument("--upsampled-ground-truth", default=None,
                        help="folder of the ground truth at the upsampled clip's resolution and frame rate (synthetic rows; "
                             "after interpolate+sr by k: (F-1)*k+1 frames): upsampled_gt_* and the Lanczos baseline lanczos_gt_*")
    parser.add_argument("--upsample-json", default=None,
                        help="the upsampled edit's upsample.json: after interpolate+sr the Lanczos baseline is its "
                             "interpolated clip (stages/interpolated) resized, and the PSNR/SSIM say keyframes and in-betweens apart")
    parser.add_argument("--edit-kind", default=None, help="label of the row's kind of edit (manifest edit_kind), kept in the record for the tables")
    parser.add_argument("--suite", default=None, help="label of the row's suite (manifest suite), kept in the record for the tables")
    parser.add_argument("--edit-json", required=True, help="the edit's edit.json (runtime_s, peak_memory_mib, settings, final_losses)")
    parser.add_argument("--config", default=None, help="metrics settings: a JSON file or inline JSON (see dreammotion.metrics.config)")
    parser.add_argument("--id", default=None, help="manifest row id (default: edit.json 'id', else the --out file name)")
    parser.add_argument("--variant", default=None, help="method variant (default: edit.json 'variant', else the --out folder name)")
    parser.add_argument("--out", required=True, help="the metrics JSON to write, e.g. results/metrics/{variant}/{id}.json")


def _read_clip(folder: str, flag: str, masks: bool = False):
    from dreammotion.io.frames import read_frames, read_masks

    try:
        return read_masks(folder) if masks else read_frames(folder)
    except (FileNotFoundError, ValueError) as err:
        raise InputError(f"{flag} {folder}: {err}") from None


def _keyframe_route(path: str, edit_frames, upsampled_frames):
    """The interpolated clip and k of interpolate+sr, from its upsample record (None for another method).

    The record and its stages are written together as one folder; a record whose clips do not have the
    frame counts it states is an InputError naming the file."""
    from dreammotion.metrics.upsampled import KeyframeRoute, clip_shape
    from dreammotion.records import read_json_object
    from dreammotion.upsample.interpolate import output_frame_count

    record = read_json_object(path, "upsample record (--upsample-json)", ("method",))
    if record["method"] != "interpolate+sr":
        return None
    settings, stages = record.get("settings"), record.get("stages_kept")
    factor = settings.get("interpolation_factor") if isinstance(settings, dict) else None
    stage = stages.get("interpolated") if isinstance(stages, dict) else None
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1 or not isinstance(stage, str):
        raise InputError(f"upsample record {path}: an interpolate+sr record needs settings.interpolation_factor "
                         f"(an integer >= 1, got {factor!r}) and stages_kept.interpolated (got {stage!r})")
    folder = Path(path).parent / stage
    interpolated = _read_clip(str(folder), f"--upsample-json {path}: stages_kept.interpolated")
    count = output_frame_count(len(edit_frames), factor)
    made = f"upsample record {path}: interpolate+sr by {factor} of the edit's {clip_shape(edit_frames)} makes {count} frames"
    if interpolated.shape != (count, *edit_frames.shape[1:]):  # interpolated at the edit's size
        raise InputError(f"{made} of that size, but its interpolated clip {folder} has {clip_shape(interpolated)}")
    if len(upsampled_frames) != count:
        raise InputError(f"{made}, but --upsampled-frames has {clip_shape(upsampled_frames)}")
    return KeyframeRoute(interpolated, factor)


def run(args: argparse.Namespace) -> int:
    from dreammotion.metrics.config import load_config
    from dreammotion.metrics.record import (
        MeasuredClips,
        build_record,
        check_clips,
        compute_metrics,
    )
    from dreammotion.records import read_edit_record
    from dreammotion.utils.atomic import write_json

    if args.gt_masks and not args.ground_truth:
        raise InputError("--gt-masks given without --ground-truth")
    if args.upsampled_ground_truth and not args.upsampled_frames:
        raise InputError("--upsampled-ground-truth given without --upsampled-frames")
    if args.upsample_json and not args.upsampled_frames:
        raise InputError("--upsample-json given without --upsampled-frames")
    out = Path(args.out)
    config = load_config(args.config)
    edit_info = read_edit_record(args.edit_json)
    edit_id = args.id or edit_info.get("id") or out.stem
    variant = args.variant or edit_info.get("variant") or out.parent.name
    labels = {"edit_kind": args.edit_kind, "suite": args.suite}
    edit_frames = _read_clip(args.edit_frames, "--edit-frames")
    upsampled_frames = _read_clip(args.upsampled_frames, "--upsampled-frames") if args.upsampled_frames else None
    clips = MeasuredClips(
        input_frames=_read_clip(args.input_frames, "--input-frames"),
        edit_frames=edit_frames,
        masks=_read_clip(args.masks, "--masks", masks=True),
        gt_frames=_read_clip(args.ground_truth, "--ground-truth") if args.ground_truth else None,
        gt_masks=_read_clip(args.gt_masks, "--gt-masks", masks=True) if args.gt_masks else None,
        upsampled_frames=upsampled_frames,
        gt_upsampled_frames=(_read_clip(args.upsampled_ground_truth, "--upsampled-ground-truth")
                             if args.upsampled_ground_truth else None),
        keyframe_route=_keyframe_route(args.upsample_json, edit_frames, upsampled_frames) if args.upsample_json else None,
    )
    names = {
        "input_frames": f"--input-frames {args.input_frames}",
        "edit_frames": f"--edit-frames {args.edit_frames}",
        "masks": f"--masks {args.masks}",
        "gt_frames": f"--ground-truth {args.ground_truth}",
        "gt_masks": f"--gt-masks {args.gt_masks}",
    }
    check_clips(clips, names)
    metrics = compute_metrics(clips, args.target_prompt, config, edit_info, edit_json_name=str(args.edit_json))
    record = build_record(
        edit_id=edit_id,
        variant=variant,
        metrics=metrics,
        edit_info=edit_info,
        source_prompt=args.source_prompt or edit_info.get("source_prompt"),
        target_prompt=args.target_prompt,
        config=config,
        labels=labels,
        inputs={
            "input_frames": args.input_frames,
            "edit_frames": args.edit_frames,
            "masks": args.masks,
            "ground_truth": args.ground_truth,
            "gt_masks": args.gt_masks,
            "upsampled_frames": args.upsampled_frames,
            "upsampled_ground_truth": args.upsampled_ground_truth,
            "upsample_json": args.upsample_json,
            "edit_json": args.edit_json,
        },
    )
    write_json(out, record)
    for name, result in metrics.items():
        shown = f"{result['value']:.4g}" if result["status"] == "ok" else f"{result['status']}: {result['reason']}"
        print(f"{name}: {shown}")
    return 0
