"""The ground truth at the cascade's resolution (and, for interpolate+sr, at its frame rate): the manifest
fields, the suite and demo that write it, the workflow that measures the keyframe route with it, and the
tables' columns of the upsampled clip (issue 15)."""

from __future__ import annotations

import csv
from pathlib import Path

import json

import numpy as np
import pytest

from conftest import make_project, snakemake
from dreammotion.errors import InputError
from dreammotion.io.frames import read_frames
from dreammotion.manifest import load_manifest
from dreammotion.synthetic import render
from dreammotion.synthetic.suite import (
    DEMO_EDITS,
    INTERPOLATION_FACTOR,
    build_suite,
    draw_edits,
    interpolated_frame_count,
)

REPO = Path(__file__).parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "manifest.schema.yaml"
HEADER = "id,video,source_prompt,target_prompt"


def manifest(tmp_path, columns: str, cells: str) -> Path:
    (tmp_path / "clip.mp4").write_bytes(b"\0" * 16)
    (tmp_path / "truth").mkdir(exist_ok=True)
    (tmp_path / "truth_64").mkdir(exist_ok=True)
    (tmp_path / "notes.txt").write_text("x")
    path = tmp_path / "manifest.csv"
    path.write_text(f"{HEADER},{columns}\nrow1,clip.mp4,a red circle,a blue circle,{cells}\n")
    return path


def test_manifest_field_resolves_and_bad_values_name_line_and_field(tmp_path):
    rows = load_manifest(manifest(tmp_path, "ground_truth,ground_truth_upsampled", "truth,truth_64"), SCHEMA, workdir=tmp_path)
    assert rows[0].ground_truth_upsampled_path == "truth_64"
    cases = {
        ("ground_truth_upsampled", "truth_64"): "field 'ground_truth_upsampled': given without a ground_truth",
        ("ground_truth,ground_truth_upsampled", "truth,nowhere"): "field 'ground_truth_upsampled': .*nowhere does not exist",
        ("ground_truth,ground_truth_upsampled", "truth,notes.txt"): "field 'ground_truth_upsampled': notes.txt is not a video",
    }
    for (columns, cells), message in cases.items():
        with pytest.raises(InputError, match=rf"manifest.csv line 2 \(id 'row1'\), {message}"):
            load_manifest(manifest(tmp_path, columns, cells), SCHEMA)


def test_manifest_interpolated_truth_needs_its_factor(tmp_path):
    both = "ground_truth,ground_truth_interpolated,ground_truth_interpolation_factor"
    rows = load_manifest(manifest(tmp_path, both, "truth,truth_64,3"), SCHEMA, workdir=tmp_path)
    assert (rows[0].ground_truth_interpolated_path, rows[0].ground_truth_interpolation_factor) == ("truth_64", 3)
    assert load_manifest(manifest(tmp_path, "ground_truth", "truth"), SCHEMA)[0].ground_truth_interpolation_factor is None
    cases = {
        ("ground_truth_interpolated,ground_truth_interpolation_factor", "truth_64,2"):
            "field 'ground_truth_interpolated': given without a ground_truth",
        ("ground_truth,ground_truth_interpolated", "truth,truth_64"):
            "field 'ground_truth_interpolation_factor': empty, but ground_truth_interpolated needs the factor k",
        ("ground_truth,ground_truth_interpolation_factor", "truth,2"):
            "field 'ground_truth_interpolation_factor': given without a ground_truth_interpolated",
        (both, "truth,truth_64,0"): "field 'ground_truth_interpolation_factor': 0 is less than the minimum of 1",
        (both, "truth,truth_64,two"): "field 'ground_truth_interpolation_factor': 'two' is not of type 'integer'",
        (both, "truth,nowhere,2"): "field 'ground_truth_interpolated': .*nowhere does not exist",
    }
    for (columns, cells), message in cases.items():
        with pytest.raises(InputError, match=rf"manifest.csv line 2 \(id 'row1'\), {message}"):
            load_manifest(manifest(tmp_path, columns, cells), SCHEMA)


def test_start_up_warns_of_rows_whose_keyframe_route_truth_does_not_fit(tmp_path):
    """interpolate+sr by 2: a row interpolated by 3, and a row with only the edit-rate truth, will read missing;
    the run goes on (each record says why), and other methods or fitting rows say nothing."""
    from dreammotion.validate import interpolated_truth_notes

    (tmp_path / "clip.mp4").write_bytes(b"\0" * 16)
    (tmp_path / "truth").mkdir()
    path = tmp_path / "manifest.csv"
    path.write_text(f"{HEADER},ground_truth,ground_truth_upsampled,ground_truth_interpolated,ground_truth_interpolation_factor\n"
                    "fits,clip.mp4,a,b,truth,truth,truth,2\nk3,clip.mp4,a,b,truth,truth,truth,3\n"
                    "edit_rate,clip.mp4,a,b,truth,truth,,\nreal,clip.mp4,a,b,,,,\n")
    rows = load_manifest(path, SCHEMA)

    def notes(method, k=2):
        return interpolated_truth_notes({"upsample": {"method": method, "interpolation_factor": k}}, rows)

    other_k, edit_rate = notes("interpolate+sr")
    assert "interpolation_factor is 2" in other_k and "k3 (line 3, k = 3)" in other_k and "fits" not in other_k
    assert "edit_rate (line 4) in" in edit_rate and "real" not in edit_rate and "--interpolation-factor" in edit_rate
    assert notes("v2v") == [] and notes("resize") == []
    (other_k,) = notes("interpolate+sr", k=1)  # the edit-rate truth fits k = 1; neither interpolated one does
    assert "fits (line 2, k = 2), k3 (line 3, k = 3)" in other_k and "edit_rate" not in other_k


def test_suite_writes_the_true_edit_at_twice_the_size(tmp_path):
    rows = build_suite(tmp_path, n=2, seed=0)
    (name, _, _, target, _), row = draw_edits(2, 0)[0], rows[0]
    assert row["ground_truth_upsampled"] == f"{name}/target_upsampled"
    frames = read_frames(tmp_path / row["ground_truth_upsampled"])
    np.testing.assert_array_equal(frames, render(target, 64)[0])  # rendered at 64, not resized
    with (tmp_path / "manifest.csv").open() as f:
        assert "ground_truth_upsampled" in next(csv.reader(f))
    assert load_manifest(tmp_path / "manifest.csv", SCHEMA)[0].ground_truth_upsampled_path
    assert not build_suite(tmp_path / "none", n=1, seed=0, upsampled_scale=0)[0]["ground_truth_upsampled"]


def test_suite_writes_the_true_edit_at_the_interpolated_frame_rate(tmp_path):
    """The truth of interpolate+sr by k: (F - 1) * k + 1 frames at the upsampled size, frame i * k the
    upsampled truth's frame i exactly, k in the manifest and spec.json; none with factor 0 or scale 0."""
    from dreammotion.cli import main
    from dreammotion.upsample.config import UpsampleConfig
    from dreammotion.upsample.interpolate import output_frame_count

    assert INTERPOLATION_FACTOR == UpsampleConfig().interpolation_factor  # the suite's default is the stage's
    assert [interpolated_frame_count(8, k) for k in (1, 2, 3)] == [output_frame_count(8, k) for k in (1, 2, 3)]
    rows = build_suite(tmp_path, n=2, seed=0, interpolation_factor=3)
    (name, _, _, target, _), row = draw_edits(2, 0)[0], rows[0]
    assert (row["ground_truth_interpolated"], row["ground_truth_interpolation_factor"]) == (f"{name}/target_interpolated", 3)
    frames = read_frames(tmp_path / row["ground_truth_interpolated"])
    assert frames.shape == (22, 64, 64, 3)
    np.testing.assert_array_equal(frames[::3], read_frames(tmp_path / row["ground_truth_upsampled"]))
    np.testing.assert_array_equal(frames, render(target, 64, 22, frame_rate_factor=3)[0])
    info = json.loads((tmp_path / name / "spec.json").read_text())
    assert (info["upsampled_scale"], info["interpolation_factor"]) == (2, 3)
    loaded = load_manifest(tmp_path / "manifest.csv", SCHEMA)[0]
    assert loaded.ground_truth_interpolated_path and loaded.ground_truth_interpolation_factor == 3
    for options in ({"interpolation_factor": 0}, {"upsampled_scale": 0}):
        none = build_suite(tmp_path / "none", n=1, seed=0, **options)[0]
        assert none["ground_truth_interpolated"] == none["ground_truth_interpolation_factor"] == "", options
        assert not (tmp_path / "none" / none["id"] / "target_interpolated").exists()
        assert load_manifest(tmp_path / "none" / "manifest.csv", SCHEMA)[0].ground_truth_interpolated_path is None
    with pytest.raises(ValueError, match="interpolation factor -1"):
        build_suite(tmp_path / "bad", n=1, seed=0, interpolation_factor=-1)
    assert main(["suite", "--n", "1", "--frames", "4", "--out", str(tmp_path / "cli"), "--interpolation-factor", "4"]) == 0
    row = load_manifest(tmp_path / "cli" / "manifest.csv", SCHEMA)[0]
    assert row.ground_truth_interpolation_factor == 4
    assert read_frames(tmp_path / "cli" / row.ground_truth_interpolated_path).shape == (13, 64, 64, 3)


def test_shipped_demo_has_the_upsampled_ground_truth_of_every_row(tmp_path):
    """Decoded as the workflow decodes it (frames stage at 64x64): the true edit rendered at 64, and for
    interpolate+sr at twice the frame rate (15 frames, native or resampled to twice the input's 8 fps)."""
    from dreammotion.io.extract import extract_frames

    rows = load_manifest(REPO / "data/demo/manifest.csv", SCHEMA, workdir=REPO)
    assert [r.id for r in rows] == [name for name, _, _ in DEMO_EDITS]
    for row, (_, source, changes) in zip(rows, DEMO_EDITS):
        target = source.replace(**changes)
        assert row.ground_truth_interpolation_factor == INTERPOLATION_FACTOR == 2
        decodes = {
            "upsampled": (row.ground_truth_upsampled_path, 8, None, render(target, 64)[0]),
            "interpolated": (row.ground_truth_interpolated_path, 15, None, render(target, 64, 15, frame_rate_factor=2)[0]),
            "interpolated at 16 fps": (row.ground_truth_interpolated_path, 15, 16.0, render(target, 64, 15, frame_rate_factor=2)[0]),
        }
        for case, (path, count, fps, truth) in decodes.items():
            out = tmp_path / row.id / case
            extract_frames(REPO / path, out, num_frames=count, fps=fps, height=64, width=64, resize="crop")
            frames = read_frames(out)
            assert frames.shape == (count, 64, 64, 3), (row.id, case)
            assert np.abs(frames.astype(int) - truth).max() <= 2, (row.id, case)  # lossless mp4 (libx264rgb qp 0)


def test_paper_tables_carry_the_upsampled_clip_and_its_lanczos_baseline():
    from dreammotion.tables.paper import choose_columns

    def record(up, lanczos):
        metrics = {"gt_psnr": {"value": 30.0, "status": "ok"}}
        if up is not None:
            metrics.update({"upsampled_gt_psnr": {"value": up, "status": "ok"},
                            "lanczos_gt_psnr": {"value": lanczos, "status": "ok"}})
        return {"id": "a", "variant": "full", "status": "ok", "metrics": metrics}

    labels = [c.column.label for c in choose_columns([record(34.0, 32.0)])]
    assert labels[-2:] == ["PSNR up", "PSNR Lanczos"]
    assert "PSNR up" not in [c.column.label for c in choose_columns([record(None, None)])]  # upsampling off


def test_quickstart_manifest_is_the_demo_manifest_seen_from_config():
    """config/manifest.csv (what `make demo` edits) is data/demo/manifest.csv with paths from config/."""
    demo = list(csv.DictReader((REPO / "data/demo/manifest.csv").open()))
    quickstart = list(csv.DictReader((REPO / "config/manifest.csv").open()))
    paths = ("video", "ground_truth", "ground_truth_masks", "ground_truth_upsampled", "ground_truth_interpolated")
    assert [list(r) for r in quickstart] == [list(r) for r in demo]
    for q, d in zip(quickstart, demo):
        for key, value in d.items():
            if key in paths:
                value = f"../data/demo/{value}"
            elif key == "mask" and value.startswith("file:"):
                value = f"file:../data/demo/{value[5:]}"
            assert q[key] == value, (d["id"], key)


@pytest.mark.slow
def test_workflow_measures_the_keyframe_route_against_the_interpolated_truth(tmp_path, tiny_model_dir):
    """upsample.method interpolate+sr by 2 (no SR model: Lanczos stands in) on a tiny suite: the truth at twice
    the frame rate is decoded with 7 frames for the edit's 4 and the upsampled metrics are numbers, the
    Lanczos baseline being the interpolated clip resized (here the cascade itself: the same numbers). A row
    whose truth was interpolated by 3 reads missing with both frame counts, and a start-up warning says so."""
    from dreammotion.synthetic.suite import MANIFEST_COLUMNS

    suites = {"k2": build_suite(tmp_path / "k2", n=1, seed=0, size=16, frames=4)[0],
              "k3": build_suite(tmp_path / "k3", n=1, seed=0, size=16, frames=4, interpolation_factor=3)[0]}
    columns = [c for c in MANIFEST_COLUMNS if c not in ("edit_kind", "suite")]
    lines = [",".join(columns)]
    for row_id, row in suites.items():  # the two suites' rows, under the project's manifest
        cells = {**row, "id": row_id, "mask": f"file:{row_id}/{row['mask'].removeprefix('file:')}"}
        for key in ("video", "ground_truth", "ground_truth_masks", "ground_truth_upsampled", "ground_truth_interpolated"):
            cells[key] = f"{row_id}/{row[key]}"
        lines.append(",".join(str(cells[c]) for c in columns))
    work = make_project(tmp_path, tiny_model_dir, rows="\n".join(lines) + "\n",
                        extra_config={"upsample": {"method": "interpolate+sr", "interpolation_factor": 2}})
    result = snakemake(work, "results/metrics/dreammotion/k2.json", "results/metrics/dreammotion/k3.json")
    assert "ground_truth_interpolation_factor of k3 (line 3, k = 3)" in result.stderr

    results = work / "results"
    truth = read_frames(results / "ground_truth_interpolated" / "k2")
    np.testing.assert_array_equal(truth, render(draw_edits(1, 0, 4)[0][3], 32, 7, frame_rate_factor=2)[0])
    assert read_frames(results / "upsampled" / "dreammotion" / "k2" / "frames").shape == (7, 32, 32, 3)
    assert not (results / "ground_truth_upsampled").exists()  # the edit-rate truth is not this route's
    metrics = json.loads((results / "metrics" / "dreammotion" / "k2.json").read_text())["metrics"]
    names = ("upsampled_gt_psnr", "upsampled_gt_ssim", "lanczos_gt_psnr", "lanczos_gt_ssim")
    for name in names:
        assert metrics[name]["status"] == "ok" and np.isfinite(metrics[name]["value"]), (name, metrics[name])
        assert len(metrics[name]["per_frame"]) == 7 and metrics[name]["interpolation_factor"] == 2
    assert metrics["lanczos_gt_psnr"]["per_frame"] == metrics["upsampled_gt_psnr"]["per_frame"]
    assert "interpolated clip" in metrics["lanczos_gt_psnr"]["compared"]
    assert metrics["gt_psnr"]["status"] == "ok"  # the edit's own metrics are unchanged by the route

    metrics = json.loads((results / "metrics" / "dreammotion" / "k3.json").read_text())["metrics"]
    for name in names:
        reason = metrics[name]["reason"] or ""
        assert metrics[name]["status"] == "missing", (name, metrics[name])
        assert "7 frames of 32x32 px" in reason and "10 frames of 32x32 px" in reason, reason
    assert metrics["gt_psnr"]["status"] == "ok"
