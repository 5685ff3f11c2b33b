"""The synthetic clip renderer, captions and the edit-suite generator."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from dreammotion.io.frames import read_frames, read_masks
from dreammotion.synthetic import (
    ClipSpec,
    caption,
    coverage,
    edit_ground_truth,
    frame_times,
    render,
    render_background_frames,
    render_batch_torch,
    sample_spec,
    specs_to_tensors,
    vocabulary,
)
from dreammotion.synthetic.render import HELD_OUT_PAIRS, OBJECT_COLOURS
from dreammotion.synthetic.suite import MANIFEST_COLUMNS, build_suite


def _specs(n: int, seed: int = 0, held_out: str = "any") -> list[ClipSpec]:
    rng = np.random.default_rng(seed)
    return [sample_spec(rng, held_out=held_out) for _ in range(n)]


def test_render_is_deterministic_and_shaped():
    assert _specs(5, seed=3) == _specs(5, seed=3)
    spec = _specs(1, seed=3)[0]
    frames, masks = render(spec)
    again, masks_again = render(spec)
    assert frames.shape == (8, 32, 32, 3) and frames.dtype == np.uint8
    assert masks.shape == (8, 32, 32) and masks.dtype == bool
    np.testing.assert_array_equal(frames, again)
    np.testing.assert_array_equal(masks, masks_again)
    frames64, masks64 = render(spec, size=64, frames=4)
    assert frames64.shape == (4, 64, 64, 3) and masks64.shape == (4, 64, 64)


@pytest.mark.parametrize("spec", _specs(12, seed=1))
def test_masks_are_exactly_where_the_object_changes_pixels(spec):
    frames, masks = render(spec)
    background = render_background_frames(spec)
    np.testing.assert_array_equal(masks, (frames != background).any(axis=-1))
    fully_covered = coverage(spec) == 1.0
    assert fully_covered.any()
    assert (frames[fully_covered] == np.array(OBJECT_COLOURS[spec.colour], dtype=np.uint8)).all()


def test_object_moves_along_its_direction_at_both_sizes():
    spec = ClipSpec(direction="down right", x0=0.3, y0=0.3, speed=0.05)
    for size in (32, 64):
        _, masks = render(spec, size=size)
        ys, xs = np.nonzero(masks[0])
        ys7, xs7 = np.nonzero(masks[7])
        shift = np.array([xs7.mean() - xs.mean(), ys7.mean() - ys.mean()]) / size
        np.testing.assert_allclose(shift, [0.05 * 7 * np.sqrt(0.5)] * 2, atol=1.0 / size)


# A square whose left edge lies exactly on a sample point in frame 5 (size chosen so that
# 0.85 * size == centre - sample): the case that a slowed spec (speed / 3) gets wrong.
EDGE_ON_A_SAMPLE = ClipSpec("square", "red", "gray", "plain", "right", 0.35, 0.5, 0.02003, 0.15734558823529404)


@pytest.mark.parametrize("factor", [1, 2, 3, 4])
def test_the_clip_at_k_times_the_frame_rate_holds_the_clip_at_every_kth_frame(factor):
    """The ground truth of interpolation by k: (F - 1) * k + 1 frames whose frame i * k is frame i, exactly."""
    for spec in [EDGE_ON_A_SAMPLE, *_specs(6, seed=4)]:
        for size in (32, 64):
            fast, fast_masks = render(spec, size, 7 * factor + 1, frame_rate_factor=factor)
            frames, masks = render(spec, size, 8)
            assert fast.shape == (7 * factor + 1, size, size, 3)
            np.testing.assert_array_equal(fast[::factor], frames)
            np.testing.assert_array_equal(fast_masks[::factor], masks)
    if factor > 1:  # the frames between are the motion's: neither neighbour
        fast = render(EDGE_ON_A_SAMPLE, 32, 7 * factor + 1, frame_rate_factor=factor)[0]
        assert not np.array_equal(fast[1], fast[0]) and not np.array_equal(fast[1], fast[factor])


def test_slowing_the_spec_is_not_exact_and_bad_factors_are_rejected():
    """Why render takes a frame-rate factor rather than a spec with speed / k: (speed / 3) * 15 is not
    speed * 5 in floating point, and the edge on a sample point moves by a whole sample."""
    k, spec = 3, EDGE_ON_A_SAMPLE
    slowed = spec.replace(speed=spec.speed / k)
    assert slowed.centre(5 * k) != spec.centre(5)
    assert not np.array_equal(render(slowed, 32, 7 * k + 1)[0][::k], render(spec, 32, 8)[0])
    assert frame_times(5, 2) == [0.0, 0.5, 1.0, 1.5, 2.0]
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="frame_rate_factor must be an integer >= 1"):
            render(spec, 32, 4, frame_rate_factor=bad)


def test_changing_colour_or_background_keeps_the_masks():
    spec = ClipSpec(shape="triangle", colour="red", background="gray", texture="striped")
    frames, masks = render(spec)
    for changes in ({"colour": "blue"}, {"background": "black", "texture": "checkered"}):
        target, target_frames, target_masks = edit_ground_truth(spec, **changes)
        np.testing.assert_array_equal(masks, target_masks)
        assert not np.array_equal(frames, target_frames)
        assert caption(target) != caption(spec)
    # A colour edit changes only pixels inside the mask.
    _, blue, _ = edit_ground_truth(spec, colour="blue")
    np.testing.assert_array_equal(frames[~masks], blue[~masks])
    assert (frames[masks] != blue[masks]).any(axis=-1).all()


def test_caption_text_and_vocabulary():
    assert caption(ClipSpec()) == "a red circle moving right on a gray background"
    spec = ClipSpec(shape="cross", colour="cyan", background="brown", texture="checkered", direction="up left", size=0.12)
    assert caption(spec) == "a small cyan cross moving up left on a checkered brown background"
    assert caption(spec.replace(size=0.21)).startswith("a large cyan cross")
    words = set(vocabulary())
    for s in _specs(50, seed=2):
        assert set(caption(s).split()) <= words


def test_invalid_specs_are_rejected():
    with pytest.raises(ValueError, match="shape"):
        ClipSpec(shape="hexagon")
    with pytest.raises(ValueError, match="stand out"):
        ClipSpec(colour="white", background="white")


def test_held_out_pairs_are_respected():
    train = _specs(300, seed=4, held_out="exclude")
    assert not any((s.colour, s.shape) in HELD_OUT_PAIRS for s in train)
    held = _specs(30, seed=4, held_out="only")
    assert all((s.colour, s.shape) in HELD_OUT_PAIRS for s in held)


def test_torch_renderer_matches_numpy_reference():
    specs = _specs(10, seed=5)
    reference = [render(s) for s in specs]
    frames, masks = render_batch_torch(specs_to_tensors(specs, dtype=torch.float64))
    for i, (ref_frames, ref_masks) in enumerate(reference):
        np.testing.assert_array_equal(frames[i].numpy().astype(np.uint8), ref_frames)
        np.testing.assert_array_equal(masks[i].numpy(), ref_masks)
    # float32 (what training uses): at most rounding differences.
    frames32, masks32 = render_batch_torch(specs_to_tensors(specs, dtype=torch.float32))
    ref_all = np.stack([r[0] for r in reference]).astype(np.int16)
    assert np.abs(frames32.numpy().astype(np.int16) - ref_all).max() <= 1
    assert (masks32.numpy() != np.stack([r[1] for r in reference])).mean() < 1e-3


def test_suite_writes_a_valid_manifest(tmp_path):
    rows = build_suite(tmp_path, n=3, seed=7)
    with open(tmp_path / "manifest.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == MANIFEST_COLUMNS
        read_rows = list(reader)
    assert [r["id"] for r in read_rows] == [r["id"] for r in rows]
    for row in read_rows:
        source = read_frames(tmp_path / row["video"])
        target = read_frames(tmp_path / row["ground_truth"])
        mask = read_masks(tmp_path / row["mask"].removeprefix("file:")) > 0.5
        assert source.shape == target.shape == (8, 32, 32, 3) and mask.shape == (8, 32, 32)
        assert (tmp_path / row["id"] / "source.mp4").stat().st_size > 0
        assert row["source_prompt"] != row["target_prompt"]
        changed = (source != target).any(axis=-1)
        if row["id"].endswith("colour"):  # the object's pixels, nothing else
            assert changed.any() and not (changed & ~mask).any()
        if row["id"].endswith("background"):  # the mask is the background: everything but the object
            assert not mask[0, 0, 0] or mask.mean() > 0.5
            assert changed[mask].mean() > 0.3  # a texture-only change alters about half
    # Same seed, same suite.
    again = build_suite(tmp_path / "again", n=3, seed=7)
    assert [r["target_prompt"] for r in again] == [r["target_prompt"] for r in rows]


@pytest.mark.parametrize("seed", range(6))
def test_colour_edits_always_stand_out_on_their_background(seed):
    """Seed 0 once drew a white object on a white background, which ClipSpec rejects."""
    import numpy as np

    from dreammotion.synthetic.render import sample_spec
    from dreammotion.synthetic.suite import random_edit

    rng = np.random.default_rng(seed)
    for _ in range(200):
        random_edit(rng, sample_spec(rng), "colour")  # raises ValueError if incompatible


def test_benchmark_suite_labels_kinds_and_seeds_and_writes_the_true_object(tmp_path):
    from dreammotion.synthetic.suite import edits_background

    rows = build_suite(tmp_path, n=4, seed=[3, 4], kinds=("colour", "texture", "background", "shape"))
    assert [r["id"] for r in rows[:4]] == ["s3-000_colour", "s3-001_texture", "s3-002_background", "s3-003_shape"]
    assert {r["suite"] for r in rows} == {"seed3", "seed4"} and [r["edit_kind"] for r in rows[4:]] == [r["edit_kind"] for r in rows[:4]]
    for row in rows:
        info = json.loads((tmp_path / row["id"] / "spec.json").read_text())
        source, target = info["source"], info["target"]
        changed = {k for k in source if source[k] != target[k]}
        expected = {"colour": {"colour"}, "texture": {"texture"}, "shape": {"shape"}}.get(row["edit_kind"])
        if expected is not None:
            assert changed == expected, (row["id"], changed)
        else:
            assert changed and changed <= {"background", "texture"}
        truth = read_frames(tmp_path / row["ground_truth"])
        gt_object = read_masks(tmp_path / row["ground_truth_masks"]) > 0.5
        mask = read_masks(tmp_path / row["mask"].removeprefix("file:")) > 0.5
        assert gt_object.shape == truth.shape[:3] and gt_object.any()
        # the true object is the edit region of an object edit, and outside it for a background edit
        overlap = (gt_object & mask).sum() / gt_object.sum()
        assert overlap == 0 if edits_background(row["edit_kind"]) else overlap > 0.5
    # the one-seed suite of a seed is the same edits (its ids without the prefix)
    single = build_suite(tmp_path / "single", n=4, seed=3, kinds=("colour", "texture", "background", "shape"))
    assert [r["target_prompt"] for r in single] == [r["target_prompt"] for r in rows[:4]]
    with pytest.raises(ValueError, match="edit kinds"):
        build_suite(tmp_path / "bad", n=1, seed=0, kinds=("size",))
