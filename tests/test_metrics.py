"""Metrics on constructed clips with known answers; every model is tiny, random and built here."""

from __future__ import annotations

import json
import math
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

from dreammotion.errors import InputError
from dreammotion.io.frames import write_frames
from dreammotion.metrics import groundtruth, lpips_metric, motion
from dreammotion.metrics.clip import compute_clip_metrics, load_clip
from dreammotion.metrics.config import load_config
from dreammotion.metrics.record import RECORD_SCHEMA, cost_metrics, validate_record
from dreammotion.metrics.results import MetricUnavailable, from_exception, ok

# -- clips with known content -----------------------------------------------------------------------


def moving_square(dx: int, dy: int, *, seed: int = 0, frames: int = 6, size: int = 64, side: int = 16):
    """A randomly textured square moving (dx, dy) px per frame over a flat gray background, and its masks."""
    texture = np.random.RandomState(seed).randint(0, 256, (side, side, 3)).astype(np.uint8)
    clip = np.full((frames, size, size, 3), 128, np.uint8)
    masks = np.zeros((frames, size, size), np.float32)
    for t in range(frames):
        x, y = 20 + dx * t, 20 + dy * t
        clip[t, y : y + side, x : x + side] = texture
        masks[t, y : y + side, x : x + side] = 1.0
    return clip, masks


def red_square_clip(shift_x: int = 0, frames: int = 4, size: int = 48):
    """A flat red square on blue, moving 2 px/frame right, whole clip shifted by `shift_x` px."""
    clip = np.zeros((frames, size, size, 3), np.uint8)
    clip[...] = (20, 40, 200)
    masks = np.zeros((frames, size, size), np.float32)
    for t in range(frames):
        x = 10 + 2 * t + shift_x
        clip[t, 12:24, x : x + 10] = (220, 30, 30)
        masks[t, 12:24, x : x + 10] = 1.0
    return clip, masks


# -- results ----------------------------------------------------------------------------------------


def test_results_never_hide_a_missing_or_broken_metric():
    assert ok(0.5)["status"] == "ok"
    with pytest.raises(ValueError):
        ok(float("nan"))
    missing = from_exception(MetricUnavailable("no weights at /x"))
    assert missing == {"value": None, "status": "missing", "reason": "no weights at /x"}
    broken = from_exception(RuntimeError("boom"))
    assert broken["status"] == "failed" and broken["value"] is None and "RuntimeError: boom" in broken["reason"]


# -- CLIP -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    from dreammotion.models.tokenizer import build_word_tokenizer

    folder = tmp_path_factory.mktemp("tiny_clip")
    tokenizer = build_word_tokenizer("a red blue square circle on background".split(), max_length=16)
    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
            max_position_embeddings=16, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        ),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=8),
        projection_dim=8,
    )
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def test_clip_metrics_through_the_real_loading_path(tiny_clip):
    clip, _ = red_square_clip()
    results = compute_clip_metrics(clip, "a red square on blue background", str(tiny_clip))
    alignment = results["clip_text_alignment"]
    assert alignment["status"] == "ok" and alignment["model"] == str(tiny_clip)

    # Independent check through CLIPModel.forward: logits_per_image = exp(logit_scale) * cosine.
    scorer = load_clip(str(tiny_clip))
    pixels = scorer.image_processor(images=list(clip), return_tensors="pt")["pixel_values"]
    ids = scorer.tokenizer(["a red square on blue background"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = scorer.model(input_ids=ids, pixel_values=pixels)
    expected = (out.logits_per_image[:, 0] / scorer.model.logit_scale.exp()).detach().numpy()
    np.testing.assert_allclose(alignment["per_frame"], expected, atol=1e-5)
    assert alignment["value"] == pytest.approx(float(expected.mean()), abs=1e-5)


def test_clip_frame_consistency_is_one_for_a_still_clip_and_lower_otherwise(tiny_clip):
    still = np.repeat(red_square_clip()[0][:1], 4, axis=0)
    value = compute_clip_metrics(still, "a red square", str(tiny_clip))["clip_frame_consistency"]["value"]
    assert value == pytest.approx(1.0, abs=1e-6)
    noisy = np.random.RandomState(1).randint(0, 256, (4, 48, 48, 3)).astype(np.uint8)
    assert compute_clip_metrics(noisy, "a red square", str(tiny_clip))["clip_frame_consistency"]["value"] < 0.9999


@pytest.mark.parametrize(
    "pretrained, reason_part",
    [
        ("/nonexistent/clip-folder", "CLIP folder /nonexistent/clip-folder does not exist"),
        ("nobody-here/no-such-clip", "cannot load CLIP from 'nobody-here/no-such-clip'"),
        (None, "no CLIP model configured"),
    ],
)
def test_missing_clip_is_reported_missing_with_reason(pretrained, reason_part):
    clip, _ = red_square_clip()
    results = compute_clip_metrics(clip, "a red square", pretrained)
    for name in ("clip_text_alignment", "clip_frame_consistency"):
        assert results[name]["status"] == "missing" and results[name]["value"] is None
        assert reason_part in results[name]["reason"]


# -- LPIPS ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def random_backbone_lpips():
    import warnings

    import lpips

    torch.manual_seed(0)
    # The real lpips code path with its shipped linear heads, on a random (not ImageNet) backbone.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # lpips passes torchvision's deprecated `pretrained=`
        return lpips.LPIPS(pretrained=True, net="alex", pnet_rand=True, verbose=False)


def test_lpips_identical_clips_give_zero_and_different_clips_do_not(random_backbone_lpips):
    clip, masks = moving_square(2, 0)
    same = lpips_metric.compute_lpips_metrics(clip, clip.copy(), masks, model=random_backbone_lpips)
    assert same["lpips_alex"]["value"] == pytest.approx(0.0, abs=1e-7)
    assert same["lpips_alex_outside_mask"]["value"] == pytest.approx(0.0, abs=1e-7)
    other, _ = moving_square(2, 0, seed=3)
    different = lpips_metric.compute_lpips_metrics(clip, other, masks, model=random_backbone_lpips)
    assert different["lpips_alex"]["value"] > 1e-4
    # The change is inside the mask, so the part of the map outside the mask is smaller.
    assert different["lpips_alex_outside_mask"]["value"] < different["lpips_alex"]["value"]


def test_lpips_outside_mask_is_missing_when_the_mask_covers_everything(random_backbone_lpips):
    clip, _ = moving_square(2, 0)
    results = lpips_metric.compute_lpips_metrics(clip, clip, np.ones(clip.shape[:3], np.float32), model=random_backbone_lpips)
    assert results["lpips_alex"]["status"] == "ok"
    assert results["lpips_alex_outside_mask"]["status"] == "missing"
    assert "no pixels outside the mask" in results["lpips_alex_outside_mask"]["reason"]


def test_lpips_without_backbone_weights_names_the_file_and_where(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    clip, masks = moving_square(2, 0)
    results = lpips_metric.compute_lpips_metrics(clip, clip, masks)
    expected_file = tmp_path / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    for name in ("lpips_alex", "lpips_alex_outside_mask"):
        assert results[name]["status"] == "missing"
        assert str(expected_file) in results[name]["reason"] and "lpips.backbone_weights" in results[name]["reason"]
    configured = lpips_metric.compute_lpips_metrics(clip, clip, masks, backbone_weights=str(tmp_path / "nope.pth"))
    assert configured["lpips_alex"]["status"] == "missing" and "nope.pth" in configured["lpips_alex"]["reason"]


@pytest.fixture(scope="module")
def alexnet_checkpoint(tmp_path_factory):
    """Random torchvision AlexNet backbone tensors under torchvision's file name and key names.

    Only ``features.*`` (what LPIPS uses) plus one stand-in classifier tensor, which must be ignored:
    the whole random AlexNet would be 244 MB.
    """
    import torchvision

    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("weights") / "alexnet-owt-7be5be79.pth"
    state = {f"features.{k}": v for k, v in torchvision.models.alexnet(weights=None).features.state_dict().items()}
    state["classifier.1.weight"] = torch.zeros(2, 2)
    torch.save(state, path)
    return path


def test_lpips_backbone_is_loaded_from_the_configured_file(alexnet_checkpoint):
    model = lpips_metric.load_lpips("alex", str(alexnet_checkpoint))
    saved = torch.load(alexnet_checkpoint, weights_only=True)
    torch.testing.assert_close(model.net.slice1[0].weight, saved["features.0.weight"])
    torch.testing.assert_close(getattr(model.net.slice5, "10").bias, saved["features.10.bias"])
    clip, masks = moving_square(1, 1)
    results = lpips_metric.compute_lpips_metrics(clip, clip, masks, model=model)
    assert results["lpips_alex"]["value"] == pytest.approx(0.0, abs=1e-7)
    assert results["lpips_alex"]["backbone_weights"] == str(alexnet_checkpoint)


def test_lpips_backbone_is_found_in_the_torch_hub_cache(tmp_path, monkeypatch, alexnet_checkpoint):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / alexnet_checkpoint.name).symlink_to(alexnet_checkpoint)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    assert lpips_metric.resolve_backbone_weights("alex", None) == tmp_path / "checkpoints" / alexnet_checkpoint.name


def test_lpips_rejects_a_file_that_is_not_a_torchvision_checkpoint(tmp_path):
    wrong = tmp_path / "alexnet-owt-7be5be79.pth"
    torch.save({"conv.weight": torch.zeros(1)}, wrong)
    clip, masks = moving_square(1, 1)
    result = lpips_metric.compute_lpips_metrics(clip, clip, masks, backbone_weights=str(wrong))["lpips_alex"]
    assert result["status"] == "missing" and "not a torchvision alex checkpoint" in result["reason"]


# -- motion fidelity --------------------------------------------------------------------------------


def test_motion_fidelity_on_hand_made_tracklets():
    right = np.array([[[0, 0], [1, 0], [2, 0]]], float)  # moves +x
    up = np.array([[[5, 5], [5, 4], [5, 3]]], float)  # moves -y
    diagonal = np.array([[[0, 0], [1, 1], [2, 2]]], float)  # 45 degrees
    inputs = np.concatenate([right, up])
    score = motion.motion_fidelity(inputs, right)
    # edit->input: the edit's one tracklet matches `right` exactly (1); input->edit: right 1, up 0.
    assert score["edit_to_input"] == pytest.approx(1.0)
    assert score["input_to_edit"] == pytest.approx(0.5)
    assert score["score"] == pytest.approx(0.75)
    cos45 = math.cos(math.pi / 4)
    assert motion.displacement_similarity(diagonal, inputs)[0] == pytest.approx([cos45, -cos45])


def test_still_steps_follow_the_documented_convention():
    still = np.zeros((1, 3, 2))
    moving = np.array([[[0, 0], [1, 0], [1, 0]]], float)  # moves, then stands still
    assert motion.displacement_similarity(still, still)[0, 0] == pytest.approx(1.0)
    assert motion.displacement_similarity(moving, still)[0, 0] == pytest.approx(0.5)  # (0 + 1) / 2


def test_mask_box_is_the_bounding_box_of_the_first_mask():
    mask = np.zeros((10, 12))
    mask[2, 3] = mask[5, 7] = 1
    box = motion.mask_box(mask)
    assert box.sum() == 4 * 5 and box[2:6, 3:8].all()
    assert motion.mask_box(np.zeros((4, 4))).all()


def test_lucas_kanade_identical_clips_score_one_and_opposite_motion_scores_minus_one():
    settings = motion.MotionSettings(tracker=motion.LUCAS_KANADE)
    clip, masks = moving_square(2, 1)
    same = motion.compute_motion_metrics(clip, clip.copy(), masks, settings)["motion_fidelity_lucas_kanade"]
    assert same["status"] == "ok" and same["value"] == pytest.approx(1.0, abs=1e-6)
    assert same["input_tracklets"] > 0 and "not CoTracker" in same["tracker"]
    retextured, _ = moving_square(2, 1, seed=5)  # another appearance, the same motion
    assert motion.compute_motion_metrics(clip, retextured, masks, settings)["motion_fidelity_lucas_kanade"]["value"] > 0.99
    backwards, _ = moving_square(-2, -1)
    assert motion.compute_motion_metrics(clip, backwards, masks, settings)["motion_fidelity_lucas_kanade"]["value"] < -0.99


def test_cotracker_unavailable_is_missing_and_lucas_kanade_is_the_named_substitute(tmp_path):
    clip, masks = moving_square(2, 1)
    checkpoint = tmp_path / "cotracker2.pth"
    for configured, reason_part in ((None, "cotracker.checkpoint is empty"), (str(checkpoint), "does not exist")):
        settings = motion.MotionSettings(tracker=motion.COTRACKER, cotracker_checkpoint=configured)
        results = motion.compute_motion_metrics(clip, clip, masks, settings)
        assert results["motion_fidelity_cotracker"]["status"] == "missing"
        assert reason_part in results["motion_fidelity_cotracker"]["reason"]
        substitute = results["motion_fidelity_lucas_kanade"]
        assert substitute["status"] == "ok" and substitute["substitute_for"] == "motion_fidelity_cotracker"
    checkpoint.write_bytes(b"not really a checkpoint")
    settings = motion.MotionSettings(tracker=motion.COTRACKER, cotracker_checkpoint=str(checkpoint))
    results = motion.compute_motion_metrics(clip, clip, masks, settings)
    assert results["motion_fidelity_cotracker"]["status"] == "missing"  # this machine has no cotracker package
    assert "cotracker package" in results["motion_fidelity_cotracker"]["reason"]


def test_motion_fidelity_fails_loudly_when_nothing_can_be_tracked():
    flat = np.full((4, 32, 32, 3), 100, np.uint8)
    result = motion.compute_motion_metrics(flat, flat, np.ones((4, 32, 32)), motion.MotionSettings(tracker=motion.LUCAS_KANADE))
    assert result["motion_fidelity_lucas_kanade"]["status"] == "failed"
    assert "no tracklet survived" in result["motion_fidelity_lucas_kanade"]["reason"]


# -- ground truth -----------------------------------------------------------------------------------


def plus_minus_noise(shape, amplitude: int, seed: int = 0) -> np.ndarray:
    """+-amplitude on every value: its mean square is exactly amplitude**2."""
    return np.where(np.random.RandomState(seed).rand(*shape) < 0.5, -amplitude, amplitude)


def test_psnr_of_known_noise_inside_and_outside_the_mask():
    truth, masks = red_square_clip()
    noise = plus_minus_noise(truth.shape, 5) * (masks[..., None] < 0.5)  # noise only outside the object
    edit = (truth.astype(int) + noise).astype(np.uint8)
    results = groundtruth.compute_groundtruth_metrics(edit, truth, masks, masks)
    expected = 10 * math.log10(255**2 / 25)  # 34.1514 dB
    assert results["gt_psnr_outside_mask"]["value"] == pytest.approx(expected, abs=1e-9)
    assert results["gt_psnr_inside_mask"]["value"] == math.inf  # untouched: MSE 0
    # SSIM's 7x7 window reaches across the mask border, so only the order is known here.
    assert results["gt_ssim_outside_mask"]["value"] < results["gt_ssim_inside_mask"]["value"] < 1.0
    identical = groundtruth.compute_groundtruth_metrics(truth, truth, masks, masks)
    assert identical["gt_ssim"]["value"] == pytest.approx(1.0, abs=1e-12)
    assert identical["gt_ssim_outside_mask"]["value"] == pytest.approx(1.0, abs=1e-12)
    outside_fraction = (masks < 0.5).mean()
    assert results["gt_psnr"]["value"] == pytest.approx(10 * math.log10(255**2 / (25 * outside_fraction)), abs=1e-9)


def test_centroid_error_of_a_clip_shifted_by_k_pixels():
    truth, gt_masks = red_square_clip()
    for k in (0, 3, 7):
        shifted, _ = red_square_clip(shift_x=k)
        result = groundtruth.compute_groundtruth_metrics(shifted, truth, gt_masks, gt_masks)["centroid_error_px"]
        assert result["status"] == "ok"
        assert result["value"] == pytest.approx(k, abs=1e-9)
        assert result["per_frame"] == pytest.approx([k] * len(truth), abs=1e-9)
        assert result["frames_without_object"] == 0
        assert result["object_colour"] == [220.0, 30.0, 30.0] and result["background_colour"] == [20.0, 40.0, 200.0]


def test_centroid_error_needs_ground_truth_masks_and_a_visible_object():
    truth, masks = red_square_clip()
    without_masks = groundtruth.compute_groundtruth_metrics(truth, truth, masks, None)
    assert without_masks["centroid_error_px"]["status"] == "missing"
    assert "--gt-masks" in without_masks["centroid_error_px"]["reason"]
    object_gone = np.zeros_like(truth)
    object_gone[...] = (20, 40, 200)
    gone = groundtruth.compute_groundtruth_metrics(object_gone, truth, masks, masks)["centroid_error_px"]
    assert gone["status"] == "failed" and "not found" in gone["reason"]


# -- edit.json, config, CLI -------------------------------------------------------------------------


def test_runtime_and_memory_come_from_edit_json_or_are_missing():
    costs = cost_metrics({"runtime_s": 12.5, "peak_memory_mib": 2048}, "e/edit.json")
    assert costs["runtime_s"]["value"] == 12.5 and costs["peak_memory_mib"]["value"] == 2048.0
    absent = cost_metrics({"runtime_s": 3}, "e/edit.json")["peak_memory_mib"]
    assert absent["status"] == "missing" and "e/edit.json has no 'peak_memory_mib'" in absent["reason"]
    with pytest.raises(InputError, match="e/edit.json: field runtime_s"):
        cost_metrics({"runtime_s": "fast"}, "e/edit.json")


def test_config_rejects_unknown_keys_and_bad_values(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"motion": {"trackr": "cotracker"}}))
    with pytest.raises(InputError, match=r"metrics.json: field motion.*trackr"):
        load_config(str(path))
    with pytest.raises(InputError, match="field motion.tracker"):
        load_config('{"motion": {"tracker": "raft"}}')
    config = load_config('{"motion": {"tracker": "lucas-kanade"}, "lpips": {"outside_mask": false}}')
    assert config.motion.tracker == "lucas-kanade" and config.lpips_outside_mask is False


def _write_edit(tmp_path, edit_json: dict, shift_x: int = 2):
    truth, masks = red_square_clip()
    edit, _ = red_square_clip(shift_x=shift_x)
    write_frames(truth, tmp_path / "input")
    write_frames(edit, tmp_path / "edit")
    write_frames((masks * 255).astype(np.uint8), tmp_path / "masks")
    write_frames(truth, tmp_path / "gt")
    write_frames((masks * 255).astype(np.uint8), tmp_path / "gt_masks")
    (tmp_path / "edit.json").write_text(json.dumps(edit_json))


def test_cli_writes_a_valid_record(tmp_path, tiny_clip, alexnet_checkpoint):
    from dreammotion.cli import main

    _write_edit(tmp_path, {"runtime_s": 9.5, "peak_memory_mib": 100.0, "settings": {"lr": 0.1}, "final_losses": {"vdds": 0.2}})
    config = {"clip": {"pretrained": str(tiny_clip)}, "lpips": {"backbone_weights": str(alexnet_checkpoint)}, "motion": {"tracker": "lucas-kanade"}}
    out = tmp_path / "metrics" / "full" / "row1.json"
    argv = [
        "metrics", "--input-frames", str(tmp_path / "input"), "--edit-frames", str(tmp_path / "edit"),
        "--masks", str(tmp_path / "masks"), "--target-prompt", "a red square", "--ground-truth", str(tmp_path / "gt"),
        "--gt-masks", str(tmp_path / "gt_masks"), "--edit-json", str(tmp_path / "edit.json"),
        "--config", json.dumps(config), "--out", str(out),
    ]
    assert main(argv) == 0
    record = validate_record(json.loads(out.read_text()), str(out))
    assert (record["id"], record["variant"], record["status"]) == ("row1", "full", "ok")
    assert record["settings"] == {"lr": 0.1} and record["final_losses"] == {"vdds": 0.2}
    metrics = record["metrics"]
    assert {"clip_text_alignment", "lpips_alex", "motion_fidelity_lucas_kanade", "gt_psnr_inside_mask", "runtime_s"} <= set(metrics)
    assert "motion_fidelity_cotracker" not in metrics  # Lucas-Kanade was asked for: no CoTracker entry
    assert metrics["centroid_error_px"]["value"] == pytest.approx(2.0)
    assert metrics["runtime_s"]["value"] == 9.5
    assert all(m["status"] == "ok" for m in metrics.values()), {k: m["reason"] for k, m in metrics.items()}


def test_cli_rejects_clips_of_different_lengths_naming_the_folder(tmp_path, capsys):
    from dreammotion.cli import main

    _write_edit(tmp_path, {"runtime_s": 1.0, "peak_memory_mib": 1.0})
    short, _ = red_square_clip(frames=3)
    write_frames(short, tmp_path / "edit")
    argv = ["metrics", "--input-frames", str(tmp_path / "input"), "--edit-frames", str(tmp_path / "edit"),
            "--masks", str(tmp_path / "masks"), "--target-prompt", "p", "--edit-json", str(tmp_path / "edit.json"),
            "--out", str(tmp_path / "m.json")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"--edit-frames {tmp_path / 'edit'} has 3 frames" in err
    assert not (tmp_path / "m.json").exists()


def test_record_schema_requires_an_error_for_failed_records():
    with pytest.raises(InputError, match="x.json"):
        validate_record({"id": "a", "variant": "full", "status": "failed"}, "x.json")
    with pytest.raises(InputError, match="field metrics.clip_text_alignment.status"):
        validate_record({"id": "a", "variant": "full", "status": "ok", "metrics": {"clip_text_alignment": {"value": 0, "status": "zero"}}}, "x.json")
    assert RECORD_SCHEMA["properties"]["status"]["enum"] == ["ok", "failed"]


# -- the cascade's upsampled clip -------------------------------------------------------------------


def test_upsampled_metrics_compare_the_cascade_and_lanczos_with_the_true_64px_clip():
    from dreammotion.metrics.config import load_config
    from dreammotion.metrics.results import MetricUnavailable
    from dreammotion.metrics.upsampled import compute_upsampled_metrics
    from dreammotion.synthetic import ClipSpec, render

    spec = ClipSpec()
    edit, _ = render(spec, 32)
    truth_64, _ = render(spec, 64)  # the renderer is resolution-free: a true 64x64 clip
    config = load_config(None)
    missing_clip = MetricUnavailable("no CLIP model configured")
    perfect = compute_upsampled_metrics(edit, truth_64, truth_64, "p", None, missing_clip, config)
    assert perfect["upsampled_gt_psnr"]["value"] == math.inf
    assert perfect["upsampled_gt_ssim"]["value"] == pytest.approx(1.0)
    lanczos = perfect["lanczos_gt_psnr"]["value"]
    assert 15 < lanczos < 60 and perfect["lanczos_gt_ssim"]["value"] < 1.0  # resizing loses the edges
    assert perfect["upsampled_clip_text_alignment"]["status"] == "missing"
    assert "no CLIP model configured" in perfect["upsampled_clip_frame_consistency"]["reason"]
    noisy = np.clip(truth_64.astype(int) + plus_minus_noise(truth_64.shape, 8), 0, 255).astype(np.uint8)
    worse = compute_upsampled_metrics(edit, noisy, truth_64, "p", None, missing_clip, config)
    assert worse["upsampled_gt_psnr"]["value"] == pytest.approx(20 * math.log10(255 / 8), abs=0.3)
    # A ground truth with other frames (e.g. interpolate+sr's extra frames) is missing, with the sizes.
    other = compute_upsampled_metrics(edit, np.concatenate([truth_64, truth_64]), truth_64, "p", None, missing_clip, config)
    assert other["upsampled_gt_psnr"]["status"] == "missing"
    assert "16 frames of 64x64 px" in other["upsampled_gt_psnr"]["reason"]
    assert other["lanczos_gt_psnr"]["status"] == "ok"  # the edit itself has the ground truth's frames
    # A real video (no upsampled ground truth): only the CLIP metrics of the upsampled clip apply.
    assert set(compute_upsampled_metrics(edit, truth_64, None, "p", None, missing_clip, config)) == {
        "upsampled_clip_text_alignment", "upsampled_clip_frame_consistency"}


def test_cli_measures_the_upsampled_clip_in_the_same_record(tmp_path, tiny_clip):
    from dreammotion.cli import main
    from dreammotion.upsample.resize import resize_frames

    _write_edit(tmp_path, {"runtime_s": 1.0, "peak_memory_mib": 1.0})
    truth, _ = red_square_clip()
    truth_96 = resize_frames(truth, 96, 96)
    write_frames(truth_96, tmp_path / "gt_up")
    # A second stage that restores the truth up to small noise, against Lanczos of the shifted edit.
    write_frames(np.clip(truth_96.astype(int) + plus_minus_noise(truth_96.shape, 4), 0, 255).astype(np.uint8), tmp_path / "up")
    config = {"clip": {"pretrained": str(tiny_clip)}, "motion": {"tracker": "lucas-kanade"}}
    base = ["metrics", "--input-frames", str(tmp_path / "input"), "--edit-frames", str(tmp_path / "edit"),
            "--masks", str(tmp_path / "masks"), "--target-prompt", "a red square", "--ground-truth", str(tmp_path / "gt"),
            "--edit-json", str(tmp_path / "edit.json"), "--config", json.dumps(config)]
    out = tmp_path / "m.json"
    assert main(base + ["--upsampled-frames", str(tmp_path / "up"), "--upsampled-ground-truth", str(tmp_path / "gt_up"),
                        "--out", str(out)]) == 0
    record = validate_record(json.loads(out.read_text()), str(out))
    metrics = record["metrics"]
    names = {"upsampled_clip_text_alignment", "upsampled_clip_frame_consistency", "upsampled_gt_psnr",
             "upsampled_gt_ssim", "lanczos_gt_psnr", "lanczos_gt_ssim"}
    assert all(metrics[n]["status"] == "ok" for n in names), {n: metrics[n].get("reason") for n in names}
    assert metrics["upsampled_gt_psnr"]["value"] > metrics["lanczos_gt_psnr"]["value"] + 10
    assert record["inputs"]["upsampled_ground_truth"] == str(tmp_path / "gt_up")
    assert main(base + ["--upsampled-ground-truth", str(tmp_path / "gt_up"), "--out", str(tmp_path / "n.json")]) == 1
    assert not (tmp_path / "n.json").exists()


def test_keyframe_route_is_measured_against_the_truth_at_the_interpolated_frame_rate():
    """interpolate+sr by k makes (F - 1) * k + 1 frames: against the true clip at k times the frame rate it gets
    numbers, keyframes and in-betweens apart, with the interpolated clip resized as its Lanczos baseline; an
    edit-rate truth or a truth of another k reads missing, with both frame counts and why."""
    from dreammotion.metrics.groundtruth import psnr_per_frame
    from dreammotion.metrics.upsampled import KeyframeRoute, compute_upsampled_metrics
    from dreammotion.synthetic import ClipSpec, render
    from dreammotion.upsample import interpolate_frames, make_interpolator, resize_frames

    spec, k = ClipSpec(), 2
    edit = render(spec, 32)[0]
    interpolated = interpolate_frames(edit, k, make_interpolator(substitute="linear"))
    truth = render(spec, 64, 15, frame_rate_factor=k)[0]  # frame 2i is the true 64x64 frame i
    # a second stage off by +-4 on the keyframes and +-8 on the in-betweens
    amplitude = np.where(np.arange(15) % k == 0, 4, 8)[:, None, None, None]
    upsampled = (truth.astype(int) + plus_minus_noise(truth.shape, 1) * amplitude).astype(np.uint8)
    config, no_clip = load_config(None), MetricUnavailable("no CLIP model configured")
    route = KeyframeRoute(interpolated, k)
    results = compute_upsampled_metrics(edit, upsampled, truth, "p", None, no_clip, config, route)
    psnr = results["upsampled_gt_psnr"]
    assert psnr["status"] == "ok" and len(psnr["per_frame"]) == 15 and psnr["interpolation_factor"] == k
    assert psnr["keyframes"] == pytest.approx(20 * math.log10(255 / 4), abs=1e-9)
    assert psnr["in_betweens"] == pytest.approx(20 * math.log10(255 / 8), abs=1e-9)
    assert results["upsampled_gt_ssim"]["status"] == "ok" and results["upsampled_gt_ssim"]["keyframes"] is not None
    lanczos = results["lanczos_gt_psnr"]
    assert "interpolated clip" in lanczos["compared"]
    assert lanczos["value"] == pytest.approx(np.mean(psnr_per_frame(resize_frames(interpolated, 64, 64), truth)))
    # its keyframes are the edit's own frames resized: the baseline of the other methods, frame for frame
    assert lanczos["keyframes"] == pytest.approx(np.mean(psnr_per_frame(resize_frames(edit, 64, 64), render(spec, 64)[0])))

    cases = {"the edit's frame rate": (render(spec, 64)[0], "8 frames of 64x64 px", "ground_truth_interpolated"),
             "k = 3": (render(spec, 64, 22, frame_rate_factor=3)[0], "22 frames of 64x64 px",
                       "ground_truth_interpolation_factor is 3, not upsample.interpolation_factor 2")}
    for case, (wrong_truth, sizes, why) in cases.items():
        wrong = compute_upsampled_metrics(edit, upsampled, wrong_truth, "p", None, no_clip, config, route)
        for name in ("upsampled_gt_psnr", "upsampled_gt_ssim", "lanczos_gt_psnr", "lanczos_gt_ssim"):
            reason = wrong[name]["reason"] or ""
            assert wrong[name]["status"] == "missing", (case, name, wrong[name])
            assert "15 frames of 64x64 px" in reason and sizes in reason and why in reason, (case, name, reason)


def test_cli_takes_the_keyframe_route_from_the_upsample_record(tmp_path, capsys):
    """--upsample-json of an interpolate+sr run: the Lanczos baseline is its stages/interpolated resized (with
    no SR model the cascade is that resize: the same numbers); without it the edit (8 frames) cannot be
    compared with the 15-frame truth and reads missing; a record whose clips disagree is an error."""
    import shutil

    from dreammotion.cli import main
    from dreammotion.synthetic import ClipSpec, render

    spec = ClipSpec()
    frames, masks = render(spec, 32)
    for name in ("input", "edit", "gt"):
        write_frames(frames, tmp_path / name)
    write_frames(masks.astype(np.uint8) * 255, tmp_path / "masks")
    (tmp_path / "edit.json").write_text(json.dumps({"runtime_s": 1.0, "peak_memory_mib": 1.0}))
    write_frames(render(spec, 64, 15, frame_rate_factor=2)[0], tmp_path / "gt_interpolated")
    up = tmp_path / "up"
    assert main(["upsample", "--frames", str(tmp_path / "edit"), "--out-dir", str(up), "--method", "interpolate+sr",
                 "--interpolation-factor", "2", "--scale", "2", "--no-progress"]) == 0
    config = {"clip": {"pretrained": None}, "motion": {"tracker": "lucas-kanade"}}
    base = ["metrics", "--input-frames", str(tmp_path / "input"), "--edit-frames", str(tmp_path / "edit"),
            "--masks", str(tmp_path / "masks"), "--target-prompt", "a red circle", "--ground-truth", str(tmp_path / "gt"),
            "--edit-json", str(tmp_path / "edit.json"), "--config", json.dumps(config),
            "--upsampled-frames", str(up / "frames"), "--upsampled-ground-truth", str(tmp_path / "gt_interpolated")]
    record_option = ["--upsample-json", str(up / "upsample.json")]

    assert main(base + record_option + ["--out", str(tmp_path / "m.json")]) == 0
    record = validate_record(json.loads((tmp_path / "m.json").read_text()), "m.json")
    metrics = record["metrics"]
    for name in ("upsampled_gt_psnr", "upsampled_gt_ssim", "lanczos_gt_psnr", "lanczos_gt_ssim"):
        assert metrics[name]["status"] == "ok" and np.isfinite(metrics[name]["value"]), (name, metrics[name])
    assert metrics["lanczos_gt_psnr"]["per_frame"] == metrics["upsampled_gt_psnr"]["per_frame"]  # the SR stage is Lanczos
    assert metrics["upsampled_gt_psnr"]["interpolation_factor"] == 2
    assert record["inputs"]["upsample_json"] == str(up / "upsample.json")

    assert main(base + ["--out", str(tmp_path / "n.json")]) == 0
    metrics = json.loads((tmp_path / "n.json").read_text())["metrics"]
    assert metrics["upsampled_gt_psnr"]["status"] == "ok"  # the clip and the truth agree
    assert metrics["lanczos_gt_psnr"]["status"] == "missing"
    assert "the edit resized with Lanczos has 8 frames of 64x64 px, the upsampled ground truth 15 frames" in metrics["lanczos_gt_psnr"]["reason"]

    (up / "stages" / "interpolated" / "00014.png").unlink()  # a record whose interpolated clip lost a frame
    capsys.readouterr()
    assert main(base + record_option + ["--out", str(tmp_path / "x.json")]) == 1
    err = capsys.readouterr().err
    assert f"upsample record {up / 'upsample.json'}: interpolate+sr by 2 of the edit's 8 frames of 32x32 px makes 15 frames" in err
    assert "14 frames of 32x32 px" in err and not (tmp_path / "x.json").exists()
    shutil.rmtree(up / "stages")
    assert main(base + record_option + ["--out", str(tmp_path / "x.json")]) == 1
    assert "stages_kept.interpolated" in capsys.readouterr().err
