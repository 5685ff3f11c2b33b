"""Per-frame plots of one edit, with the window borders of a long clip marked.

A clip longer than the model's window is edited in overlapping windows (``dreammotion.edit.windows``);
if windows left seams, they would show at the frames where a window starts or ends. So every per-frame
quantity is drawn against the frame index with a dashed line at each of those frames: the
frame-difference energy of the edit next to that of the input (and of the ground truth, where the row
has one: flicker is an edit that changes more, or less, between frames than the truth does), and each
metric of the edit's metrics JSON that has a value per frame (PSNR/SSIM to the ground truth, LPIPS,
CLIP text alignment).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from dreammotion.edit.windows import Windows
from dreammotion.records import edit_method
from dreammotion.report.curves import FONT_SIZE, PLOT_DPI, PLOT_HEIGHT_IN, PLOT_WIDTH_IN, PLOTS_PER_ROW
from dreammotion.utils.atomic import atomic_path

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402  (curves selected the Agg backend)
from matplotlib.figure import Figure  # noqa: E402

BORDER_COLOUR = "#d62728"  # matplotlib's red: the window borders
CLIP_COLOURS = {"edit": "#1f77b4", "input": "#7f7f7f", "ground truth": "#2ca02c"}


def edit_windows(record: dict, frames: int) -> Windows | None:
    """The windows the edit of `record` (edit.json) ran over, None for an edit of the whole clip at once
    (one window, or the SDEdit baseline, which denoises the whole clip)."""
    method, _ = edit_method(record)
    if method == "sdedit":
        return None
    settings = record.get("settings") or {}
    windows = Windows.for_clip(frames, int(settings.get("window", 0) or 0), int(settings.get("window_overlap", 0) or 0))
    return windows if len(windows.starts) > 1 else None


def difference_energy(clip: np.ndarray) -> np.ndarray:
    """(F,) mean squared change from the frame before (pixels 0..255); NaN for the first frame."""
    values = clip.astype(np.float64)
    energy = np.full(len(values), np.nan)
    energy[1:] = np.mean((values[1:] - values[:-1]) ** 2, axis=tuple(range(1, values.ndim)))
    return energy


def per_frame_metrics(metrics: dict | None, frames: int) -> dict[str, np.ndarray]:
    """The metrics (name -> {value, per_frame, ...}) with one number (or None) per frame, as float arrays."""
    series = {}
    for name, entry in (metrics or {}).items():
        values = entry.get("per_frame") if isinstance(entry, dict) else None
        if not isinstance(values, list) or len(values) != frames:
            continue
        array = np.array([np.nan if v is None else float(v) for v in values])
        if np.isfinite(array).any():
            series[name] = array
    return series


def _mark_borders(ax, windows: Windows | None) -> None:
    for border in windows.borders() if windows is not None else []:
        ax.axvline(border, color=BORDER_COLOUR, linestyle="--", linewidth=0.8, alpha=0.7)


def _style(ax, title: str) -> None:
    ax.set_title(title, fontsize=FONT_SIZE + 1, loc="left")
    ax.tick_params(labelsize=FONT_SIZE)
    ax.grid(color="#e1e1e1", linewidth=0.6)
    ax.set_xlabel("frame", fontsize=FONT_SIZE)


def per_frame_figure(clips: dict[str, np.ndarray], metrics: dict | None, windows: Windows | None, title: str) -> Figure:
    """One plot of the clips' frame-difference energy (`clips`: label -> (F, H, W, 3), "edit" first) and one
    per per-frame metric, each against the frame index with the window borders dashed."""
    frames = len(clips["edit"])
    series = per_frame_metrics(metrics, frames)
    count = 1 + len(series)
    rows = math.ceil(count / PLOTS_PER_ROW)
    columns = min(count, PLOTS_PER_ROW)
    # Wider plots for long clips, so that borders a few frames apart stay apart.
    width = max(PLOT_WIDTH_IN, min(2.5 * PLOT_WIDTH_IN, frames * 0.08))
    fig = Figure(figsize=(columns * width, rows * PLOT_HEIGHT_IN + 0.45), dpi=PLOT_DPI, layout="constrained")
    if windows is None:
        where = "one window over the whole clip: no window borders"
    else:
        where = (f"windows of {windows.length} frames, overlap {windows.overlap}, starting at "
                 f"{', '.join(map(str, windows.starts))}; dashed: frames where a window starts or ends")
    fig.suptitle(f"{title}: {frames} frames; {where}", fontsize=FONT_SIZE + 1, x=0.01, ha="left")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    x = np.arange(frames)
    ax = axes[0]
    for label, clip in clips.items():
        ax.plot(x, difference_energy(clip), color=CLIP_COLOURS.get(label), label=label, linewidth=1.2,
                marker="o" if frames <= 40 else None, markersize=2)
    ax.legend(fontsize=FONT_SIZE - 1, loc="best")
    _style(ax, "frame-difference energy (MSE to the frame before)")
    _mark_borders(ax, windows)
    for ax, (name, values) in zip(axes[1:], series.items()):
        finite = np.isfinite(values)
        ax.plot(x[finite], values[finite], color=CLIP_COLOURS["edit"], linewidth=1.2,
                marker="o" if frames <= 40 else None, markersize=2)
        _style(ax, name)
        _mark_borders(ax, windows)
    for ax in axes[count:]:
        ax.set_visible(False)
    return fig


def write_per_frame_plot(clips: dict[str, np.ndarray], metrics: dict | None, record: dict, png_path: str | Path,
                         title: str) -> Path:
    """Draw ``per_frame_figure`` with the windows of the edit `record` (edit.json) and save it as a PNG, atomically."""
    windows = edit_windows(record, len(clips["edit"]))
    fig = per_frame_figure(clips, metrics, windows, title)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    image = Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy())
    with atomic_path(png_path) as tmp:
        image.save(tmp, format="PNG")
    return Path(png_path)
