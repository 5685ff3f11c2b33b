"""Mask specifications from the manifest's ``mask`` column, parsed into typed objects.

Grammar (docs/ARCHITECTURE.md)::

    none                      all-ones mask (the unmasked ablation)
    file:PATH                 user-provided masks: a folder of PNGs or a mask video
    box=x0,y0,x1,y1@F         pixel box (x right, y down, x1/y1 exclusive) on frame F
    points=x,y;x,y@F          foreground points on frame F
    points=x,y:1;x,y:0@F      points with labels (1 foreground, 0 background)

Coordinates are pixels of the model-sized frames (the output of the ``frames`` stage). ``@F`` may be
left out, meaning frame 0. Every error names the spec text and the caller's ``context`` (for example
"manifest.csv row 3 (id 'dog'), field 'mask'").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dreammotion.errors import InputError

GRAMMAR = "none | file:PATH | box=x0,y0,x1,y1@F | points=x,y;x,y@F (labels: points=x,y:1;x,y:0@F)"


@dataclass(frozen=True)
class NoMask:
    """``none``: every pixel is editable."""

    text: str = "none"


@dataclass(frozen=True)
class FileMasks:
    """``file:PATH``: masks the user made, one per frame."""

    path: Path
    text: str


@dataclass(frozen=True)
class BoxPrompt:
    """``box=x0,y0,x1,y1@F``: a pixel box around the object on frame ``frame``."""

    box: tuple[float, float, float, float]
    frame: int
    text: str


@dataclass(frozen=True)
class PointsPrompt:
    """``points=x,y;...@F``: clicked points on frame ``frame`` (label 1 object, 0 background)."""

    points: tuple[tuple[float, float], ...]
    labels: tuple[int, ...]
    frame: int
    text: str

    def positive_points(self) -> list[tuple[float, float]]:
        return [p for p, label in zip(self.points, self.labels) if label == 1]


MaskSpec = NoMask | FileMasks | BoxPrompt | PointsPrompt
PromptSpec = BoxPrompt | PointsPrompt


def spec_error(context: str, message: str) -> InputError:
    """An InputError that starts with where the spec came from (manifest row and field)."""
    return InputError(f"{context}: {message}" if context else message)


def parse_mask_spec(text: str, *, context: str = "", base_dir: str | Path | None = None) -> MaskSpec:
    """Parse one manifest mask spec. Relative ``file:`` paths resolve against ``base_dir`` if given."""
    if not isinstance(text, str):
        raise spec_error(context, f"mask spec must be text, got {text!r}; expected {GRAMMAR}")
    stripped = text.strip()
    if stripped.lower() == "none":
        return NoMask(text=stripped)
    if stripped.startswith("file:"):
        return _parse_file(stripped, context, base_dir)
    if stripped.startswith("box="):
        return _parse_box(stripped, context)
    if stripped.startswith("points="):
        return _parse_points(stripped, context)
    raise spec_error(context, f"unknown mask spec {text!r}; expected {GRAMMAR}")


def _parse_file(text: str, context: str, base_dir: str | Path | None) -> FileMasks:
    raw_path = text[len("file:") :].strip()
    if not raw_path:
        raise spec_error(context, f"mask spec {text!r} names no path; expected file:PATH")
    path = Path(raw_path).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return FileMasks(path=path, text=text)


def _split_frame(text: str, body: str, context: str) -> tuple[str, int]:
    """Split ``"...@F"`` into the coordinate part and the frame index (0 when ``@F`` is absent)."""
    if "@" not in body:
        return body, 0
    coords, frame_text = body.rsplit("@", 1)
    try:
        frame = int(frame_text.strip())
    except ValueError:
        raise spec_error(context, f"mask spec {text!r}: frame after '@' must be an integer, got {frame_text!r}") from None
    if frame < 0:
        raise spec_error(context, f"mask spec {text!r}: frame index must be >= 0, got {frame}")
    return coords, frame


def _parse_numbers(text: str, part: str, count: int, context: str) -> list[float]:
    fields = [f.strip() for f in part.split(",")]
    if len(fields) != count:
        raise spec_error(context, f"mask spec {text!r}: expected {count} comma-separated numbers in {part!r}")
    try:
        return [float(f) for f in fields]
    except ValueError:
        raise spec_error(context, f"mask spec {text!r}: {part!r} holds a value that is not a number") from None


def _parse_box(text: str, context: str) -> BoxPrompt:
    coords, frame = _split_frame(text, text[len("box=") :], context)
    x0, y0, x1, y1 = _parse_numbers(text, coords, 4, context)
    if not (x1 > x0 and y1 > y0):
        raise spec_error(context, f"mask spec {text!r}: box needs x0 < x1 and y0 < y1")
    return BoxPrompt(box=(x0, y0, x1, y1), frame=frame, text=text)


def _parse_points(text: str, context: str) -> PointsPrompt:
    coords, frame = _split_frame(text, text[len("points=") :], context)
    points: list[tuple[float, float]] = []
    labels: list[int] = []
    for item in coords.split(";"):
        item = item.strip()
        if not item:
            continue
        xy, _, label_text = item.partition(":")
        x, y = _parse_numbers(text, xy, 2, context)
        label = 1
        if label_text:
            if label_text.strip() not in ("0", "1"):
                raise spec_error(context, f"mask spec {text!r}: point label must be 0 or 1, got {label_text!r}")
            label = int(label_text)
        points.append((x, y))
        labels.append(label)
    if not points:
        raise spec_error(context, f"mask spec {text!r} holds no points")
    if 1 not in labels:
        raise spec_error(context, f"mask spec {text!r} needs at least one foreground point (label 1)")
    return PointsPrompt(points=tuple(points), labels=tuple(labels), frame=frame, text=text)


def validate_prompt(spec: PromptSpec, num_frames: int, height: int, width: int, context: str) -> None:
    """Check that the prompt lies inside the clip: its frame exists and its box/points are in the frame."""
    if spec.frame >= num_frames:
        raise spec_error(
            context,
            f"mask spec {spec.text!r}: frame {spec.frame} does not exist "
            f"(the clip has {num_frames} frames, 0..{num_frames - 1})",
        )
    if isinstance(spec, BoxPrompt):
        x0, y0, x1, y1 = spec.box
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            raise spec_error(
                context,
                f"mask spec {spec.text!r}: box lies outside the {width}x{height} (WxH) frame; coordinates must "
                f"satisfy 0 <= x0 < x1 <= {width} and 0 <= y0 < y1 <= {height}",
            )
    else:
        for x, y in spec.points:
            if not (0 <= x < width and 0 <= y < height):
                raise spec_error(
                    context, f"mask spec {spec.text!r}: point ({x:g}, {y:g}) lies outside the {width}x{height} (WxH) frame"
                )
