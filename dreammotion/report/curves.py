"""Loss curves of one edit, drawn with Pillow from the edit's log.csv (one small plot per logged quantity).

Pillow instead of matplotlib keeps the dependencies as they are; each quantity gets its own plot with
its own y range because they differ by orders of magnitude (gradient norms vs. SSM losses).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from dreammotion.errors import InputError
from dreammotion.utils.atomic import atomic_path

# The columns the DreamMotion optimiser writes (dreammotion.edit.optimizer.LOG_FIELDS), iteration first.
PLOTTED_COLUMNS = ("t", "vdds_grad_norm", "loss_s", "loss_t", "ssm_grad_norm", "update_norm", "latent_change")
REQUIRED_COLUMNS = ("iteration", *PLOTTED_COLUMNS)

PLOT_WIDTH = 240
PLOT_HEIGHT = 160
PLOTS_PER_ROW = 4
MARGIN_LEFT = 58  # room for the y tick labels
MARGIN_RIGHT = 18  # room for half of the last x tick label
MARGIN_TOP = 22  # the quantity's name
MARGIN_BOTTOM = 22  # the x tick labels
TITLE_HEIGHT = 26
BACKGROUND = (255, 255, 255)
AXIS_COLOUR = (90, 90, 90)
GRID_COLOUR = (225, 225, 225)
TEXT_COLOUR = (20, 20, 20)
LINE_COLOUR = (31, 119, 180)
FONT_SIZE = 12


def read_loss_log(path: str | Path) -> dict[str, np.ndarray]:
    """Columns of an edit's log.csv as float arrays (empty arrays for an edit without iterations, e.g. SDEdit)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"loss log {path} does not exist")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [name for name in REQUIRED_COLUMNS if name not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"loss log {path}: missing column(s) {', '.join(missing)} (header: {reader.fieldnames})")
        rows = list(reader)
    columns: dict[str, np.ndarray] = {}
    for name in REQUIRED_COLUMNS:
        values = []
        for line, row in enumerate(rows, start=2):
            try:
                values.append(float(row[name]))
            except (TypeError, ValueError):
                raise InputError(f"loss log {path} line {line}, column {name!r}: not a number ({row[name]!r})") from None
        columns[name] = np.asarray(values, dtype=np.float64)
    return columns


def format_tick(value: float) -> str:
    """Short tick label: 3 significant digits, scientific notation for very large or small values."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    if 1e-3 <= abs(value) < 1e4:
        return f"{value:.3g}"
    return f"{value:.2e}"


def _value_range(values: np.ndarray) -> tuple[float, float]:
    low, high = float(values.min()), float(values.max())
    if low == high:  # a constant curve: centre it in a small band instead of dividing by zero
        pad = abs(low) * 0.05 or 1.0
        return low - pad, high + pad
    return low, high


def _draw_plot(draw: ImageDraw.ImageDraw, origin: tuple[int, int], name: str, x: np.ndarray, y: np.ndarray, font) -> None:
    left = origin[0] + MARGIN_LEFT
    top = origin[1] + MARGIN_TOP
    right = origin[0] + PLOT_WIDTH - MARGIN_RIGHT
    bottom = origin[1] + PLOT_HEIGHT - MARGIN_BOTTOM
    draw.text((left, origin[1] + 4), name, fill=TEXT_COLOUR, font=font)
    finite = np.isfinite(y)
    if not finite.any():
        draw.rectangle((left, top, right, bottom), outline=AXIS_COLOUR)
        draw.text((left + 6, (top + bottom) // 2 - 6), "no finite values", fill=TEXT_COLOUR, font=font)
        return
    y_low, y_high = _value_range(y[finite])
    x_low, x_high = float(x.min()), float(x.max())
    x_span = (x_high - x_low) or 1.0

    def to_pixel(xv: float, yv: float) -> tuple[float, float]:
        px = left + (xv - x_low) / x_span * (right - left) if x_high > x_low else (left + right) / 2
        py = bottom - (yv - y_low) / (y_high - y_low) * (bottom - top)
        return px, py

    for fraction in (0.25, 0.5, 0.75):  # light horizontal grid
        gy = bottom - fraction * (bottom - top)
        draw.line((left, gy, right, gy), fill=GRID_COLOUR)
    draw.rectangle((left, top, right, bottom), outline=AXIS_COLOUR)
    for value, py in ((y_high, top), (y_low, bottom)):
        label = format_tick(value)
        width = draw.textlength(label, font=font)
        draw.text((left - 4 - width, py - FONT_SIZE // 2), label, fill=TEXT_COLOUR, font=font)
    for value, px in ((x_low, left), (x_high, right)):
        label = format_tick(value)
        width = draw.textlength(label, font=font)
        draw.text((px - width / 2, bottom + 4), label, fill=TEXT_COLOUR, font=font)
    points = [to_pixel(xv, yv) for xv, yv in zip(x[finite], y[finite])]
    if len(points) > 1:
        draw.line(points, fill=LINE_COLOUR, width=2 if len(points) <= 60 else 1)  # thin lines for long runs
    for px, py in points if len(points) <= 30 else []:  # markers only where they stay readable
        draw.ellipse((px - 2, py - 2, px + 2, py + 2), fill=LINE_COLOUR)


def draw_loss_curves(columns: dict[str, np.ndarray], title: str) -> Image.Image:
    """One RGB image: a title line and one plot per quantity against the iteration (x axis)."""
    font = ImageFont.load_default(size=FONT_SIZE)  # Pillow's bundled scalable font (bitmap font without FreeType)
    rows = math.ceil(len(PLOTTED_COLUMNS) / PLOTS_PER_ROW)
    image = Image.new("RGB", (PLOTS_PER_ROW * PLOT_WIDTH, TITLE_HEIGHT + rows * PLOT_HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    iterations = columns["iteration"]
    if len(iterations) == 0:
        draw.text((8, 6), f"{title}: no optimisation iterations logged (e.g. the SDEdit baseline)", fill=TEXT_COLOUR, font=font)
        return image.crop((0, 0, image.width, TITLE_HEIGHT + 10))
    draw.text((8, 6), f"{title} ({len(iterations)} iterations; x axis: iteration)", fill=TEXT_COLOUR, font=font)
    for index, name in enumerate(PLOTTED_COLUMNS):
        origin = ((index % PLOTS_PER_ROW) * PLOT_WIDTH, TITLE_HEIGHT + (index // PLOTS_PER_ROW) * PLOT_HEIGHT)
        _draw_plot(draw, origin, name, iterations, columns[name], font)
    return image


def write_loss_curves(log_csv: str | Path, png_path: str | Path, title: str) -> Path:
    """Read `log_csv`, draw its curves and save them as a PNG, atomically."""
    image = draw_loss_curves(read_loss_log(log_csv), title)
    with atomic_path(png_path) as tmp:
        image.save(tmp, format="PNG")
    return Path(png_path)
