"""Edit quality: the suite evaluation (tiny random model) and one real edit with the shipped prior."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from dreammotion.errors import InputError
from dreammotion.synthetic.edit_quality import (
    SCALAR_METRICS,
    SuiteEdit,
    evaluate_suite,
    main,
    parse_settings,
    preserved_region,
    read_suite,
    render_edit,
    suite_edits,
)
from dreammotion.synthetic.render import OBJECT_COLOURS, ClipSpec
from dreammotion.synthetic.suite import build_suite

SHIPPED_MODEL = Path(__file__).resolve().parents[1] / "data" / "models" / "dreammotion-shapes-t2v"


def test_suite_edits_are_the_suite_files(tmp_path):
    rows = build_suite(tmp_path / "suite", n=4, seed=3)
    drawn = suite_edits(4, seed=3)
    assert [e.edit_id for e in drawn] == [r["id"] for r in rows]
    assert [e.source_prompt for e in drawn] == [r["source_prompt"] for r in rows]
    assert [e.target_prompt for e in drawn] == [r["target_prompt"] for r in rows]
    assert [e.seed for e in drawn] == [r["seed"] for r in rows]
    assert read_suite(tmp_path / "suite") == drawn


def test_read_suite_names_the_bad_file(tmp_path):
    build_suite(tmp_path / "suite", n=1, seed=3)
    (tmp_path / "suite" / "000_colour" / "spec.json").write_text("{")
    with pytest.raises(InputError, match=r"manifest.csv row 2 .*000_colour.*spec.json"):
        read_suite(tmp_path / "suite")


def test_regions_follow_the_edit_kind():
    source = ClipSpec("circle", "red", "gray", "plain", "right", 0.3, 0.5, 0.04, 0.16)
    colour = render_edit(SuiteEdit("c", "colour", source, source.replace(colour="blue"), 0))
    background = render_edit(SuiteEdit("b", "background", source, source.replace(background="white"), 0))
    # A colour edit edits the object and preserves the background; a background edit the reverse.
    assert np.array_equal(colour.edit_region, colour.source_object)
    assert np.array_equal(preserved_region(colour), ~colour.source_object)
    assert np.array_equal(background.edit_region, ~background.source_object)
    kept = preserved_region(background)
    assert kept.any() and not (kept & ~background.source_object).any()
    # Object-edge pixels mix object and background colours: they change with the background.
    assert kept.sum() < background.source_object.sum()


def test_parse_settings():
    config = parse_settings(["lambda_s=0.1", "optimizer=adam", "use_mask=false"], iterations=7)
    assert (config.lambda_s, config.optimizer, config.use_mask, config.iterations) == (0.1, "adam", False, 7)
    with pytest.raises(InputError, match="unknown edit setting"):
        parse_settings(["lamda_s=1"], None)
    with pytest.raises(InputError, match="key=value"):
        parse_settings(["lambda_s"], None)


def test_evaluate_suite_on_a_tiny_model(tiny_model):
    from dreammotion.edit import EditConfig

    edits = suite_edits(3, seed=1)
    report = evaluate_suite(tiny_model, edits, EditConfig(iterations=1, lambda_s=0.1, lambda_t=0.1))
    assert [e["id"] for e in report["edits"]] == [e.edit_id for e in edits]
    assert set(report["summary"]) == {"colour", "shape", "background", "all"}
    assert report["settings"]["iterations"] == 1
    for group, row in report["summary"].items():
        assert row["edits"] == (3 if group == "all" else 1) and row["failed"] == 0
        assert set(row) == {"edits", "failed", "runtime_s", *SCALAR_METRICS}
        assert row["gt_psnr"]["n"] == row["edits"]
    for record in report["edits"]:
        assert record["runtime_s"] > 0
        base, edit = record["baseline"]["values"], record["edit"]["values"]
        # The unedited source equals itself where it should be preserved, and the truth outside
        # the objects of an object edit.
        assert base["preserved_psnr"] == math.inf
        if record["kind"] != "background":
            assert base["gt_psnr_outside_mask"] == math.inf
        assert all(isinstance(edit[name], float) for name in SCALAR_METRICS if name != "centroid_error_px")
    # Infinite baseline values are counted apart, not averaged.
    assert report["baseline"]["all"]["preserved_psnr"] == {
        "mean": None, "std": None, "n": 0, "n_infinite": 3, "n_missing": 0}
    colour = report["edits"][0]
    assert colour["kind"] == "colour" and colour["baseline"]["colour_shift"]["distance_to_source"] < 2.0


def test_cli_writes_a_complete_report(tiny_model_dir, tmp_path):
    out = tmp_path / "report.json"
    assert main(["--model", str(tiny_model_dir), "--n", "2", "--seed", "1", "--iterations", "1", "--set", "lambda_s=0",
                 "--set", "lambda_t=0", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["complete"] is True and len(report["edits"]) == 2
    assert report["settings"]["lambda_s"] == 0 and report["suite"] == {"n": 2, "seed": 1, "first": 0}


# -- the shipped prior, one real edit -----------------------------------------------------------------

# Bounds from bench/quality/test_edit_measurement.json (this edit, these settings: PSNR to the truth
# 25.2 dB vs 15.6 for the unedited source, 17.3 vs 5.3 inside the object, preserved PSNR 28.3 dB,
# object mean RGB (27, 76, 239)), with margin for thread-count rounding differences.
QUALITY_TEST_ITERATIONS = 30
PSNR_GAIN_DB = 5.0
INSIDE_PSNR_GAIN_DB = 6.0
PRESERVED_PSNR_DB = 24.0


@pytest.mark.skipif(not (SHIPPED_MODEL / "unet").is_dir(), reason=f"{SHIPPED_MODEL} is not in this checkout")
def test_shipped_prior_turns_a_red_circle_blue():
    """Red circle -> blue circle (the first demo clip) with the shipped weights and the recommended prior
    settings. Fails if the edit does nothing, turns the object another colour or ruins the background."""
    import torch

    from dreammotion.edit import EditConfig

    torch.set_num_threads(2)
    source = ClipSpec("circle", "red", "gray", "plain", "right", 0.25, 0.5, 0.05, 0.16)
    edit = SuiteEdit("red_to_blue", "colour", source, source.replace(colour="blue"), seed=0)
    config = EditConfig(iterations=QUALITY_TEST_ITERATIONS, lr=0.4, lambda_s=0.1, lambda_t=0.1)
    report = evaluate_suite(SHIPPED_MODEL, [edit], config)
    record = report["edits"][0]
    edited, unedited = record["edit"]["values"], record["baseline"]["values"]
    assert edited["gt_psnr"] > unedited["gt_psnr"] + PSNR_GAIN_DB
    assert edited["gt_psnr_inside_mask"] > unedited["gt_psnr_inside_mask"] + INSIDE_PSNR_GAIN_DB
    assert edited["preserved_psnr"] > PRESERVED_PSNR_DB
    shift = record["edit"]["colour_shift"]
    assert shift["distance_to_target"] < shift["distance_to_source"]
    mean_rgb = np.array(shift["mean_rgb"])
    assert mean_rgb[2] > mean_rgb[0], f"the object is not bluer than red: mean RGB {mean_rgb}"
    assert np.linalg.norm(mean_rgb - OBJECT_COLOURS["blue"]) < np.linalg.norm(mean_rgb - OBJECT_COLOURS["red"])

