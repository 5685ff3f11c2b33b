"""Bar charts of the per-variant means in a ``variants.csv`` (``dreammotion tables``), drawn with matplotlib.

One plot per metric: a bar per variant at the metric's mean over the variant's ok edits, with the sample
std as an error bar (no bar where fewer than 2 values give no std), titled with the metric's label, name
and direction (dreammotion.metrics.names). A variant without any ok value of the metric gets no bar but a
"missing"/"failed" mark in its place; a metric missing for every variant is not plotted but listed
(``BenchmarkPlots.skipped``), so that the page can say so. Means and stds are never filled in with 0.

matplotlib runs with the Agg backend (no display needed); the CLIs write the PNGs (atomically).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot is imported anywhere: no display, no GUI toolkit

from matplotlib.figure import Figure  # noqa: E402  (the object API: no global pyplot state)

from dreammotion.errors import InputError  # noqa: E402
from dreammotion.metrics.names import METRICS, metric_order  # noqa: E402

STAT_FIELDS = ("mean", "std", "n", "missing", "failed", "capped")
BAR_COLOUR = "#1f77b4"
PLOT_DPI = 100


@dataclass
class VariantStats:
    """One metric of one variant, from variants.csv (None where the table leaves the cell empty)."""

    mean: float | None
    std: float | None
    n: int
    missing: int = 0
    failed: int = 0
    capped: int = 0


@dataclass
class VariantsTable:
    variants: list[str]
    metrics: list[str]  # every metric with a `{metric}_mean` column, in the tables' order
    stats: dict[str, dict[str, VariantStats]]  # {metric: {variant: stats}}


@dataclass
class BenchmarkPlots:
    """What was plotted ({metric: PNG bytes}, in table order) and the metrics left out (missing everywhere)."""

    pngs: dict[str, bytes] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def _number(text: str | None, path: Path, line: int, column: str) -> float | None:
    if text is None or text.strip() == "":
        return None
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{path} line {line}, column {column!r}: not a number ({text!r})") from None


def _count(value: float | None) -> int:
    return 0 if value is None or not math.isfinite(value) else int(value)


def _read_csv(path: Path, what: str) -> tuple[list[str], list[dict[str, str]]]:
    """The header and rows of a table `dreammotion tables` wrote; `what` names it in the error."""
    if not path.is_file():
        raise InputError(f"{what} {path} does not exist")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames or [], list(reader)


def read_variants_csv(path: str | Path) -> VariantsTable:
    """The per-variant stats of every metric in a variants.csv that `dreammotion tables` wrote."""
    path = Path(path)
    header, rows = _read_csv(path, "variants table")
    if "variant" not in header:
        raise InputError(f"variants table {path}: no 'variant' column (header: {header}); expected dreammotion tables' variants.csv")
    names = metric_order(column[: -len("_mean")] for column in header if column.endswith("_mean"))
    stats: dict[str, dict[str, VariantStats]] = {name: {} for name in names}
    variants = []
    for line, row in enumerate(rows, start=2):
        variant = row["variant"]
        variants.append(variant)
        for name in names:
            values = {f: _number(row.get(f"{name}_{f}"), path, line, f"{name}_{f}") for f in STAT_FIELDS}
            stats[name][variant] = VariantStats(
                mean=values["mean"],
                std=values["std"],
                n=_count(values["n"]),
                missing=_count(values["missing"]),
                failed=_count(values["failed"]),
                capped=_count(values["capped"]),
            )
    return VariantsTable(variants, names, stats)


def direction(name: str) -> str:
    """'higher is better', 'lower is better', or '' where the metric has no direction (costs) or is unknown."""
    info = METRICS.get(name)
    if info is None or info.higher_is_better is None:
        return ""
    return "higher is better" if info.higher_is_better else "lower is better"


def plot_title(name: str) -> str:
    info = METRICS.get(name)
    label = f"{info.label} ({name})" if info and info.label != name else name
    way = direction(name)
    return f"{label}: {way}" if way else label


def is_plottable(per_variant: dict[str, VariantStats]) -> bool:
    """A metric with a finite mean for at least one variant."""
    return any(s.mean is not None and math.isfinite(s.mean) for s in per_variant.values())


def metric_figure(name: str, per_variant: dict[str, VariantStats], variants: list[str]) -> Figure:
    """A bar chart of one metric: one bar per variant with a mean, std error bars, marks where there is none."""
    width = max(4.8, 1.1 * len(variants) + 1.6)
    fig = Figure(figsize=(width, 3.6), dpi=PLOT_DPI, layout="constrained")
    ax = fig.add_subplot()
    positions = list(range(len(variants)))
    with_mean = [i for i, v in enumerate(variants) if per_variant[v].mean is not None and math.isfinite(per_variant[v].mean)]
    means = [per_variant[variants[i]].mean for i in with_mean]
    stds = [per_variant[variants[i]].std if per_variant[variants[i]].std is not None else 0.0 for i in with_mean]
    ax.bar(with_mean, means, yerr=stds, color=BAR_COLOUR, capsize=4, error_kw={"elinewidth": 1.2, "ecolor": "#333"})
    for i, variant in enumerate(variants):
        s = per_variant[variant]
        if i in with_mean:
            continue
        # x in data units, y in axes units: just above the axis whatever the value range
        ax.text(i, 0.03, "failed" if s.failed and not s.missing else "missing", ha="center", va="bottom", fontsize=9,
                color="#a00", transform=ax.get_xaxis_transform())
    ax.axhline(0, color="#888", linewidth=0.8)
    labels = [f"{v}\n(n={per_variant[v].n})" for v in variants]
    ax.set_xticks(positions, labels, rotation=20 if len(variants) > 4 else 0, ha="right" if len(variants) > 4 else "center",
                  fontsize=8)
    ax.set_xlim(-0.6, len(variants) - 0.4)
    ax.set_ylabel("mean ± std over ok edits", fontsize=8)
    ax.grid(axis="y", color="#ddd", linewidth=0.6)
    ax.set_axisbelow(True)
    title = plot_title(name)
    capped = sum(per_variant[v].capped for v in variants)
    if capped:
        title += f"\n({capped} infinite value(s) counted as the PSNR cap)"
    ax.set_title(title, fontsize=10)
    return fig


def figure_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=PLOT_DPI)
    return buffer.getvalue()


def benchmark_plots(table: VariantsTable, metrics: list[str] | None = None) -> BenchmarkPlots:
    """PNG bytes of every metric of `table` (or of `metrics`, in that order) that has a mean somewhere."""
    result = BenchmarkPlots()
    for name in metrics if metrics is not None else table.metrics:
        per_variant = table.stats.get(name)
        if per_variant is None or not is_plottable(per_variant):
            result.skipped.append(name)
            continue
        result.pngs[name] = figure_png(metric_figure(name, per_variant, table.variants))
    return result


def plot_file_name(metric: str) -> str:
    return f"{metric}.png"


# -- the paper-form tables (table1.csv, table3.csv of dreammotion.tables.paper) ----------------------

GROUP_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


@dataclass
class PaperTable:
    """One paper-form table: its name (table1, table3), variants and groups in order, the metrics of its
    columns, and {metric: {(variant, group): VariantStats}}."""

    name: str
    variants: list[str]
    groups: list[str]
    metrics: list[str]
    stats: dict[str, dict[tuple[str, str], VariantStats]]


def read_paper_csv(path: str | Path) -> PaperTable:
    """A table1.csv / table3.csv that `dreammotion tables --paper-tables` wrote."""
    path = Path(path)
    header, rows = _read_csv(path, "paper table")
    for column in ("variant", "group"):
        if column not in header:
            raise InputError(f"paper table {path}: no {column!r} column (header: {header}); expected table1.csv or table3.csv")
    names = [column[: -len("_mean")] for column in header if column.endswith("_mean")]
    stats: dict[str, dict[tuple[str, str], VariantStats]] = {name: {} for name in names}
    variants, groups = [], []
    for line, row in enumerate(rows, start=2):
        key = (row["variant"], row["group"])
        variants.append(key[0])
        groups.append(key[1])
        for name in names:
            values = {f: _number(row.get(f"{name}_{f}"), path, line, f"{name}_{f}") for f in ("mean", "std", "n")}
            stats[name][key] = VariantStats(mean=values["mean"], std=values["std"], n=_count(values["n"]))
    return PaperTable(path.stem, list(dict.fromkeys(variants)), list(dict.fromkeys(groups)), names, stats)


def paper_figure(name: str, table: PaperTable) -> Figure:
    """Grouped bars of one metric: a cluster per variant, a bar per group of edits (mean, std error bars)."""
    width = max(4.8, 1.3 * len(table.variants) + 1.6)
    fig = Figure(figsize=(width, 3.6), dpi=PLOT_DPI, layout="constrained")
    ax = fig.add_subplot()
    bar = 0.8 / max(1, len(table.groups))
    for g, group in enumerate(table.groups):
        xs, means, stds = [], [], []
        for v, variant in enumerate(table.variants):
            s = table.stats[name].get((variant, group))
            if s is None or s.mean is None or not math.isfinite(s.mean):
                continue
            xs.append(v - 0.4 + bar * (g + 0.5))
            means.append(s.mean)
            stds.append(s.std if s.std is not None else 0.0)
        ax.bar(xs, means, width=bar * 0.95, yerr=stds, color=GROUP_COLOURS[g % len(GROUP_COLOURS)], capsize=3,
               label=group, error_kw={"elinewidth": 1.0, "ecolor": "#333"})
    ax.axhline(0, color="#888", linewidth=0.8)
    ax.set_xticks(range(len(table.variants)), table.variants, fontsize=8)
    ax.set_xlim(-0.6, len(table.variants) - 0.4)
    ax.set_ylabel("mean ± std over edits", fontsize=8)
    ax.grid(axis="y", color="#ddd", linewidth=0.6)
    ax.set_axisbelow(True)
    if len(table.groups) > 1:
        ax.legend(fontsize=8, title="edits", title_fontsize=8)
    ax.set_title(f"{table.name}: {plot_title(name)}", fontsize=10)
    return fig


def paper_plot_name(table: PaperTable, metric: str) -> str:
    return f"{table.name}-{metric}"


def paper_plots(table: PaperTable) -> BenchmarkPlots:
    """PNG bytes of every column of a paper-form table with a value somewhere ({table}-{metric})."""
    result = BenchmarkPlots()
    for name in table.metrics:
        per_row = table.stats[name]
        if not any(s.mean is not None and math.isfinite(s.mean) for s in per_row.values()):
            result.skipped.append(paper_plot_name(table, name))
            continue
        result.pngs[paper_plot_name(table, name)] = figure_png(paper_figure(name, table))
    return result
