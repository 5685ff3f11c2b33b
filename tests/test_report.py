"""The HTML report: panels, loss curves, pages, and `snakemake --report` on a tiny-model run."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dreammotion.errors import InputError
from dreammotion.io.frames import write_frames
from dreammotion.report.curves import (
    LINE_COLOUR,
    PLOTTED_COLUMNS,
    draw_loss_curves,
    loss_curves_figure,
    write_loss_curves,
)
from dreammotion.records import LOG_COLUMNS, log_csv_text, read_log_csv
from dreammotion.report.page import panel_page, tables_page
from dreammotion.report.panel import PanelClips, build_panel, load_panel_clips, resample_frame_count, write_panel
from conftest import make_project, random_clip, snakemake

RNG = np.random.default_rng(0)


def write_log(path: Path, iterations: int) -> Path:
    rows = [dict(zip(LOG_COLUMNS, [it, 900 - it * 10, 5.0 / (it + 1), 20.0 - it, 0.05 + 0.01 * it, 1.0, 0.3, 0.02 * it]))
            for it in range(iterations)]
    path.write_text(log_csv_text(rows), newline="")
    return path


# ---------------------------------------------------------------------------------------------------------
# Panels
# ---------------------------------------------------------------------------------------------------------


def test_resample_frame_count_keeps_first_and_last_frame():
    clip = np.arange(4)[:, None, None, None].repeat(2, 1).repeat(2, 2).repeat(3, 3).astype(np.uint8)
    longer = resample_frame_count(clip, 7)
    assert longer.shape == (7, 2, 2, 3)
    assert [int(f[0, 0, 0]) for f in longer] == [0, 1, 1, 2, 2, 3, 3]
    assert resample_frame_count(clip, 4) is clip


def test_panel_without_upsampling_has_three_columns_at_display_height():
    clip = random_clip(4, 16, 16, rng=RNG)
    panel = build_panel(PanelClips(clip, clip, clip))
    band = panel.shape[1] - 128  # 16 px enlarged 8x to reach 128 px; the label band sits on top
    assert panel.shape[0] == 4 and 8 <= band <= 30
    assert panel.shape[2] == 3 * 128 + 2 * 4  # three columns, two 4 px gaps
    # nearest-neighbour enlargement: the edit column's pixels are the source pixels repeated 8x8
    assert np.array_equal(panel[:, band:, -128:][:, ::8, ::8], clip)


def test_panel_with_upsampling_uses_longest_clip_and_shrinks_large_clips():
    clip = random_clip(4, 16, 32, rng=RNG)
    upsampled = random_clip(7, 300, 600, rng=RNG)
    panel = build_panel(PanelClips(clip, clip, clip, upsampled))
    assert panel.shape[0] == 7  # the interpolated clip's frame count
    band = panel.shape[1] - 256  # 300 px shrunk to the 256 px maximum
    assert 8 <= band <= 30
    assert panel.shape[2] == 4 * 512 + 3 * 4


def test_write_panel_writes_a_gif_with_every_frame_and_an_mp4(tmp_path):
    frames = np.stack([np.full((20, 30, 3), 40 * i, np.uint8) for i in range(5)])  # distinct frames
    write_panel(frames, tmp_path / "panel.gif", tmp_path / "panel.mp4", fps=8)
    gif = Image.open(tmp_path / "panel.gif")
    assert gif.n_frames == 5 and gif.size == (30, 20)
    assert (tmp_path / "panel.mp4").read_bytes()[4:8] == b"ftyp"


def test_load_panel_clips_overlays_masks_and_rejects_mismatched_masks(tmp_path):
    frames = random_clip(3, 8, 8, rng=RNG)
    masks = np.zeros((3, 8, 8), np.uint8)
    masks[:, 2:6, 2:6] = 255
    write_frames(frames, tmp_path / "frames")
    write_frames(masks, tmp_path / "masks")
    write_frames(frames[::-1].copy(), tmp_path / "edit")
    clips = load_panel_clips(tmp_path / "frames", tmp_path / "masks", tmp_path / "edit")
    assert clips.upsampled is None and clips.mask_overlay.shape == frames.shape
    assert np.array_equal(clips.mask_overlay[:, 0, 0], frames[:, 0, 0])  # outside the mask: untouched
    assert not np.array_equal(clips.mask_overlay[:, 4, 4], frames[:, 4, 4])  # inside: tinted

    write_frames(masks[:2], tmp_path / "short-masks")
    with pytest.raises(InputError, match="short-masks"):
        load_panel_clips(tmp_path / "frames", tmp_path / "short-masks", tmp_path / "edit")


# ---------------------------------------------------------------------------------------------------------
# Loss curves
# ---------------------------------------------------------------------------------------------------------


def test_loss_curves_draw_one_line_per_quantity(tmp_path):
    columns = read_log_csv(write_log(tmp_path / "log.csv", 12))
    fig = loss_curves_figure(columns, "row (variant)")  # matplotlib: one plot per quantity, the iteration as x
    plots = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title(loc="left") for ax in plots] == list(PLOTTED_COLUMNS)
    for ax, name in zip(plots, PLOTTED_COLUMNS):
        (line,) = ax.get_lines()
        assert np.array_equal(line.get_xdata(), columns["iteration"]) and np.array_equal(line.get_ydata(), columns[name]), name
    png = write_loss_curves(tmp_path / "log.csv", tmp_path / "loss.png", "row (variant)")
    image = np.asarray(Image.open(png).convert("RGB"))
    assert image.shape[1] >= 900 and image.shape[0] >= 300
    line = np.all(np.abs(image.astype(int) - LINE_COLOUR) <= 3, axis=-1)
    assert line.sum() > 500  # not blank
    assert not list(tmp_path.glob(".loss.png.*"))  # written atomically


def test_loss_curves_of_an_edit_without_iterations_say_so(tmp_path):
    columns = read_log_csv(write_log(tmp_path / "log.csv", 0))
    assert all(len(v) == 0 for v in columns.values())
    image = np.asarray(draw_loss_curves(columns, "sdedit row"))
    assert image.shape[0] < 60 and (image < 128).any()  # one line of text, no empty plots


def test_loss_log_errors_name_the_file(tmp_path):
    bad = tmp_path / "log.csv"
    bad.write_text("iteration,t\n0,10\n")
    with pytest.raises(InputError, match=r"log\.csv: missing column"):
        read_log_csv(bad)
    write_log(bad, 2)
    bad.write_text(bad.read_text().replace("\n1,", "\nx,", 1))
    with pytest.raises(InputError, match=r"log\.csv line 3, column 'iteration'"):
        read_log_csv(bad)


# ---------------------------------------------------------------------------------------------------------
# HTML pages
# ---------------------------------------------------------------------------------------------------------


def test_panel_page_embeds_gif_and_png_and_escapes_text(tmp_path):
    frames = random_clip(2, 8, 8, rng=RNG)
    write_panel(frames, tmp_path / "panel.gif", tmp_path / "panel.mp4", fps=4)
    Image.new("RGB", (4, 4)).save(tmp_path / "loss.png")
    page = panel_page(tmp_path / "panel.gif", tmp_path / "loss.png", "r1 (dreammotion)", {"target prompt": "a <b>cat</b>"})
    gif = re.search(r'id="panel"[^>]*src="data:image/gif;base64,([^"]+)"', page)
    assert gif and base64.b64decode(gif.group(1)) == (tmp_path / "panel.gif").read_bytes()
    assert 'src="data:image/png;base64,' in page
    assert "a &lt;b&gt;cat&lt;/b&gt;" in page and "<b>cat" not in page


def test_panel_shows_the_ground_truth_last_and_checks_its_length(tmp_path):
    clip, truth = random_clip(4, 16, 16, rng=RNG), random_clip(4, 16, 16, rng=RNG)
    clips = PanelClips(clip, clip, clip, ground_truth=truth)
    assert clips.labelled()[1] == ["input", "mask", "edit", "ground truth"]
    panel = build_panel(clips)
    band = panel.shape[1] - 128
    assert panel.shape[2] == 4 * 128 + 3 * 4 and np.array_equal(panel[:, band:, -128:][:, ::8, ::8], truth)
    write_frames(clip, tmp_path / "frames")
    write_frames(np.full((4, 16, 16), 255, np.uint8), tmp_path / "masks")
    write_frames(clip, tmp_path / "edit")
    write_frames(truth[:3], tmp_path / "truth")
    with pytest.raises(InputError, match="ground truth .* holds 3 frames"):
        load_panel_clips(tmp_path / "frames", tmp_path / "masks", tmp_path / "edit", ground_truth_frames=tmp_path / "truth")


def test_panel_page_lists_metrics_with_values_and_reasons(tmp_path):
    frames = random_clip(2, 8, 8, rng=RNG)
    write_panel(frames, tmp_path / "panel.gif", tmp_path / "panel.mp4", fps=4)
    Image.new("RGB", (4, 4)).save(tmp_path / "loss.png")
    metrics = {
        "gt_psnr": {"value": 24.204325, "status": "ok", "reason": None},
        "clip_text_alignment": {"value": None, "status": "missing", "reason": "cannot load <CLIP>"},
        "motion_fidelity_lucas_kanade": {"value": 0.99, "status": "ok", "reason": None,
                                         "substitute_for": "motion_fidelity_cotracker"},
    }
    page = panel_page(tmp_path / "panel.gif", tmp_path / "loss.png", "r1", {}, metrics=metrics)
    table = page[page.index('<table id="metrics">'):]
    assert "<td>gt_psnr</td><td>24.2</td>" in table
    assert "<td>clip_text_alignment</td><td>missing</td><td>cannot load &lt;CLIP&gt;</td>" in table
    assert "substitute for motion_fidelity_cotracker" in table
    assert '<table id="metrics">' not in panel_page(tmp_path / "panel.gif", tmp_path / "loss.png", "r1", {})


def test_tables_page_lists_every_csv(tmp_path):
    (tmp_path / "summary.csv").write_text("id,status\nred2blue,ok\ngreen2red,failed\n")
    (tmp_path / "variants.csv").write_text("variant,n\ndreammotion,2\n")
    page = tables_page([tmp_path / "summary.csv", tmp_path / "variants.csv"])
    assert page.count("<table>") == 2 and "<td>green2red</td>" in page and "<th>variant</th>" in page
    with pytest.raises(InputError, match="missing.csv"):
        tables_page([tmp_path / "missing.csv"])


def test_panel_stage_cli_writes_all_outputs(tmp_path, capsys):
    from dreammotion.cli import main

    frames = random_clip(3, 8, 8, rng=RNG)
    write_frames(frames, tmp_path / "frames")
    write_frames(np.full((3, 8, 8), 255, np.uint8), tmp_path / "masks")
    write_frames(frames, tmp_path / "edit")
    write_log(tmp_path / "log.csv", 3)
    (tmp_path / "edit.json").write_text(json.dumps({"id": "r1", "variant": "v", "source_prompt": "a", "target_prompt": "b",
                                                    "settings": {"iterations": 3, "lr": 0.4}, "model": "tiny", "runtime_s": 1.0}))
    argv = ["panel", "--input-frames", str(tmp_path / "frames"), "--masks", str(tmp_path / "masks"),
            "--edit-frames", str(tmp_path / "edit"), "--log-csv", str(tmp_path / "log.csv"),
            "--edit-json", str(tmp_path / "edit.json"), "--out-dir", str(tmp_path / "out")]
    assert main(argv) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["frames.png", "loss.png", "panel.gif", "panel.html", "panel.mp4"]
    page = (tmp_path / "out" / "panel.html").read_text()
    assert 'id="per-frame"' in page
    assert "r1 (v)" in page and "no (upsample.method: none)" in page and "iterations=3" in page
    assert '<table id="metrics">' not in page  # no --metrics-json: no table
    # With the row's metrics and ground truth: a metrics table, and the truth as a fourth column.
    write_frames(frames, tmp_path / "truth")
    (tmp_path / "metrics.json").write_text(json.dumps({"metrics": {"gt_psnr": {"value": 30.5, "status": "ok"}}}))
    assert main([*argv, "--metrics-json", str(tmp_path / "metrics.json"), "--ground-truth-frames", str(tmp_path / "truth")]) == 0
    page = (tmp_path / "out" / "panel.html").read_text()
    assert "<td>gt_psnr</td><td>30.5</td>" in page and "input | mask | edit | ground truth" in page
    (tmp_path / "partial.json").write_text(json.dumps({"id": "r1"}))
    assert main([*argv[:-4], "--edit-json", str(tmp_path / "partial.json"), "--out-dir", str(tmp_path / "out")]) == 1
    assert "partial.json lacks the key(s) variant" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------
# snakemake --report on a tiny-model run
# ---------------------------------------------------------------------------------------------------------


def report_results(report_html: Path) -> dict:
    """The results table that Snakemake's single-file report embeds (path -> entry with a data URI)."""
    text = report_html.read_text()
    match = re.search(r"var results = (\{.*?\});\s*</script>", text, re.S)
    assert match, f"no results table in {report_html}"
    return json.loads(match.group(1))


def decode_data_uri(uri: str) -> bytes:
    return base64.b64decode(uri.split("base64,", 1)[1])


def check_report(report_html: Path, rows: list[str], variant: str = "dreammotion") -> dict:
    """Every row's panel page (with its GIF) and loss curves, and the tables page, are in the report."""
    results = report_results(report_html)
    for row in rows:
        key = f"results/report/{variant}/{row}/panel.html"
        assert key in results, f"{key} is not in the report (the default target must build report_targets())"
        page = results[key]
        assert page["mime_type"] == "text/html"
        html = decode_data_uri(page["data_uri"]).decode()
        gif = re.search(r'id="panel"[^>]*src="data:image/gif;base64,([^"]+)"', html)
        assert gif and Image.open(io.BytesIO(base64.b64decode(gif.group(1)))).n_frames >= 1
        loss = results[f"results/report/{variant}/{row}/loss.png"]
        assert loss["mime_type"] == "image/png" and decode_data_uri(loss["data_uri"])[:4] == b"\x89PNG"
        per_frame = results[f"results/report/{variant}/{row}/frames.png"]
        assert per_frame["mime_type"] == "image/png" and decode_data_uri(per_frame["data_uri"])[:4] == b"\x89PNG"
        assert f"results/report/{variant}/{row}/panel.mp4" in results
    tables = decode_data_uri(results["results/report/tables.html"]["data_uri"]).decode()
    for row in rows:
        assert f"<td>{row}</td>" in tables
    return results


@pytest.mark.slow
def test_snakemake_report_after_a_run_shows_every_row(tmp_path, tiny_model_dir):
    # Two rows on one clip and one mask: frames, masks and latents are made once (fewer jobs, faster test).
    rows = ("id,video,source_prompt,target_prompt,mask,seed\n"
            'red2blue,clips/red square,a red square,a blue square,"box=1,3,11,11@0",1\n'
            'red2green,clips/red square,a red square,a green square,"box=1,3,11,11@0",2\n')
    work = make_project(tmp_path, tiny_model_dir, rows=rows, extra_config={"edit": {"iterations": 2}})
    snakemake(work)  # the default target builds the panels too
    snakemake(work, "--report", "results/report.html")
    check_report(work / "results" / "report.html", ["red2blue", "red2green"])
