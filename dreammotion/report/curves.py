"""Loss curves of one edit, drawn with matplotlib (Agg backend) from the edit's log.csv.

One small plot per logged quantity, each with its own y range because they differ by orders of
magnitude (gradient norms vs. SSM losses).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

import matplotlib

matplotlib.use("Agg")  # no display, no GUI toolkit

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from dreammotion.records import LOG_COLUMNS, read_log_csv  # noqa: E402
from dreammotion.utils.atomic import atomic_path  # noqa: E402

# Every column of log.csv (dreammotion.records.LOG_COLUMNS) but the iteration, which is the x axis.
PLOTTED_COLUMNS = tuple(name for name in LOG_COLUMNS if name != "iteration")

PLOTS_PER_ROW = 4
PLOT_WIDTH_IN = 2.4  # inches per plot at PLOT_DPI: 240 x 170 px
PLOT_HEIGHT_IN = 1.7
PLOT_DPI = 100
LINE_COLOUR = (31, 119, 180)  # matplotlib's first default colour, as RGB
FONT_SIZE = 8


def format_tick(value: float) -> str:
    """Short tick label: 3 significant digits, scientific notation for very large or small values."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    if 1e-3 <= abs(value) < 1e4:
        return f"{value:.3g}"
    return f"{value:.2e}"


def _hex(colour: tuple[int, int, int]) -> str:
    return "#" + "".join(f"{c:02x}" for c in colour)


def _plot_quantity(ax, name: str, x: np.ndarray, y: np.ndarray) -> None:
    ax.set_title(name, fontsize=FONT_SIZE + 1, loc="left")
    ax.tick_params(labelsize=FONT_SIZE)
    ax.grid(color="#e1e1e1", linewidth=0.6)
    finite = np.isfinite(y)
    if not finite.any():
        ax.text(0.5, 0.5, "no finite values", ha="center", va="center", fontsize=FONT_SIZE, transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    points = int(finite.sum())
    ax.plot(x[finite], y[finite], color=_hex(LINE_COLOUR), linewidth=2 if points <= 60 else 1,  # thin lines for long runs
            marker="o" if points <= 30 else None, markersize=2.5)  # markers only where they stay readable
    formatter = ax.yaxis.get_major_formatter()
    if hasattr(formatter, "set_powerlimits"):
        formatter.set_powerlimits((-3, 4))  # scientific notation for very large or small values (see format_tick)


def loss_curves_figure(columns: dict[str, np.ndarray], title: str) -> Figure:
    """A matplotlib figure: a title line and one plot per quantity against the iteration (x axis), each with
    its own y range. An edit without iterations (e.g. SDEdit) gets a one-line figure saying so."""
    iterations = columns["iteration"]
    if len(iterations) == 0:
        fig = Figure(figsize=(PLOTS_PER_ROW * PLOT_WIDTH_IN, 0.4), dpi=PLOT_DPI)
        fig.text(0.01, 0.5, f"{title}: no optimisation iterations logged (e.g. the SDEdit baseline)", va="center",
                 fontsize=FONT_SIZE + 2)
        return fig
    rows = math.ceil(len(PLOTTED_COLUMNS) / PLOTS_PER_ROW)
    fig = Figure(figsize=(PLOTS_PER_ROW * PLOT_WIDTH_IN, rows * PLOT_HEIGHT_IN + 0.3), dpi=PLOT_DPI, layout="constrained")
    fig.suptitle(f"{title} ({len(iterations)} iterations; x axis: iteration)", fontsize=FONT_SIZE + 2, x=0.01, ha="left")
    axes = fig.subplots(rows, PLOTS_PER_ROW, squeeze=False).ravel()
    for ax, name in zip(axes, PLOTTED_COLUMNS):
        _plot_quantity(ax, name, iterations, columns[name])
    for ax in axes[len(PLOTTED_COLUMNS):]:
        ax.set_visible(False)
    return fig


def draw_loss_curves(columns: dict[str, np.ndarray], title: str) -> Image.Image:
    """loss_curves_figure rendered (Agg) as one RGB image."""
    fig = loss_curves_figure(columns, title)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy())


def write_loss_curves(log_csv: str | Path, png_path: str | Path, title: str) -> Path:
    """Read `log_csv`, draw its curves and save them as a PNG, atomically."""
    image = draw_loss_curves(read_log_csv(log_csv), title)
    with atomic_path(png_path) as tmp:
        image.save(tmp, format="PNG")
    return Path(png_path)
