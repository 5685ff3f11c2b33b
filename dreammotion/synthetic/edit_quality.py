"""Edit quality on the synthetic suite: run DreamMotion on each edit and compare with the true edit.

    python -m dreammotion.synthetic.edit_quality --model data/models/dreammotion-shapes-t2v --n 24 --seed 0 \\
        --iterations 200 --out bench/quality/suite24.json [--set lambda_s=0.1 --set lambda_t=0.1]
    python -m dreammotion.synthetic.edit_quality --model DIR --suite results/suite --out suite.json

Per edit: encode the source clip, optimise with the suite's edit region as the mask (the source
object, or everything but the object for a background edit), decode, and measure with
``dreammotion.metrics.groundtruth``:

* ``gt_psnr``/``gt_ssim`` (whole frame), ``*_inside_mask`` (object: source object OR true edited
  object) and ``*_outside_mask`` (the rest, the background) against the ground-truth edited clip;
* ``preserved_psnr``: PSNR against the SOURCE clip over the pixels a perfect edit leaves unchanged
  (outside the edit region, and where the ground truth equals the source): the background of an
  object edit, the object of a background edit. Pooled over all frames of the clip;
* ``centroid_error_px``: the edited object's centroid (nearest colour) vs the true one, which follows
  the source trajectory (an edit keeps the motion);
* ``runtime_s`` of the optimisation.

The same metrics of the unedited source against the ground truth are the baseline (what doing
nothing scores). Results are aggregated as mean and std per edit kind (colour, shape, background).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from dreammotion.errors import InputError, NumericalError
from dreammotion.metrics.groundtruth import compute_groundtruth_metrics, psnr_per_frame
from dreammotion.synthetic.captions import caption
from dreammotion.synthetic.render import ClipSpec, render
from dreammotion.synthetic.suite import EDIT_KINDS, SPEC_FILE, draw_edits, edits_background
from dreammotion.utils.atomic import write_json
from dreammotion.utils.stats import sample_std

GT_METRICS = (
    "gt_psnr",
    "gt_psnr_inside_mask",
    "gt_psnr_outside_mask",
    "gt_ssim",
    "gt_ssim_inside_mask",
    "gt_ssim_outside_mask",
    "centroid_error_px",
)
SCALAR_METRICS = GT_METRICS + ("preserved_psnr",)


@dataclass(frozen=True)
class SuiteEdit:
    """One edit of the synthetic suite: the source clip, its true edit and the edit's seed."""

    edit_id: str
    kind: str  # one of EDIT_KINDS
    source: ClipSpec
    target: ClipSpec
    seed: int
    size: int = 32
    frames: int = 8

    @property
    def source_prompt(self) -> str:
        return caption(self.source)

    @property
    def target_prompt(self) -> str:
        return caption(self.target)


def edit_kind(source: ClipSpec, target: ClipSpec) -> str:
    """Which attribute an edit changes (the suite changes exactly one), for suites written without an
    ``edit_kind`` column: a texture-only change of the default suite's draws is a background edit."""
    if source.colour != target.colour:
        return "colour"
    if source.shape != target.shape:
        return "shape"
    return "background"


def suite_edits(n: int = 24, seed: int = 0, size: int = 32, frames: int = 8) -> list[SuiteEdit]:
    """The edits that ``build_suite(out, n, seed)`` writes, drawn the same way but kept in memory."""
    return [
        SuiteEdit(name, kind, source, target, edit_seed, size, frames)
        for name, kind, source, target, edit_seed in draw_edits(n, seed, frames)
    ]


def read_suite(suite_dir: str | Path) -> list[SuiteEdit]:
    """The edits of a suite folder written by ``python -m dreammotion.synthetic.suite``."""
    suite_dir = Path(suite_dir)
    manifest = suite_dir / "manifest.csv"
    if not manifest.is_file():
        raise InputError(f"{manifest}: no suite manifest (write one with python -m dreammotion.synthetic.suite)")
    with manifest.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    edits = []
    for row_number, row in enumerate(rows, start=2):  # line 1 is the header
        spec_file = suite_dir / row.get("id", "") / SPEC_FILE
        try:
            info = json.loads(spec_file.read_text())
            source, target = ClipSpec(**info["source"]), ClipSpec(**info["target"])
            seed = int(row["seed"])
        except (OSError, KeyError, TypeError, ValueError) as err:
            raise InputError(f"{manifest} row {row_number} (id {row.get('id')!r}): cannot read {spec_file}: {err}") from None
        kind = row.get("edit_kind") or edit_kind(source, target)
        edits.append(SuiteEdit(row["id"], kind, source, target, seed,
                               int(info.get("size", 32)), int(info.get("frames", 8))))
    return edits


# -- clips and regions ------------------------------------------------------------------------------


@dataclass
class SuiteClips:
    """Everything rendered for one edit: uint8 frames (F, H, W, 3) and bool masks (F, H, W)."""

    source_frames: np.ndarray
    source_object: np.ndarray
    gt_frames: np.ndarray
    gt_object: np.ndarray
    edit_region: np.ndarray  # the optimiser's mask, as the suite writes it


def render_edit(edit: SuiteEdit) -> SuiteClips:
    source_frames, source_object = render(edit.source, edit.size, edit.frames)
    gt_frames, gt_object = render(edit.target, edit.size, edit.frames)
    # Same rule as the suite's masks: a background edit edits everything but the object.
    edit_region = ~source_object if edits_background(edit.kind) else source_object
    return SuiteClips(source_frames, source_object, gt_frames, gt_object, edit_region)


def preserved_region(clips: SuiteClips) -> np.ndarray:
    """Pixels a perfect edit leaves unchanged: outside the edit region and equal in source and truth."""
    unchanged = np.all(clips.source_frames == clips.gt_frames, axis=-1)
    return ~clips.edit_region & unchanged


def pooled_psnr(frames_a: np.ndarray, frames_b: np.ndarray, region: np.ndarray) -> float | None:
    """PSNR over `region` pooled over every frame (one MSE for the clip); None if the region is empty.

    The clip is passed to ``psnr_per_frame`` as one tall frame, so the PSNR formula stays in one place.
    """
    frames, height, width = region.shape
    tall_a = frames_a.reshape(1, frames * height, width, 3)
    tall_b = frames_b.reshape(1, frames * height, width, 3)
    return psnr_per_frame(tall_a, tall_b, region.reshape(1, frames * height, width))[0]


def colour_shift(frames: np.ndarray, edit: SuiteEdit, clips: SuiteClips) -> dict:
    """Colour edits: mean RGB over the pixels fully covered by the object in both clips, and its distance
    to the target and the source object colours."""
    from dreammotion.synthetic.render import OBJECT_COLOURS, coverage

    full = (coverage(edit.source, edit.size, edit.frames) == 1) & (coverage(edit.target, edit.size, edit.frames) == 1)
    if not full.any():
        return {"mean_rgb": None, "distance_to_target": None, "distance_to_source": None}
    mean_rgb = frames[full].astype(np.float64).mean(axis=0)
    return {
        "mean_rgb": [round(float(c), 2) for c in mean_rgb],
        "distance_to_target": float(np.linalg.norm(mean_rgb - OBJECT_COLOURS[edit.target.colour])),
        "distance_to_source": float(np.linalg.norm(mean_rgb - OBJECT_COLOURS[edit.source.colour])),
    }


def clip_metrics(frames: np.ndarray, edit: SuiteEdit, clips: SuiteClips) -> dict:
    """The scalar metrics of one clip (an edit, or the unedited source for the baseline).

    Returns {"values": {name: float | None}, "problems": {name: reason}} (a metric that could not be
    computed is None, with its reason)."""
    results = compute_groundtruth_metrics(frames, clips.gt_frames, clips.source_object, clips.gt_object)
    values: dict[str, float | None] = {name: results[name]["value"] for name in GT_METRICS}
    problems = {name: results[name]["reason"] for name in GT_METRICS if results[name]["status"] != "ok"}
    values["preserved_psnr"] = pooled_psnr(frames, clips.source_frames, preserved_region(clips))
    if values["preserved_psnr"] is None:
        problems["preserved_psnr"] = "the preserved region is empty"
    out = {"values": values, "problems": problems}
    if edit.kind == "colour":
        out["colour_shift"] = colour_shift(frames, edit, clips)
    return out


# -- running the edits ------------------------------------------------------------------------------


def run_edit(model, edit: SuiteEdit, clips: SuiteClips, config, *, progress: bool = False):
    """Encode, optimise and decode one edit (``dreammotion.edit.methods.edit_clip``); returns (edited uint8
    frames, EditResult)."""
    from dreammotion.edit.methods import edit_clip

    row_config = dataclasses.replace(config, seed=edit.seed)  # the manifest's per-row seed, as the workflow does
    edited = edit_clip(model, clips.source_frames, edit.source_prompt, edit.target_prompt,
                       clips.edit_region.astype(np.float32), row_config, progress=progress)
    return edited.frames, edited.result


def aggregate(values: Iterable[float | None]) -> dict:
    """Mean and sample std (ddof=1, the tables' convention; None below 2 values) over the finite values;
    None values and infinities are counted apart."""
    values = list(values)
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return {
        "mean": float(np.mean(finite)) if finite else None,
        "std": sample_std(finite),
        "n": len(finite),
        "n_infinite": sum(1 for v in values if v is not None and math.isinf(v)),
        "n_missing": sum(1 for v in values if v is None),
    }


def summarise(edits: list[dict], part: str) -> dict:
    """{kind or "all": {metric: aggregate}} over the edits' `part` ("edit" or "baseline")."""
    groups = {kind: [e for e in edits if e["kind"] == kind] for kind in EDIT_KINDS}
    groups["all"] = edits
    summary = {}
    for group, members in groups.items():
        usable = [e for e in members if e.get(part) is not None]
        if not members:
            continue
        names = SCALAR_METRICS + (("runtime_s",) if part == "edit" else ())
        summary[group] = {"edits": len(members), "failed": len(members) - len(usable)}
        for name in names:
            if name == "runtime_s":
                summary[group][name] = aggregate(e["runtime_s"] for e in usable)
            else:
                summary[group][name] = aggregate(e[part]["values"][name] for e in usable)
    return summary


def _as_edits(specs_or_suite_dir) -> list[SuiteEdit]:
    if isinstance(specs_or_suite_dir, (str, Path)):
        return read_suite(specs_or_suite_dir)
    edits = []
    for index, item in enumerate(specs_or_suite_dir):
        if isinstance(item, SuiteEdit):
            edits.append(item)
        else:  # a (source, target) pair of ClipSpecs
            source, target = item
            kind = edit_kind(source, target)
            edits.append(SuiteEdit(f"{index:03d}_{kind}", kind, source, target, index))
    return edits


def evaluate_suite(
    model_dir,
    specs_or_suite_dir,
    config,
    *,
    progress: bool = False,
    on_edit: Callable[[dict], None] | None = None,
) -> dict:
    """Edit every suite edit with `config` (an ``EditConfig``) and measure it against its ground truth.

    model_dir: a model folder / hub id, or an already loaded ``T2VModel``. specs_or_suite_dir: a suite
    folder, or a list of ``SuiteEdit`` (e.g. ``suite_edits(24, 0)``) or of (source, target) ClipSpec
    pairs. on_edit: called with each edit's record as it finishes (for partial reports).

    Returns {"model", "settings", "edits": [per-edit records], "summary": {kind: {metric: mean/std}},
    "baseline": same for the unedited source}. An edit that fails numerically is recorded with its
    error and left out of the means (counted as "failed").
    """
    from dreammotion.models import load_t2v

    model = load_t2v(model_dir) if isinstance(model_dir, (str, Path)) else model_dir
    edits = _as_edits(specs_or_suite_dir)
    records = []
    for edit in edits:
        clips = render_edit(edit)
        record = {
            "id": edit.edit_id,
            "kind": edit.kind,
            "source_prompt": edit.source_prompt,
            "target_prompt": edit.target_prompt,
            "seed": edit.seed,
            "baseline": clip_metrics(clips.source_frames, edit, clips),
        }
        started = time.perf_counter()
        try:
            frames, result = run_edit(model, edit, clips, config, progress=progress)
        except NumericalError as err:
            record.update(edit=None, error=str(err), runtime_s=time.perf_counter() - started)
        else:
            record.update(edit=clip_metrics(frames, edit, clips), runtime_s=result.runtime_s, final=result.final)
        records.append(record)
        if on_edit is not None:
            on_edit(record)
    return {
        "model": str(getattr(model, "source", model_dir)),
        "settings": config.to_dict(),
        "edits": records,
        "summary": summarise(records, "edit"),
        "baseline": summarise(records, "baseline"),
    }


# -- command line ---------------------------------------------------------------------------------


def parse_settings(pairs: list[str], iterations: int | None):
    """--set key=value pairs (values parsed as JSON when they can be: 0.1, true, [..]) -> EditConfig."""
    from dreammotion.edit.config import EditConfig

    settings: dict = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise InputError(f"--set {pair!r}: expected key=value")
        try:
            settings[key] = json.loads(text)
        except json.JSONDecodeError:
            settings[key] = text
    if iterations is not None:
        settings["iterations"] = iterations
    try:
        return EditConfig.from_dict(settings)
    except (TypeError, ValueError) as err:
        raise InputError(f"--set: {err}") from None


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="text-to-video model folder or hub id")
    parser.add_argument("--suite", type=Path, default=None, help="a suite folder (else the suite is drawn from --n/--seed)")
    parser.add_argument("--n", type=int, default=24, help="number of suite edits (kinds in turn)")
    parser.add_argument("--seed", type=int, default=0, help="suite seed (python -m dreammotion.synthetic.suite --seed)")
    parser.add_argument("--first", type=int, default=0, help="skip the suite's first edits (run a slice)")
    parser.add_argument("--iterations", type=int, default=None, help="optimisation iterations (else the default)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an EditConfig field")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--out", type=Path, required=True, help="JSON report (rewritten after every edit)")
    parser.add_argument("--progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(args.threads)
    config = parse_settings(args.set, args.iterations)
    edits = read_suite(args.suite) if args.suite else suite_edits(args.n, args.seed)
    edits = edits[args.first :]
    done: list[dict] = []
    header = {"suite": str(args.suite) if args.suite else {"n": args.n, "seed": args.seed, "first": args.first},
              "threads": args.threads, "torch": torch.__version__}

    def write_partial(record: dict) -> None:
        done.append(record)
        edit = record["edit"]
        shown = "FAILED " + record["error"] if edit is None else (
            f"psnr {_fmt(edit['values']['gt_psnr'])} (source {_fmt(record['baseline']['values']['gt_psnr'])}) "
            f"preserved {_fmt(edit['values']['preserved_psnr'])}"
        )
        print(f"{record['id']}: {shown} [{record['runtime_s']:.1f} s]", flush=True)
        write_json(args.out, {**header, "complete": False, "settings": config.to_dict(), "edits": done})

    report = evaluate_suite(args.model, edits, config, progress=args.progress, on_edit=write_partial)
    write_json(args.out, {**header, "complete": True, **report})
    for kind, row in report["summary"].items():
        base = report["baseline"][kind]
        print(f"{kind}: gt_psnr {_fmt(row['gt_psnr']['mean'])} +- {_fmt(row['gt_psnr']['std'])} "
              f"(source {_fmt(base['gt_psnr']['mean'])}), preserved_psnr {_fmt(row['preserved_psnr']['mean'])}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dreammotion.synthetic.edit_quality", description=__doc__.splitlines()[0])
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except InputError as err:  # bad input: the message says what, no traceback (as the main CLI does)
        print(f"dreammotion.synthetic.edit_quality: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
