"""The paper-form Tables 1 and 3 (dreammotion.tables.paper) from hand-written records: numbers against
hand-computed ones, the column roles, the groups of edit kinds, suite spread, the three formats."""

from __future__ import annotations

import csv
import math

import pytest

from dreammotion.errors import InputError
from dreammotion.tables import paper
from dreammotion.tables.aggregate import load_records
from conftest import metric, record, write_metrics_records


def paper_record(edit_id, variant, kind, suite, values, method="dreammotion"):
    """A metrics record with the paper's columns (values: text alignment, frame consistency, CLIP-feature
    distance, motion fidelity, gt PSNR), labelled by kind and suite."""
    clip = {"clip_model": "dreammotion-shapes-clip"}
    metrics = {
        "clip_text_alignment": metric(values[0], **clip),
        "clip_frame_consistency": metric(values[1], **clip),
        "clip_feature_distance": metric(values[2], **clip, substitute_for="lpips_alex"),
        "motion_fidelity_lucas_kanade": metric(values[3]),
        "gt_psnr": metric(values[4]),
    }
    return record(edit_id, variant, metrics, method=method, labels={"edit_kind": kind, "suite": suite},
                  models={"clip_model": "dreammotion-shapes-clip", "tracker": "LK"})


VARIANTS = ("dreammotion", "sdedit", "sds", "no-ssm", "no-t-ssm", "no-s-ssm", "no-mask")


@pytest.fixture
def records(tmp_path):
    rows = []
    for v, variant in enumerate(VARIANTS):
        for suite in ("seed0", "seed1"):
            for i, kind in enumerate(("colour", "texture", "shape")):
                base = 0.1 * v + (0.01 if suite == "seed1" else 0.0) + 0.001 * i
                rows.append(paper_record(f"{suite}-{i}_{kind}", variant, kind, suite,
                                   (base, 0.9, 0.2 + base, 0.8, math.inf if (variant, i, suite) == ("sds", 0, "seed0") else 20 + i),
                                   method="sdedit" if variant == "sdedit" else "dreammotion"))
    return load_records(write_metrics_records(tmp_path, rows))


def test_table1_means_groups_and_suite_spread_match_hand_computed(records):
    settings = paper.paper_settings(None)
    numeric, display, spread, legend = paper.paper_tables(records, settings["table1"], settings["kind_groups"], "table1")
    rows = {(r[0], r[2]): dict(zip(numeric.columns, r)) for r in numeric.rows}
    # rows: (variant, group) for the three methods, appearance before structural
    assert [(r[0], r[2]) for r in numeric.rows] == [(v, g) for v in ("dreammotion", "sdedit", "sds") for g in ("appearance", "structural")]
    app = rows[("sdedit", "appearance")]
    # sdedit is variant 1: text alignment of colour/texture edits = 0.1 + {0, 0.01} + {0, 0.001}
    values = [0.1, 0.101, 0.11, 0.111]
    mean = sum(values) / 4
    std = math.sqrt(sum((x - mean) ** 2 for x in values) / 3)
    assert app["clip_text_alignment_mean"] == pytest.approx(mean)
    assert app["clip_text_alignment_std"] == pytest.approx(std)
    assert app["clip_text_alignment_n"] == 4 and app["edits"] == 4 and app["method"] == "sdedit"
    # per-suite means 0.1005 and 0.1105: their sample std
    assert app["clip_text_alignment_suite_std"] == pytest.approx(math.sqrt(2 * 0.005**2))
    assert app["clip_model"] == "dreammotion-shapes-clip" and app["suites"] == 2
    assert rows[("dreammotion", "structural")]["edits"] == 2
    # the infinite PSNR of sds counts as the cap in its mean, and the legend says so
    assert rows[("sds", "appearance")]["gt_psnr_mean"] == pytest.approx((100 + 21 + 20 + 21) / 4)
    assert any("capped" in line for line in legend)
    assert spread is not None and len(spread.rows) == 6


def test_columns_name_their_metric_and_model_and_substitutes_are_relabelled(records):
    settings = paper.paper_settings(None)
    _, display, _, legend = paper.paper_tables(records, settings["table3"], settings["kind_groups"], "table3")
    # the perceptual column is the CLIP-feature substitute: not headed as LPIPS
    assert "Frame-dist (CLIP feat.) ↓" in display.columns and not any("LPIPS" in c for c in display.columns)
    assert "Motion-Fid (LK) ↑" in display.columns
    text = "\n".join(legend)
    assert "`clip_text_alignment` (clip_model: dreammotion-shapes-clip)" in text
    assert "`clip_feature_distance`" in text and "substitute for LPIPS" in text
    assert [r[0] for r in display.rows][::2] == ["no-ssm", "no-t-ssm", "no-s-ssm", "no-mask", "dreammotion"]
    assert all("missing" not in str(cell) for row in display.rows for cell in row)


def test_real_lpips_fills_the_column_when_it_ran(records):
    for r in records:
        r["metrics"]["lpips_alex"] = metric(0.3)
    chosen = {c.column.label: c for c in paper.choose_columns(records)}
    assert chosen["Frame-LPIPS"].metric == "lpips_alex" and chosen["Frame-LPIPS"].label == "Frame-LPIPS ↓"


def test_a_metric_without_any_value_is_a_missing_column(records):
    for r in records:
        r["metrics"]["clip_text_alignment"] = {"value": None, "status": "missing", "reason": "no CLIP"}
    _, display, _, legend = paper.paper_tables(records, ["dreammotion"], paper.DEFAULT_KIND_GROUPS, "table1")
    column = display.columns.index("Text-Align ↑")
    assert {row[column] for row in display.rows} == {"missing"}
    assert any("no value in any row" in line for line in legend)


def test_unknown_variant_and_unlabelled_rows(records):
    with pytest.raises(InputError, match=r"tables.table1 names variant\(s\) sdedit2"):
        paper.paper_tables(records, ["dreammotion", "sdedit2"], paper.DEFAULT_KIND_GROUPS, "table1")
    for r in records:
        r["labels"] = {}
    numeric, _, spread, _ = paper.paper_tables(records, ["dreammotion"], paper.DEFAULT_KIND_GROUPS, "table1")
    assert [(r[0], r[2]) for r in numeric.rows] == [("dreammotion", "all")] and spread is None
    # a kind in no group is a group of its own
    assert paper.record_group({"labels": {"edit_kind": "size"}}, paper.DEFAULT_KIND_GROUPS) == "size"


def test_write_paper_tables_writes_three_formats(tmp_path, records):
    paths = paper.write_paper_tables(records, tmp_path / "out", paper.paper_settings('{"table1": ["dreammotion", "sds"]}'))
    assert sorted(p.rsplit("/", 1)[1] for p in paths) == sorted(f"table{n}.{f}" for n in (1, 3) for f in ("csv", "md", "tex"))
    assert sorted(paper.PAPER_TABLE_FILES) == sorted(p.rsplit("/", 1)[1] for p in paths)  # what the rules declare
    with open(tmp_path / "out" / "table1.csv", newline="") as handle:
        assert [r["variant"] for r in csv.DictReader(handle)] == ["dreammotion", "dreammotion", "sds", "sds"]
    markdown = (tmp_path / "out" / "table1.md").read_text()
    assert markdown.startswith("## Table 1") and "± " in markdown and "Spread over suites" in markdown
    latex = (tmp_path / "out" / "table3.tex").read_text()
    assert "\\begin{tabular}" in latex and "$\\pm$" in latex and "no-ssm" in latex
    with pytest.raises(InputError, match="unknown key"):
        paper.paper_settings('{"table2": []}')
