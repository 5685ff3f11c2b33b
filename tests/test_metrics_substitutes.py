"""The metrics added for the paper-form tables, on clips with known answers: flicker against the ground
truth, motion fidelity against the true trajectories, the CLIP-feature distance (the LPIPS substitute)
and the names they are reported under (the CLIP model beside every CLIP value, substitutes named)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path

import numpy as np
import pytest

from dreammotion.metrics import groundtruth, motion
from dreammotion.metrics.config import config_from_dict
from dreammotion.metrics.record import MeasuredClips, compute_metrics, record_models
from dreammotion.synthetic.render import ClipSpec, render

DOMAIN_CLIP = Path(__file__).parents[1] / "data" / "models" / "dreammotion-shapes-clip"


# -- flicker ----------------------------------------------------------------------------------------


def test_flicker_on_a_hand_made_clip():
    # 3 frames of 2x2 px; the truth is still, the edit flickers +10 on one pixel in frame 1 only.
    truth = np.full((3, 2, 2, 3), 100, np.uint8)
    edit = truth.copy()
    edit[1, 0, 0] += 10
    inside = np.zeros((3, 2, 2), bool)
    inside[:, 0, 0] = True  # the flickering pixel is the edit region
    pairs = groundtruth.pair_regions(inside)
    # inside: 2 pairs x 1 pixel x 3 channels, each difference +-10 -> RMS 10
    assert groundtruth.flicker(edit, truth, pairs["_inside_mask"])["value"] == pytest.approx(10.0)
    # outside: nothing flickers
    assert groundtruth.flicker(edit, truth, pairs["_outside_mask"])["value"] == 0.0
    # whole frame: 2 of the 8 pixel-pairs differ by 10 -> sqrt(2 * 100 / 8) = 5
    whole = groundtruth.flicker(edit, truth, pairs[""])
    assert whole["value"] == pytest.approx(5.0) and whole["gt_energy"] == 0.0 and whole["per_pair"] == pytest.approx([5.0, 5.0])
    # a constant colour error is no flicker; a wrong motion is
    offset = np.clip(truth.astype(int) + 30, 0, 255).astype(np.uint8)
    assert groundtruth.flicker(offset, truth, pairs[""])["value"] == 0.0


def test_ground_truth_metrics_report_flicker_inside_and_outside_the_edit_region():
    source = ClipSpec("circle", "red", "gray", "plain", "right", 0.3, 0.5, 0.04, 0.16)
    truth_frames, truth_masks = render(source.replace(colour="blue"))
    frozen = np.repeat(truth_frames[:1], len(truth_frames), axis=0)  # the right colours, but no motion
    results = groundtruth.compute_groundtruth_metrics(frozen, truth_frames, truth_masks.astype(np.float32), truth_masks)
    assert results["gt_flicker_inside_mask"]["value"] > 20  # the object should have moved
    assert results["gt_flicker_outside_mask"]["value"] < results["gt_flicker_inside_mask"]["value"]
    perfect = groundtruth.compute_groundtruth_metrics(truth_frames, truth_frames, truth_masks.astype(np.float32), truth_masks)
    assert all(perfect[f"gt_flicker{s}"]["value"] == 0.0 for s in ("", "_inside_mask", "_outside_mask"))


def test_a_background_edit_keeps_the_object_out_of_the_edit_region():
    source = ClipSpec("square", "red", "gray", "plain", "right", 0.3, 0.5, 0.04, 0.16)
    _, object_masks = render(source)
    background_mask = ~object_masks  # the suite's mask of a background edit
    region = groundtruth.edit_region(background_mask.astype(np.float32), object_masks.astype(np.float32))
    assert np.array_equal(region, background_mask)  # the true object is not joined in
    colour_region = groundtruth.edit_region(object_masks.astype(np.float32), object_masks.astype(np.float32))
    assert np.array_equal(colour_region, object_masks)


# -- motion against the true trajectories -------------------------------------------------------------


def test_true_tracks_move_object_points_with_the_centroid_and_keep_the_rest_still():
    masks = np.zeros((3, 10, 10), bool)
    for t in range(3):
        masks[t, 2:4, 2 + 2 * t : 4 + 2 * t] = True  # a 2x2 object moving 2 px right per frame
    tracks = motion.true_tracks(np.array([[2.0, 2.0], [8.0, 8.0]]), masks)
    np.testing.assert_allclose(tracks[0], [[2, 2], [4, 2], [6, 2]])
    np.testing.assert_allclose(tracks[1], [[8, 8], [8, 8], [8, 8]])


def test_motion_fidelity_against_the_truth_tells_a_frozen_edit_from_a_moving_one():
    source = ClipSpec("square", "red", "gray", "plain", "right", 0.3, 0.5, 0.05, 0.16)
    frames, masks = render(source, size=32, frames=8)
    frozen = np.repeat(frames[:1], 8, axis=0)
    settings = motion.MotionSettings(tracker="lucas-kanade")
    good = motion.compute_motion_metrics(frames, frames, masks.astype(np.float32), settings, gt_masks=masks.astype(np.float32), gt_frames=frames)
    bad = motion.compute_motion_metrics(frames, frozen, masks.astype(np.float32), settings, gt_masks=masks.astype(np.float32), gt_frames=frames)
    name = "motion_fidelity_lucas_kanade_vs_truth"
    assert good[name]["value"] > 0.95 and good[name]["track_error_px"] < 0.5
    assert good[name]["ground_truth_score"] == pytest.approx(good[name]["value"])
    assert bad[name]["value"] < 0.6 and bad[name]["track_error_px"] > 2
    no_truth = motion.compute_motion_metrics(frames, frames, masks.astype(np.float32), settings)
    assert name not in no_truth and "motion_fidelity_lucas_kanade" in no_truth


def test_auto_tracker_uses_a_configured_cotracker_or_says_why_not(tmp_path):
    frames, masks = render(ClipSpec(), size=32, frames=4)
    auto = motion.compute_motion_metrics(frames, frames, masks, motion.MotionSettings())  # nothing configured: LK
    assert set(auto) == {"motion_fidelity_lucas_kanade"}
    configured = motion.MotionSettings(cotracker_checkpoint=str(tmp_path / "absent.pth"))
    results = motion.compute_motion_metrics(frames, frames, masks, configured)
    # the configured model is missing: said so, and no substitute computed in its place
    assert set(results) == {"motion_fidelity_cotracker"} and results["motion_fidelity_cotracker"]["status"] == "missing"


# -- the domain CLIP: names and the perceptual substitute ----------------------------------------------


@pytest.fixture(scope="module")
def colour_edit():
    source = ClipSpec("circle", "red", "gray", "striped", "right", 0.3, 0.5, 0.04, 0.16)
    source_frames, source_masks = render(source)
    truth_frames, truth_masks = render(source.replace(colour="blue"))
    return source_frames, source_masks.astype(np.float32), truth_frames, truth_masks.astype(np.float32)


def test_default_metrics_name_the_domain_clip_and_the_substitutes(colour_edit):
    source_frames, source_masks, truth_frames, truth_masks = colour_edit
    config = config_from_dict({"clip": {"pretrained": str(DOMAIN_CLIP)}})
    clips = MeasuredClips(source_frames, truth_frames, source_masks, truth_frames, truth_masks)
    metrics = compute_metrics(clips, "a blue circle moving right on a striped gray background", config,
                              {"runtime_s": 1.0, "peak_memory_mib": 2.0})
    assert all(m["status"] == "ok" for m in metrics.values()), {k: m["reason"] for k, m in metrics.items() if m["status"] != "ok"}
    for name in ("clip_text_alignment", "clip_frame_consistency", "clip_feature_distance", "clip_feature_distance_outside_mask"):
        assert metrics[name]["clip_model"] == "dreammotion-shapes-clip", name
    assert metrics["clip_feature_distance"]["substitute_for"] == "lpips_alex"
    assert not any(name.startswith("lpips") for name in metrics)  # no LPIPS configured: none claimed
    assert record_models(metrics)["clip_model"] == "dreammotion-shapes-clip"
    # the true edit matches its prompt better than the unedited source does
    unedited = compute_metrics(MeasuredClips(source_frames, source_frames, source_masks), "a blue circle moving right on a striped gray background",
                               config)
    assert metrics["clip_text_alignment"]["value"] > unedited["clip_text_alignment"]["value"] + 0.1
    assert unedited["clip_feature_distance"]["value"] == 0.0


def test_clip_feature_distance_grows_with_the_change_and_sees_the_mask(colour_edit):
    from dreammotion.metrics.clip import load_clip
    from dreammotion.metrics.clip_features import clip_feature_distance

    source_frames, source_masks, truth_frames, _ = colour_edit
    scorer = load_clip(str(DOMAIN_CLIP))
    noisy = np.clip(source_frames.astype(int) + np.random.default_rng(0).normal(0, 4, source_frames.shape), 0, 255).astype(np.uint8)
    small = np.mean(clip_feature_distance(scorer, source_frames, noisy))
    large = np.mean(clip_feature_distance(scorer, source_frames, truth_frames))
    assert 0 < small < large
    # the colour edit changed only the object: outside its mask the distance is far below the whole frame's
    outside = np.mean(clip_feature_distance(scorer, source_frames, truth_frames, source_masks < 0.5))
    assert outside < large


def test_lpips_is_used_when_configured_and_missing_weights_are_said_not_replaced(colour_edit, tmp_path):
    source_frames, source_masks, truth_frames, _ = colour_edit
    config = config_from_dict({"clip": {"pretrained": str(DOMAIN_CLIP)}, "lpips": {"backbone_weights": str(tmp_path / "alexnet.pth")}})
    metrics = compute_metrics(MeasuredClips(source_frames, truth_frames, source_masks), "a blue circle", config)
    assert metrics["lpips_alex"]["status"] == "missing" and "alexnet.pth" in metrics["lpips_alex"]["reason"]
    assert "clip_feature_distance" not in metrics
