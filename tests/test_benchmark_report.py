"""The benchmark page: bar charts of variants.csv's per-variant means (matplotlib) and the tables as HTML."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
from matplotlib.container import BarContainer
from PIL import Image

from dreammotion.errors import InputError
from dreammotion.report.page import benchmark_page, tables_page
from dreammotion.report.plots import (
    benchmark_plots,
    direction,
    metric_figure,
    plot_title,
    read_variants_csv,
)
from dreammotion.tables import aggregate

from conftest import FAILED, MISSING, metric, record


@pytest.fixture
def tables(tmp_path):
    """variants.csv and summary.csv as `dreammotion tables` writes them: 3 variants, one metric missing everywhere."""
    records = [
        record("dog", "full", {"clip_text_alignment": metric(0.30), "lpips_alex": metric(0.10), "gt_ssim": MISSING}),
        record("cat", "full", {"clip_text_alignment": metric(0.20), "lpips_alex": metric(0.30), "gt_ssim": MISSING}),
        record("dog", "no_mask", {"clip_text_alignment": metric(0.25), "lpips_alex": FAILED, "gt_ssim": MISSING}),
        record("dog", "sdedit", {"clip_text_alignment": metric(0.10), "lpips_alex": metric(0.50), "gt_ssim": FAILED}),
        record("cat", "sdedit", {"clip_text_alignment": metric(0.12), "lpips_alex": metric(0.40), "gt_ssim": MISSING}),
    ]
    aggregate.write_tables(records, tmp_path / "benchmark")
    return tmp_path / "benchmark"


def png_pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_read_variants_csv_keeps_means_stds_and_counts(tables):
    table = read_variants_csv(tables / "variants.csv")
    assert table.variants == ["full", "no_mask", "sdedit"]
    assert table.metrics[:3] == ["clip_text_alignment", "lpips_alex", "gt_ssim"]
    full = table.stats["clip_text_alignment"]["full"]
    assert full.mean == pytest.approx(0.25) and full.std == pytest.approx(np.std([0.3, 0.2], ddof=1)) and full.n == 2
    no_mask = table.stats["lpips_alex"]["no_mask"]
    assert no_mask.mean is None and no_mask.std is None and no_mask.failed == 1  # failed: no number, never 0
    assert table.stats["clip_text_alignment"]["no_mask"].std is None  # one value: no std


def test_one_bar_per_variant_with_a_mean_and_std_error_bars(tables):
    table = read_variants_csv(tables / "variants.csv")
    fig = metric_figure("lpips_alex", table.stats["lpips_alex"], table.variants)
    ax = fig.axes[0]
    heights = [patch.get_height() for patch in ax.patches]
    assert heights == pytest.approx([0.2, 0.45])  # full and sdedit; no_mask's only value failed: no bar
    assert [t.get_text() for t in ax.texts] == ["failed"]
    bars = next(c for c in ax.containers if isinstance(c, BarContainer))
    segments = bars.errorbar.lines[2][0].get_segments()  # the std error bars: mean - std .. mean + std
    assert [s[1][1] - s[0][1] for s in segments] == pytest.approx([2 * np.std([0.1, 0.3], ddof=1), 2 * np.std([0.5, 0.4], ddof=1)])
    assert ax.get_title() == "LPIPS (alex) (lpips_alex): lower is better"
    assert [t.get_text().split("\n")[0] for t in ax.get_xticklabels()] == ["full", "no_mask", "sdedit"]


def test_metric_missing_for_every_variant_is_skipped_and_pngs_are_drawn(tables):
    plots = benchmark_plots(read_variants_csv(tables / "variants.csv"))
    assert "gt_ssim" in plots.skipped and "gt_ssim" not in plots.pngs
    assert list(plots.pngs)[:2] == ["clip_text_alignment", "lpips_alex"]
    pixels = png_pixels(plots.pngs["clip_text_alignment"])
    assert pixels.shape[0] > 200 and pixels.shape[1] > 400
    bar = np.all(np.abs(pixels.astype(int) - (31, 119, 180)) <= 2, axis=-1)  # the bars' colour
    assert bar.sum() > 2000 and (pixels < 100).any()  # bars and dark text/axes: not blank


def test_direction_and_titles():
    assert direction("clip_text_alignment") == "higher is better"
    assert direction("centroid_error_px") == "lower is better"
    assert direction("runtime_s") == "" and direction("unknown_metric") == ""
    assert plot_title("runtime_s") == "runtime (s) (runtime_s)" and plot_title("unknown_metric") == "unknown_metric"


def test_benchmark_page_holds_every_table_and_an_img_per_plot(tables):
    table = read_variants_csv(tables / "variants.csv")
    plots = benchmark_plots(table)
    csvs = [tables / "variants.csv", tables / "summary.csv", tables / "edits.csv"]
    page = benchmark_page(csvs, table, plots)
    images = re.findall(r'<img class="plot" id="plot-([\w.-]+)"[^>]*src="data:image/png;base64,([^"]+)"', page)
    assert [name for name, _ in images] == list(plots.pngs)
    assert all(base64.b64decode(data) == plots.pngs[name] for name, data in images)
    assert page.count("<table") == len(csvs) + 1  # every CSV and the compact means table
    for csv_file in csvs:
        assert f"<h2>{csv_file.name}</h2>" in page
    assert "<th>clip_text_alignment_mean</th>" in page and "<td>sdedit</td>" in page
    assert re.search(r'id="skipped-metrics">[^<]*<code>gt_ssim</code>', page)
    assert "0.25 ± 0.07071 (n=2)" in page  # the means table: clip_text_alignment of `full`


def test_report_benchmark_cli_writes_page_and_plots(tables, tmp_path, capsys):
    from dreammotion.cli import main

    out = tmp_path / "report" / "benchmark"
    argv = ["report-benchmark", "--tables", str(tables / "variants.csv"), str(tables / "summary.csv"), "--out-dir", str(out)]
    assert main(argv) == 0
    assert "not plotted (missing for every variant): gt_ssim" in capsys.readouterr().out
    assert (out / "benchmark.html").is_file()
    plotted = sorted(p.name for p in (out / "plots").iterdir())
    assert "clip_text_alignment.png" in plotted and "gt_ssim.png" not in plotted
    assert (out / "benchmark.html").read_text().count('<img class="plot"') == len(plotted)

    assert main(["report-benchmark", "--tables", str(tables / "summary.csv"), "--out-dir", str(tmp_path / "x")]) == 1
    assert "no --variants given" in capsys.readouterr().err
    with pytest.raises(InputError, match="variants table"):
        read_variants_csv(tables / "nothing.csv")


def test_tables_page_can_show_the_means_as_plots(tables, tmp_path):
    from dreammotion.cli import main

    out = tmp_path / "tables.html"
    argv = ["report-tables", "--tables", str(tables / "summary.csv"), str(tables / "variants.csv"),
            "--plot-variants", str(tables / "variants.csv"), "--out", str(out)]
    assert main(argv) == 0
    page = out.read_text()
    assert page.count('<img class="plot"') == 2 and page.count("<table>") == 2  # clip, lpips; gt_ssim skipped
    assert "<img" not in tables_page([tables / "summary.csv"])  # without plots: as before
