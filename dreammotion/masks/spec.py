"""Mask specifications from the manifest's ``mask`` column, parsed into typed objects.

Grammar (docs/ARCHITECTURE.md)::

    none                      all-ones mask (the unmasked ablation)
    file:PATH                 user-provided masks: a folder of PNGs or a mask video
    box=x0,y0,x1,y1@F         pixel box (x right, y down, x1/y1 exclusive) on frame F
    points=x,y;x,y@F          foreground points on frame F
    points=x,y:1;x,y:0@F      points with labels (1 foreground, 0 background)

Coordinates are pixels of the model-sized frames (the output of the ``frames`` stage), or of the source
video (manifest ``mask_units: source``; :func:`spec_in_frame_pixels` converts them). ``@F`` may be
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


def validate_prompt(spec: PromptSpec, num_frames: int | None, height: int, width: int, context: str) -> None:
    """Check that the prompt lies inside the clip: its frame exists and its box/points are in the frame.

    `num_frames` None: the clip's length is known only once decoded (``frames.num_frames: all``), so the
    frame is checked by the masks job, against the decoded frames."""
    if num_frames is not None and spec.frame >= num_frames:
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


# ----------------------------------------------------------------------------------------------------------
# Source-video pixels -> model-sized frame pixels (mask_units: source)
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameMapping:
    """frame_x = source_x * scale_x + offset_x (likewise y): the frames stage's resize, as a map of pixels.

    Mirrors the ffmpeg graph of ``dreammotion.io.extract.build_filter_graph``: ``stretch`` scales to exactly
    width x height; ``crop`` scales to cover it (ffmpeg's ``force_original_aspect_ratio=increase``) and
    centre-crops; ``pad`` scales to fit inside and centres on black. Exact to within a pixel (ffmpeg aligns
    crop/pad offsets to chroma subsampling).
    """

    scale_x: float
    scale_y: float
    offset_x: float
    offset_y: float
    width: int
    height: int
    source_width: int
    source_height: int
    resize: str


def _rescale(a: int, b: int, c: int) -> int:
    """ffmpeg's av_rescale(a, b, c): a * b / c rounded to the nearest integer (halves away from zero)."""
    return (a * b + c // 2) // c


def frame_mapping(source_width: int, source_height: int, width: int, height: int, resize: str) -> FrameMapping:
    if resize == "stretch":
        scaled_w, scaled_h = width, height
    else:
        fit_w = _rescale(height, source_width, source_height)  # width at the target height
        fit_h = _rescale(width, source_height, source_width)  # height at the target width
        pick = max if resize == "crop" else min
        if resize not in ("crop", "pad"):
            raise ValueError(f"resize must be crop, pad or stretch, got {resize!r}")
        scaled_w, scaled_h = pick(fit_w, width), pick(fit_h, height)
    if resize == "crop":
        offset_x, offset_y = -((scaled_w - width) // 2), -((scaled_h - height) // 2)
    elif resize == "pad":
        offset_x, offset_y = (width - scaled_w) // 2, (height - scaled_h) // 2
    else:
        offset_x = offset_y = 0
    return FrameMapping(
        scaled_w / source_width, scaled_h / source_height, float(offset_x), float(offset_y),
        width, height, source_width, source_height, resize,
    )


def _number(value: float) -> str:
    return f"{round(value, 2):.2f}".rstrip("0").rstrip(".")


def spec_in_frame_pixels(spec: PromptSpec, mapping: FrameMapping, context: str = "") -> PromptSpec:
    """A box/points spec in source-video pixels, converted to the model-sized frames' pixels.

    Coordinates must lie in the source frame. A box that the crop cuts is clipped to the frame; a box or a
    point that the crop removes entirely is an error, since the mask would have nothing to start from.
    """
    sw, sh = mapping.source_width, mapping.source_height
    size = f"the {sw}x{sh} (WxH) source video"
    if isinstance(spec, BoxPrompt):
        x0, y0, x1, y1 = spec.box
        if x0 < 0 or y0 < 0 or x1 > sw or y1 > sh:
            raise spec_error(context, f"mask spec {spec.text!r} (source pixels): box lies outside {size}")
        fx0, fx1 = (x * mapping.scale_x + mapping.offset_x for x in (x0, x1))
        fy0, fy1 = (y * mapping.scale_y + mapping.offset_y for y in (y0, y1))
        cx0, cy0 = max(fx0, 0.0), max(fy0, 0.0)
        cx1, cy1 = min(fx1, float(mapping.width)), min(fy1, float(mapping.height))
        if not (cx1 > cx0 and cy1 > cy0):
            raise spec_error(
                context,
                f"mask spec {spec.text!r} (source pixels): the box lies outside the part of the video that "
                f"{mapping.resize} keeps in the {mapping.width}x{mapping.height} frames",
            )
        box = tuple(float(_number(v)) for v in (cx0, cy0, cx1, cy1))
        text = f"box={','.join(_number(v) for v in box)}@{spec.frame}"
        return BoxPrompt(box=box, frame=spec.frame, text=text)
    points = []
    for x, y in spec.points:
        if not (0 <= x < sw and 0 <= y < sh):
            raise spec_error(context, f"mask spec {spec.text!r} (source pixels): point ({x:g}, {y:g}) lies outside {size}")
        fx, fy = x * mapping.scale_x + mapping.offset_x, y * mapping.scale_y + mapping.offset_y
        if not (0 <= fx < mapping.width and 0 <= fy < mapping.height):
            raise spec_error(
                context,
                f"mask spec {spec.text!r} (source pixels): point ({x:g}, {y:g}) lies in the part of the video that "
                f"{mapping.resize} cuts off for the {mapping.width}x{mapping.height} frames",
            )
        points.append((float(_number(fx)), float(_number(fy))))
    body = ";".join(f"{_number(x)},{_number(y)}:{label}" for (x, y), label in zip(points, spec.labels))
    return PointsPrompt(points=tuple(points), labels=spec.labels, frame=spec.frame, text=f"points={body}@{spec.frame}")
