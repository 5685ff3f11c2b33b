"""bench/quality/regimes.py: the self-similarity weights against mask and length (issue 14)."""

import argparse
import json

import pytest
from conftest import REPO, load_bench_script

MODEL = REPO / "data" / "models" / "dreammotion-shapes-t2v"


@pytest.fixture(scope="module")
def regimes():
    return load_bench_script("quality/regimes.py", "regimes_bench")


def test_lambda_pairs_are_parsed_and_bad_ones_refused(regimes):
    assert regimes.parse_lambdas("0.1,1") == (0.1, 1.0)
    for bad in ("0.1", "a,b", "-1,0", "inf,0"):
        with pytest.raises(argparse.ArgumentTypeError):
            regimes.parse_lambdas(bad)


def test_a_later_snapshot_resumes_the_same_trajectory(regimes, tmp_path):
    # The study's premise: measuring at 1 then 2 iterations (the second run resuming from the first's
    # checkpoint) gives the clip a straight 2-iteration run gives.
    common = ["--model", str(MODEL), "--n", "1", "--kinds", "colour", "--lambdas", "0.1,0.1", "--checkpoint-every", "1"]
    assert regimes.main(common + ["--snapshots", "1", "2", "--work", str(tmp_path / "a"), "--out", str(tmp_path / "a.json")]) == 0
    assert regimes.main(common + ["--snapshots", "2", "--work", str(tmp_path / "b"), "--out", str(tmp_path / "b.json")]) == 0
    snapshots = json.loads((tmp_path / "a.json").read_text())
    straight = json.loads((tmp_path / "b.json").read_text())
    assert [(r["iterations"], r["masked"]) for r in snapshots["runs"]] == [(1, True), (1, False), (2, True), (2, False)]
    for resumed, direct in zip(snapshots["runs"][2:], straight["runs"]):
        assert resumed["edits"][0]["gt_psnr"] == pytest.approx(direct["edits"][0]["gt_psnr"], abs=1e-6)
        assert resumed["edits"][0]["ssm_to_vdds_norm_ratio"] == pytest.approx(direct["edits"][0]["ssm_to_vdds_norm_ratio"])
    one = snapshots["runs"][0]["summary"]["all"]
    assert one["n"] == 1 and 0 < one["ssm_to_vdds_norm_ratio"] < 1
    # The masked edit keeps the background; without the mask V-DDS moves it.
    masked, unmasked = snapshots["runs"][2]["edits"][0], snapshots["runs"][3]["edits"][0]
    assert masked["preserved_psnr"] > unmasked["preserved_psnr"]
    assert "| yes | 0.1, 0.1 | 2 |" in regimes.tables(snapshots)


def test_reports_of_one_suite_combine_and_others_are_refused(regimes, tmp_path):
    # A call cut off by its time limit is continued by another; the tables read both, but never runs
    # of another suite or mask setting (a report from before --mask-applies-to counts as "vdds").
    base = {"model": "m", "suite": {"n": 24, "seed": 0, "kinds": ["colour"]}, "baseline": {}}
    old = {**base, "settings": {"guidance_scale": 2.0, "snapshots": [30]}, "runs": [{"lambda_s": 0.0}]}
    new = {**base, "settings": {"guidance_scale": 2.0, "snapshots": [30], "mask_applies_to": "vdds"},
           "runs": [{"lambda_s": 5.0}]}
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    assert [r["lambda_s"] for r in regimes.combine([old, new], paths)["runs"]] == [0.0, 5.0]
    other = {**new, "settings": {**new["settings"], "mask_applies_to": "all"}}
    with pytest.raises(SystemExit, match="b.json: settings"):
        regimes.combine([old, other], paths)
    with pytest.raises(SystemExit, match="b.json: suite"):
        regimes.combine([old, {**new, "suite": {**base["suite"], "seed": 1}}], paths)
