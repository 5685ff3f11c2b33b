"""``dreammotion panel``: the report's view of one edit (side-by-side panel, loss curves, HTML page).

Writes into ``--out-dir``: ``panel.gif`` and ``panel.mp4`` (input | mask overlay | edit | upsampled |
ground truth), ``loss.png`` (the curves of the edit's log.csv), ``frames.png`` (per-frame plots with the
window borders of a long clip marked) and ``panel.html`` (all embedded, with the prompts and the edit's
metrics).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dreammotion.records import edit_method, read_edit_record, read_json_object


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input-frames", required=True, type=Path, help="model-sized input frames (results/frames/{video})")
    p.add_argument("--masks", required=True, type=Path, help="mask folder of the row (results/masks/{video}/{object})")
    p.add_argument("--edit-frames", required=True, type=Path, help="decoded edit (results/edits/{variant}/{id}/frames)")
    p.add_argument("--upsampled-frames", type=Path, default=None,
                   help="upsampled edit (results/upsampled/{variant}/{id}/frames); leave out when upsampling is off")
    p.add_argument("--upsample-json", type=Path, default=None, help="upsample.json of the upsampled edit (method, substitutes)")
    p.add_argument("--ground-truth-frames", type=Path, default=None,
                   help="true edit of the row (results/ground_truth/{id}), shown as the last column; rows without one leave it out")
    p.add_argument("--metrics-json", type=Path, default=None,
                   help="metrics of the edit (results/metrics/{variant}/{id}.json), shown as a table on the page")
    p.add_argument("--log-csv", required=True, type=Path, help="per-iteration losses of the edit (log.csv)")
    p.add_argument("--edit-json", required=True, type=Path, help="edit.json of the edit (prompts, settings)")
    p.add_argument("--fps", type=float, default=8.0, help="frame rate of the input clip in the panel")
    p.add_argument("--out-dir", required=True, type=Path,
                   help="writes panel.gif, panel.mp4, loss.png, frames.png, panel.html")


# The keys of edit.json the page shows.
EDIT_JSON_KEYS = ("id", "variant", "source_prompt", "target_prompt", "settings", "model", "runtime_s")


def _method(edit_info: dict) -> str:
    method, _ = edit_method(edit_info)
    if method == "sdedit":
        return "sdedit (baseline: no optimisation)"
    settings = edit_info["settings"]
    keys = ("iterations", "lr", "score", "use_mask", "lambda_s", "lambda_t")
    return "dreammotion (" + ", ".join(f"{key}={settings[key]}" for key in keys if key in settings) + ")"


def _details(edit_info: dict, upsample_info: dict | None) -> dict[str, str]:
    details = {
        "source prompt": edit_info["source_prompt"],
        "target prompt": edit_info["target_prompt"],
        "method": _method(edit_info),
        "model": str(edit_info["model"]),
        "edit runtime (s)": str(edit_info["runtime_s"]),
    }
    if upsample_info is None:
        details["upsampled"] = "no (upsample.method: none)"
    else:
        substitutes = upsample_info.get("substitutes") or []
        details["upsampled"] = upsample_info["method"] + (f" (substitutes: {'; '.join(substitutes)})" if substitutes else "")
    return details


def _per_frame_clips(clips) -> dict:
    """The clips the per-frame plot compares: the edit (at the model's size and frame count, before any
    upsampling), the input, and the ground truth where the row has one."""
    chosen = {"edit": clips.edit, "input": clips.input}
    if clips.ground_truth is not None and len(clips.ground_truth) == len(clips.edit):
        chosen["ground truth"] = clips.ground_truth
    return chosen


def run(args: argparse.Namespace) -> int:
    from dreammotion.report.curves import write_loss_curves
    from dreammotion.report.page import panel_page, write_page
    from dreammotion.report.per_frame import write_per_frame_plot
    from dreammotion.report.panel import build_panel, load_panel_clips, write_panel

    edit_info = read_edit_record(args.edit_json, EDIT_JSON_KEYS)
    upsample_info = (read_json_object(args.upsample_json, "upsample record", ("method",))
                     if args.upsample_json is not None else None)
    title = f"{edit_info['id']} ({edit_info['variant']})"

    clips = load_panel_clips(args.input_frames, args.masks, args.edit_frames, args.upsampled_frames,
                             args.ground_truth_frames)
    metrics = (read_json_object(args.metrics_json, "metrics record", ("metrics",))["metrics"]
               if args.metrics_json is not None else None)
    panel = build_panel(clips)
    # Keep the clip's duration when the upsampler interpolated extra frames.
    fps = args.fps * panel.shape[0] / clips.input.shape[0]
    out = args.out_dir
    write_panel(panel, out / "panel.gif", out / "panel.mp4", fps=fps)
    write_loss_curves(args.log_csv, out / "loss.png", title)
    write_per_frame_plot(_per_frame_clips(clips), metrics, edit_info, out / "frames.png", title)
    columns = clips.labelled()[1]
    page = panel_page(out / "panel.gif", out / "loss.png", title, _details(edit_info, upsample_info), columns, metrics,
                      per_frame_png=out / "frames.png")
    write_page(page, out / "panel.html")
    print(f"panel {panel.shape[0]}x{panel.shape[1]}x{panel.shape[2]} at {fps:g} fps in {out}")
    return 0
