"""The ground truth at the cascade's resolution: the manifest field, the suite and demo that write
it, and the tables' columns of the upsampled clip (issue 15 item 3)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from dreammotion.errors import InputError
from dreammotion.io.frames import read_frames
from dreammotion.manifest import load_manifest
from dreammotion.synthetic import render
from dreammotion.synthetic.suite import DEMO_EDITS, build_suite, draw_edits

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


def test_shipped_demo_has_the_upsampled_ground_truth_of_every_row(tmp_path):
    """Decoded as the workflow decodes it (frames stage at 64x64): the true edit rendered at 64."""
    from dreammotion.io.extract import extract_frames

    rows = load_manifest(REPO / "data/demo/manifest.csv", SCHEMA, workdir=REPO)
    assert [r.id for r in rows] == [name for name, _, _ in DEMO_EDITS]
    for row, (_, source, changes) in zip(rows, DEMO_EDITS):
        out = tmp_path / row.id
        extract_frames(REPO / row.ground_truth_upsampled_path, out, num_frames=8, height=64, width=64, resize="crop")
        frames = read_frames(out)
        truth = render(source.replace(**changes), 64)[0]
        assert frames.shape == (8, 64, 64, 3), row.id
        assert np.abs(frames.astype(int) - truth).max() <= 2, row.id  # lossless mp4 (libx264rgb qp 0)


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
    paths = ("video", "ground_truth", "ground_truth_masks", "ground_truth_upsampled")
    assert [list(r) for r in quickstart] == [list(r) for r in demo]
    for q, d in zip(quickstart, demo):
        for key, value in d.items():
            if key in paths:
                value = f"../data/demo/{value}"
            elif key == "mask" and value.startswith("file:"):
                value = f"file:../data/demo/{value[5:]}"
            assert q[key] == value, (d["id"], key)
