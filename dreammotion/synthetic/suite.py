"""The synthetic edit suite: source clips, exact masks, target prompts and ground-truth edits.

    python -m dreammotion.synthetic.suite --n 24 --seed 0 --out results/suite
    python -m dreammotion suite --n 24 --seed 0 --out results/suite

    python -m dreammotion.synthetic.suite --n 24 --seeds 0 1 --kinds colour texture background shape --out DIR

Per edit ``<id>`` it writes ``<id>/source/`` (PNG frames: the ``video`` of the manifest, lossless),
``<id>/source.mp4`` (lossless h264 RGB, for viewing), ``masks/<id>/`` (PNG, 0/255: the region to
edit: every pixel the object touches, or for a background edit every pixel it does not), ``<id>/target/``
(PNG frames of the ground truth: the same motion re-rendered with the change), ``<id>/target_upsampled/``
(the ground truth rendered at ``upsampled_scale`` times the size, 2 by default: what the cascade's
output is measured against; the renderer is resolution-free, so this is a true 64x64 clip, not a
resized one), ``<id>/target_interpolated/`` (the ground truth of the cascade's keyframe route,
``upsample.method: interpolate+sr``: the same motion at ``interpolation_factor`` k times the frame rate,
2 by default, ``(frames - 1) * k + 1`` frames at the upsampled size; frame ``i * k`` is frame i of
``target_upsampled`` exactly, see ``render.frame_times``), ``gt_masks/<id>/``
(PNG, 0/255: the ground truth's object, whose trajectory and centroid the metrics compare with the
edit's) and ``<id>/spec.json`` (both clip specs: ``SPEC_FILE``; not the edit stage's edit.json), plus ``manifest.csv`` (``MANIFEST_COLUMNS``; paths
relative to the manifest; ``ground_truth_interpolation_factor`` records k). Edits cycle through the edit kinds (default colour, shape, background;
the draws of a seed do not change when other options do).

Edit kinds (``EDIT_KINDS``): ``colour`` (the object's colour), ``shape`` (the object's shape: a
structural edit, which DreamMotion's paper says it is not made for), ``background`` (the background's
colour and/or texture) and ``texture`` (only the background's texture). The manifest's ``edit_kind``
column names each row's kind and ``suite`` its suite seed (``seed<N>``), so that the tables can
report appearance and structural edits apart and give the spread over suite seeds. With several
``--seeds`` the suites share one folder and one manifest; ids are then prefixed ``s<seed>-``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
from pathlib import Path

import numpy as np

from dreammotion.synthetic.captions import caption
from dreammotion.synthetic.render import (
    BACKGROUND_COLOURS,
    OBJECT_COLOURS,
    SHAPES,
    TEXTURES,
    ClipSpec,
    colours_compatible,
    render,
    sample_spec,
)
from dreammotion.utils.atomic import atomic_path, write_json, write_text

EDIT_KINDS = ("colour", "shape", "background", "texture")
DEFAULT_KINDS = ("colour", "shape", "background")  # the suite of docs/quality.md (kinds in turn)
SPEC_FILE = "spec.json"  # per edit: the source and target ClipSpec, size, frames, upsampled_scale, interpolation_factor

MANIFEST_COLUMNS = (
    "id", "video", "source_prompt", "target_prompt", "mask", "seed", "ground_truth", "ground_truth_masks",
    "ground_truth_upsampled", "ground_truth_interpolated", "ground_truth_interpolation_factor", "edit_kind", "suite",
)
UPSAMPLED_SCALE = 2  # the shipped second stage's factor (32 -> 64)
# k of the interpolated ground truth: upsample.interpolation_factor's default (a test checks they agree;
# the suite does not import the upsample stage, which imports torch).
INTERPOLATION_FACTOR = 2
MP4_FPS = 8  # frame rate of the mp4 files (the interpolated ground truth's: MP4_FPS * its factor)


def interpolated_frame_count(frames: int, factor: int) -> int:
    """(F - 1) * k + 1: what interpolate+sr makes of F keyframes (dreammotion.upsample.interpolate)."""
    return (frames - 1) * factor + 1


def edits_background(kind: str) -> bool:
    """Whether an edit of this kind changes the background (its mask is everything but the object)."""
    return kind in ("background", "texture")


def random_edit(rng: np.random.Generator, source: ClipSpec, kind: str) -> ClipSpec:
    """The source with one attribute changed (colour, shape, background colour/texture, or texture alone)."""
    while True:
        if kind == "colour":
            colours = [c for c in OBJECT_COLOURS if c != source.colour and colours_compatible(c, source.background)]
            target = source.replace(colour=str(rng.choice(colours)))
        elif kind == "shape":
            target = source.replace(shape=str(rng.choice([s for s in SHAPES if s != source.shape])))
        elif kind == "background":
            options = [
                (b, t)
                for b in BACKGROUND_COLOURS
                for t in TEXTURES
                if (b, t) != (source.background, source.texture) and colours_compatible(source.colour, b)
            ]
            background, texture = options[int(rng.integers(len(options)))]
            target = source.replace(background=background, texture=texture)
        elif kind == "texture":
            textures = [t for t in TEXTURES if t != source.texture]
            target = source.replace(texture=str(rng.choice(textures)))
        else:
            raise ValueError(f"unknown edit kind {kind!r}; one of {EDIT_KINDS}")
        if caption(target) != caption(source):
            return target


def write_mp4(frames: np.ndarray, path: Path, fps: int = MP4_FPS) -> None:
    """Lossless h264 in RGB (libx264rgb, qp 0) through imageio-ffmpeg, written atomically.

    (qp 0 yuv444p was measured to change pixels by up to 48 levels at the object's edges on these
    32x32 clips, through the RGB -> YUV conversion; libx264rgb keeps them exact.)"""
    import imageio_ffmpeg

    height, width = frames.shape[1:3]
    with atomic_path(path) as tmp:
        writer = imageio_ffmpeg.write_frames(
            str(tmp),
            (width, height),
            fps=fps,
            codec="libx264rgb",
            pix_fmt_out="rgb24",
            output_params=["-qp", "0", "-f", "mp4"],
            macro_block_size=1,
            ffmpeg_log_level="error",
        )
        writer.send(None)
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
        writer.close()


def write_edit(
    out: Path, edit_id: str, source: ClipSpec, target: ClipSpec, seed: int, size: int, frames: int,
    kind: str, suite: str, upsampled_scale: int = UPSAMPLED_SCALE, interpolation_factor: int = INTERPOLATION_FACTOR,
) -> dict:
    """Write one edit's files; return its manifest row. The interpolated ground truth is at the upsampled
    size, so `upsampled_scale` 0 writes neither; `interpolation_factor` 0 writes no interpolated one."""
    from dreammotion.io.frames import write_frames

    source_frames, source_masks = render(source, size, frames)
    target_frames, target_masks = render(target, size, frames)
    write_frames(source_frames, out / edit_id / "source")
    write_mp4(source_frames, out / edit_id / "source.mp4")
    # The mask marks the region to edit: the object, or for a background edit everything else.
    edit_region = ~source_masks if source.shape == target.shape and source.colour == target.colour else source_masks
    write_frames(edit_region.astype(np.uint8) * 255, out / "masks" / edit_id)
    write_frames(target_frames, out / edit_id / "target")
    write_frames(target_masks.astype(np.uint8) * 255, out / "gt_masks" / edit_id)
    if upsampled_scale:
        write_frames(render(target, size * upsampled_scale, frames)[0], out / edit_id / "target_upsampled")
    interpolated = bool(upsampled_scale and interpolation_factor)
    if interpolated:
        write_frames(render_interpolated(target, size * upsampled_scale, frames, interpolation_factor),
                     out / edit_id / "target_interpolated")
    write_json(out / edit_id / SPEC_FILE, {
        "source": dataclasses.asdict(source), "target": dataclasses.asdict(target), "size": size, "frames": frames,
        "upsampled_scale": upsampled_scale, "interpolation_factor": interpolation_factor if interpolated else 0,
    })
    return {
        "id": edit_id,
        "video": f"{edit_id}/source",
        "source_prompt": caption(source),
        "target_prompt": caption(target),
        "mask": f"file:masks/{edit_id}",
        "seed": seed,
        "ground_truth": f"{edit_id}/target",
        "ground_truth_masks": f"gt_masks/{edit_id}",
        "ground_truth_upsampled": f"{edit_id}/target_upsampled" if upsampled_scale else "",
        "ground_truth_interpolated": f"{edit_id}/target_interpolated" if interpolated else "",
        "ground_truth_interpolation_factor": interpolation_factor if interpolated else "",
        "edit_kind": kind,
        "suite": suite,
    }


def render_interpolated(spec: ClipSpec, size: int, frames: int, factor: int) -> np.ndarray:
    """The true clip of temporal interpolation by `factor` of the `frames`-frame clip of `spec`: the same
    motion at `factor` times the frame rate, keyframe i at index i * factor exactly (render.frame_times,
    which also refuses a factor that is not an integer >= 1)."""
    return render(spec, size, interpolated_frame_count(frames, factor), frame_rate_factor=factor)[0]


def write_manifest(rows: list[dict], path: Path, columns: tuple[str, ...] = MANIFEST_COLUMNS) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def draw_edits(
    n: int, seed: int, frames: int = 8, kinds: tuple[str, ...] = DEFAULT_KINDS
) -> list[tuple[str, str, ClipSpec, ClipSpec, int]]:
    """The suite's `n` edits (`kinds` in turn), drawn deterministically from `seed`:
    (name, kind, source spec, target spec, edit seed). The one place the suite's draws are made."""
    unknown = [k for k in kinds if k not in EDIT_KINDS]
    if unknown or not kinds:
        raise ValueError(f"edit kinds {list(kinds)}: each must be one of {', '.join(EDIT_KINDS)}")
    rng = np.random.default_rng(seed)
    edits = []
    for index in range(n):
        kind = kinds[index % len(kinds)]
        source = sample_spec(rng, frames, held_out="exclude")
        target = random_edit(rng, source, kind)
        edits.append((f"{index:03d}_{kind}", kind, source, target, seed * 1000 + index))
    return edits


def suite_label(seed: int) -> str:
    """The manifest's `suite` cell of a suite seed."""
    return f"seed{seed}"


def build_suite(
    out: str | Path, n: int = 24, seed: int | list[int] = 0, size: int = 32, frames: int = 8,
    kinds: tuple[str, ...] = DEFAULT_KINDS, upsampled_scale: int = UPSAMPLED_SCALE,
    interpolation_factor: int = INTERPOLATION_FACTOR,
) -> list[dict]:
    """Render `n` edits (`kinds` in turn) deterministically from each suite seed into `out`, with one
    manifest for all; returns the rows. With one seed the ids are ``<index>_<kind>``, with several
    ``s<seed>-<index>_<kind>`` (the same edits as the one-seed suite of that seed)."""
    if upsampled_scale < 0 or interpolation_factor < 0:
        raise ValueError(f"upsampled scale {upsampled_scale} and interpolation factor {interpolation_factor}: "
                         "each must be >= 0 (0: none)")
    out = Path(out)
    seeds = [seed] if isinstance(seed, int) else list(seed)
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"suite seeds {seeds} repeat a seed: the suites would be the same edits twice")
    rows = []
    for suite_seed in seeds:
        prefix = f"s{suite_seed}-" if len(seeds) > 1 else ""
        for name, kind, source, target, edit_seed in draw_edits(n, suite_seed, frames, kinds):
            rows.append(write_edit(out, prefix + name, source, target, edit_seed, size, frames, kind,
                                   suite_label(suite_seed), upsampled_scale, interpolation_factor))
    write_manifest(rows, out / "manifest.csv")
    return rows


# The demo: three clips and their edits (data/demo, made by ``--demo``).
DEMO_EDITS = (
    ("red_circle_to_blue", ClipSpec("circle", "red", "gray", "plain", "right", 0.25, 0.5, 0.05, 0.16), {"colour": "blue"}),
    ("square_to_yellow", ClipSpec("square", "green", "black", "plain", "down right", 0.25, 0.25, 0.06, 0.15), {"colour": "yellow"}),
    ("triangle_on_white", ClipSpec("triangle", "purple", "gray", "striped", "up", 0.5, 0.75, 0.05, 0.17), {"background": "white", "texture": "plain"}),
)


DEMO_KINDS = {"red_circle_to_blue": "colour", "square_to_yellow": "colour", "triangle_on_white": "background"}
DEMO_COLUMNS = ("id", "video", "source_prompt", "target_prompt", "mask", "seed", "ground_truth", "ground_truth_masks",
                "ground_truth_upsampled", "ground_truth_interpolated", "ground_truth_interpolation_factor", "edit_kind")


def build_demo(out: str | Path, size: int = 32, frames: int = 8) -> list[dict]:
    """data/demo: source clips as lossless mp4 (libx264rgb qp 0), edit masks as PNG folders, ground truth as
    mp4 with its object's masks (PNG folders), at the upsampled size, and at the upsampled size and
    INTERPOLATION_FACTOR times the frame rate (interpolate+sr), and a manifest that edits them."""
    from dreammotion.io.frames import write_frames

    out = Path(out)
    rows = []
    for index, (name, source, changes) in enumerate(DEMO_EDITS):
        target = source.replace(**changes)
        source_frames, source_masks = render(source, size, frames)
        write_mp4(source_frames, out / f"{name}.mp4")
        region = ~source_masks if "background" in changes else source_masks
        write_frames(region.astype(np.uint8) * 255, out / "masks" / name)
        target_frames, target_masks = render(target, size, frames)
        write_mp4(target_frames, out / "ground_truth" / f"{name}.mp4")
        write_frames(target_masks.astype(np.uint8) * 255, out / "ground_truth_masks" / name)
        write_mp4(render(target, size * UPSAMPLED_SCALE, frames)[0], out / "ground_truth_upsampled" / f"{name}.mp4")
        # at k times the rate, so that the frames stage's times (frames.start, frames.fps * k) line up
        write_mp4(render_interpolated(target, size * UPSAMPLED_SCALE, frames, INTERPOLATION_FACTOR),
                  out / "ground_truth_interpolated" / f"{name}.mp4", fps=MP4_FPS * INTERPOLATION_FACTOR)
        rows.append({"id": name, "video": f"{name}.mp4", "source_prompt": caption(source), "target_prompt": caption(target),
                     "mask": f"file:masks/{name}", "seed": index, "ground_truth": f"ground_truth/{name}.mp4",
                     "ground_truth_masks": f"ground_truth_masks/{name}",
                     "ground_truth_upsampled": f"ground_truth_upsampled/{name}.mp4",
                     "ground_truth_interpolated": f"ground_truth_interpolated/{name}.mp4",
                     "ground_truth_interpolation_factor": INTERPOLATION_FACTOR, "edit_kind": DEMO_KINDS[name]})
    write_manifest(rows, out / "manifest.csv", DEMO_COLUMNS)
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=24, help="number of edits")
    parser.add_argument("--seed", type=int, default=0, help="suite seed (one suite)")
    parser.add_argument("--seeds", type=int, nargs="+", help="several suite seeds in one manifest (instead of --seed)")
    parser.add_argument("--kinds", nargs="+", choices=EDIT_KINDS, default=list(DEFAULT_KINDS),
                        help=f"edit kinds in turn (default: {' '.join(DEFAULT_KINDS)})")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--size", type=int, default=32, help="frame side in pixels")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--upsampled-scale", type=int, default=UPSAMPLED_SCALE,
                        help="also render each ground truth at this multiple of --size (0: no upsampled ground truth)")
    parser.add_argument("--interpolation-factor", type=int, default=INTERPOLATION_FACTOR,
                        help="also render each ground truth at the upsampled size and this many times the frame rate, "
                             "(frames - 1) * k + 1 frames: the truth of upsample.method interpolate+sr with "
                             "upsample.interpolation_factor k (0: none; needs --upsampled-scale)")
    parser.add_argument("--demo", action="store_true", help="write the three demo edits instead (data/demo)")


def run(args: argparse.Namespace) -> int:
    if args.demo:
        rows = build_demo(args.out, args.size, args.frames)
    else:
        seeds = args.seeds if args.seeds else args.seed
        rows = build_suite(args.out, args.n, seeds, args.size, args.frames, tuple(args.kinds), args.upsampled_scale,
                           args.interpolation_factor)
    print(f"wrote {len(rows)} edits and {args.out / 'manifest.csv'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dreammotion.synthetic.suite", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
