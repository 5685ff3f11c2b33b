"""End to end at a tiny scale: the benchmark's synthetic suite (2 edits x 2 suite seeds, one appearance
and one structural edit each), the embedded prior at 2 iterations, `snakemake tables`: Table 1 and
Table 3 in three formats with every column a number, and their charts on the benchmark page."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).parents[1]
pytestmark = pytest.mark.slow


def test_snakemake_tables_writes_the_paper_tables_with_no_missing_column(tmp_path):
    from dreammotion.synthetic.suite import build_suite

    rows = build_suite(tmp_path / "suite", n=2, seed=[0, 1], kinds=("colour", "shape"))
    assert [r["id"] for r in rows] == ["s0-000_colour", "s0-001_shape", "s1-000_colour", "s1-001_shape"]
    config = {
        "manifest": "suite/manifest.csv",
        "model": {"device": "cpu"},
        "edit": {"iterations": 2, "checkpoint_every": 1, "guidance_scale": 2},
        "variants": {"dreammotion": {}, "sdedit": {"method": "sdedit", "steps": 4}, "no-ssm": {"lambda_s": 0, "lambda_t": 0}},
        "tables": {"table1": ["dreammotion", "sdedit"], "table3": ["no-ssm", "dreammotion"]},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
               "--configfile", str(tmp_path / "config.yaml"), "--cores", "2", "tables"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                            timeout=1500)
    assert result.returncode == 0, result.stderr[-5000:]

    benchmark = tmp_path / "results" / "benchmark"
    for name in ("table1", "table3"):
        for fmt in ("csv", "md", "tex"):
            assert (benchmark / f"{name}.{fmt}").stat().st_size > 0, f"{name}.{fmt}"
    with open(benchmark / "table1.csv", newline="") as handle:
        table1 = list(csv.DictReader(handle))
    assert [(r["variant"], r["group"]) for r in table1] == [
        (v, g) for v in ("dreammotion", "sdedit") for g in ("appearance", "structural")
    ]
    for row in table1:
        assert row["clip_model"] == "dreammotion-shapes-clip" and row["suites"] == "2" and row["edits"] == "2"
        means = {k: v for k, v in row.items() if k.endswith("_mean")}
        # every column a number: the paper's four (with the named substitutes) and the ground-truth ones
        assert set(means) == {
            "clip_text_alignment_mean", "clip_frame_consistency_mean", "motion_fidelity_lucas_kanade_mean",
            "clip_feature_distance_mean", "motion_fidelity_lucas_kanade_vs_truth_mean", "gt_psnr_mean",
            "gt_psnr_outside_mask_mean", "gt_ssim_mean", "gt_flicker_inside_mask_mean", "gt_flicker_outside_mask_mean",
            "centroid_error_px_mean",
        }, sorted(means)
        assert all(v not in ("", "missing") for v in means.values()), row
        float(row["clip_text_alignment_suite_std"])  # two suites: their spread is a number
    assert [r["method"] for r in table1 if r["variant"] == "sdedit"] == ["sdedit", "sdedit"]
    for name in ("table1", "table3"):
        markdown = (benchmark / f"{name}.md").read_text()
        table_lines = [line for line in markdown.splitlines() if line.startswith("|")]
        assert table_lines and not any("missing" in line or "failed" in line for line in table_lines), markdown
        assert "clip_model: dreammotion-shapes-clip" in markdown
    # the metrics record names the CLIP model and the row's labels
    record = json.loads((tmp_path / "results" / "metrics" / "sdedit" / "s1-001_shape.json").read_text())
    assert record["models"]["clip_model"] == "dreammotion-shapes-clip"
    assert record["labels"] == {"edit_kind": "shape", "suite": "seed1"}
    # the benchmark page shows both tables and their charts with error bars
    page = (tmp_path / "results" / "report" / "benchmark" / "benchmark.html").read_text()
    assert 'id="table1"' in page and 'id="table3"' in page and 'id="plot-table1-clip_text_alignment"' in page
    assert (tmp_path / "results" / "report" / "benchmark" / "plots" / "table3-gt_flicker_inside_mask.png").stat().st_size > 0
