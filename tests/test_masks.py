"""Masks stage: spec parsing, GrabCut tracking, provided masks, a tiny random SAM, the CLI."""

from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import cv2
import numpy as np
import pytest
import torch

from dreammotion.cli import main
from dreammotion.errors import InputError
from dreammotion.io.frames import read_masks, write_frames
from dreammotion.masks import BoxPrompt, FileMasks, MaskDriftWarning, NoMask, PointsPrompt, make_masks, parse_mask_spec
from dreammotion.masks.ops import dilate_masks, feather_masks, find_drift, propagation_order
from dreammotion.masks.sam import encode_frames, load_sam
from dreammotion.masks.tiny_sam import build_tiny_sam, save_tiny_sam

ROW = "manifest.csv row 3 (id 'dog'), field 'mask'"


# -- synthetic clips drawn here (numpy/cv2) ------------------------------------------------------


def render_moving_shape(size: int, shape: str, frames: int = 8, step=(3, 1), seed: int = 0):
    """A red shape moving `step` px/frame over a lightly striped, noisy gray background.

    Returns frames (F, H, W, 3) uint8, true masks (F, H, W) bool, and a box around the object on frame 0.
    """
    rng = np.random.default_rng(seed)
    radius = size // 8
    stripes = ((np.arange(size) // 4) % 2 * 16)[None, :, None]  # vertical stripes, 16 levels apart
    clip, truth = [], []
    for f in range(frames):
        centre = (radius + 3 + step[0] * f, size // 2 - 3 + step[1] * f)
        mask = np.zeros((size, size), np.uint8)
        if shape == "circle":
            cv2.circle(mask, centre, radius, 1, thickness=-1)
        else:
            cv2.rectangle(mask, (centre[0] - radius, centre[1] - radius), (centre[0] + radius, centre[1] + radius), 1, -1)
        image = 120 + stripes + rng.integers(-8, 9, (size, size, 3))
        colour = np.array([205, 40, 40]) + rng.integers(-8, 9, (size, size, 3))
        image = np.where(mask[..., None] > 0, colour, image)
        clip.append(np.clip(image, 0, 255).astype(np.uint8))
        truth.append(mask > 0)
    return np.stack(clip), np.stack(truth)


def box_around(mask: np.ndarray, margin: int = 3) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    return max(0, xs.min() - margin), max(0, ys.min() - margin), min(w, xs.max() + 1 + margin), min(h, ys.max() + 1 + margin)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


# -- spec grammar --------------------------------------------------------------------------------


def test_parse_all_spec_forms(tmp_path):
    assert parse_mask_spec("none") == NoMask(text="none")
    box = parse_mask_spec("box=10,20,60,80@2")
    assert box == BoxPrompt(box=(10.0, 20.0, 60.0, 80.0), frame=2, text="box=10,20,60,80@2")
    assert parse_mask_spec("box=1,2,3,4").frame == 0  # '@F' left out: frame 0
    points = parse_mask_spec("points=5,6:1; 7,8:0 @1")
    assert isinstance(points, PointsPrompt)
    assert points.points == ((5.0, 6.0), (7.0, 8.0)) and points.labels == (1, 0) and points.frame == 1
    assert parse_mask_spec("points=5,6;7,8@0").labels == (1, 1)
    spec = parse_mask_spec("file:masks/dog", base_dir=tmp_path)
    assert spec == FileMasks(path=tmp_path / "masks" / "dog", text="file:masks/dog")
    assert parse_mask_spec(f"file:{tmp_path}").path == tmp_path


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("blob", "unknown mask spec 'blob'"),
        ("box=1,2,3@0", "expected 4 comma-separated numbers"),
        ("box=5,5,2,9@0", "x0 < x1"),
        ("box=1,2,3,4@x", "frame after '@' must be an integer"),
        ("points=1,2:0@0", "at least one foreground point"),
        ("points=1,2:7@0", "label must be 0 or 1"),
        ("file:", "names no path"),
        ("", "unknown mask spec ''"),
    ],
)
def test_parse_errors_name_spec_and_row(text, fragment):
    with pytest.raises(InputError) as err:
        parse_mask_spec(text, context=ROW)
    assert str(err.value).startswith(ROW) and fragment in str(err.value)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("box=10,10,70,40@0", "box lies outside the 64x48 (WxH) frame"),
        ("box=-1,0,10,10@0", "box lies outside"),
        ("points=10,50@0", "point (10, 50) lies outside"),
        ("box=1,1,9,9@4", "frame 4 does not exist (the clip has 4 frames"),
    ],
)
def test_prompt_outside_clip_is_an_error(text, fragment):
    frames = np.zeros((4, 48, 64, 3), np.uint8)
    with pytest.raises(InputError) as err:
        make_masks(frames, text, method="grabcut", context=ROW)
    assert ROW in str(err.value) and repr(text) in str(err.value) and fragment in str(err.value)


def test_method_resolution():
    frames, _ = render_moving_shape(32, "square", frames=3)
    ones, report = make_masks(frames, "box=1,1,20,20@0", method="none")
    assert ones.shape == (3, 32, 32) and ones.dtype == np.float32 and (ones == 1).all()
    assert report["method"] == "none" and "ablation" in report["method_reason"]
    assert make_masks(frames, "none", method="sam")[1]["method"] == "none"  # a 'none' spec needs no model
    _, auto = make_masks(frames, "box=1,1,20,20@0", method="auto")
    assert auto["method"] == "grabcut" and "instead of SAM" in auto["method_reason"]
    with pytest.raises(InputError, match="needs a file:PATH spec"):
        make_masks(frames, "box=1,1,20,20@0", method="file", context=ROW)
    with pytest.raises(InputError, match="unknown mask method 'magic'"):
        make_masks(frames, "box=1,1,20,20@0", method="magic")


# -- GrabCut -------------------------------------------------------------------------------------


@pytest.mark.parametrize("size, shape", [(64, "circle"), (32, "square")])
@pytest.mark.parametrize("prompt", ["box_first", "box_last", "points_middle"])
def test_grabcut_tracks_moving_shape(size, shape, prompt):
    frames, truth = render_moving_shape(size, shape)
    if prompt == "box_first":
        spec = "box={},{},{},{}@0".format(*box_around(truth[0]))
    elif prompt == "box_last":  # propagates backwards only
        spec = "box={},{},{},{}@7".format(*box_around(truth[7]))
    else:  # one click on the object's centre of frame 4: propagates both ways
        ys, xs = np.nonzero(truth[4])
        spec = f"points={int(xs.mean())},{int(ys.mean())}@4"
    masks, report = make_masks(frames, spec, method="grabcut", context=ROW)
    assert masks.shape == truth.shape and masks.dtype == np.float32
    assert set(np.unique(masks)) <= {0.0, 1.0}
    ious = [iou(m > 0.5, t) for m, t in zip(masks, truth)]
    assert min(ious) >= 0.9, ious
    assert report["drift"] == [] and len(report["area_fraction"]) == 8
    assert report["area_fraction"][0] == pytest.approx(truth[0].mean(), abs=0.02)


@pytest.mark.parametrize("size", [32, 64])
def test_grabcut_on_synthetic_renderer(size):
    """Clips of the project's synthetic suite (random shapes, colours, textures, directions).

    The renderer's mask marks every pixel the antialiased object touches; pixels it covers only
    partly are ambiguous for any segmenter, so they are left out of the IoU (PASCAL VOC's "void"
    boundary). A lost, shrunken or spilled mask still fails.
    """
    synthetic = pytest.importorskip("dreammotion.synthetic")
    rng = np.random.default_rng(0)
    for _ in range(6):
        clip = synthetic.sample_spec(rng, 8, held_out="any")
        frames, touched = synthetic.render(clip, size, 8)
        coverage = synthetic.coverage(clip, size, 8)
        masks, _ = make_masks(frames, "box={},{},{},{}@0".format(*box_around(touched[0])), method="grabcut")
        decided = (coverage == 0) | (coverage == 1)
        ious = [iou((m > 0.5) & d, (c == 1) & d) for m, c, d in zip(masks, coverage, decided)]
        assert min(ious) >= 0.9, (clip, ious)


def test_grabcut_box_covering_whole_frame_is_an_error():
    frames, _ = render_moving_shape(32, "square", frames=2)
    with pytest.raises(InputError, match="covers the whole frame"):
        make_masks(frames, "box=0,0,32,32@0", method="grabcut", context=ROW)


def test_empty_result_is_an_error_naming_the_row():
    flat = np.full((3, 32, 32, 3), 128, np.uint8)  # nothing to segment: GrabCut finds no object
    with pytest.raises(InputError) as err:
        make_masks(flat, "box=8,8,20,20@0", method="grabcut", context=ROW)
    assert ROW in str(err.value) and "empty mask on frame" in str(err.value)


# -- dilation, feathering, drift ----------------------------------------------------------------


def test_dilate_and_feather():
    binary = np.zeros((1, 32, 32), bool)
    binary[0, 12:20, 12:20] = True
    grown = dilate_masks(binary, 2)
    assert grown[0, 10:22, 10:22][2:-2, 2:-2].all() and grown.sum() > binary.sum()
    assert not grown[0, 9, 9] and not grown[0, 0].any()  # elliptical: corners stay out
    soft = feather_masks(binary, 3)
    assert soft.dtype == np.float32 and soft.min() >= 0.0 and soft.max() <= 1.0
    assert soft[0, 16, 16] == pytest.approx(1.0, abs=1e-3) and 0.2 < soft[0, 16, 12] < 0.8 and soft[0, 0, 0] == 0.0

    frames, truth = render_moving_shape(32, "square", frames=3)
    spec = "box={},{},{},{}@0".format(*box_around(truth[0]))
    masks, report = make_masks(frames, spec, method="grabcut", dilate=2, feather=2)
    assert masks.min() >= 0.0 and masks.max() <= 1.0 and ((masks > 0) & (masks < 1)).any()
    assert report["area_fraction_final"][0] > report["area_fraction"][0]
    assert report["dilate"] == 2 and report["feather"] == 2


def test_find_drift_flags_area_jumps_and_empty_frames():
    masks = np.zeros((4, 10, 10), bool)
    masks[0, :2, :5] = True  # 10 px
    masks[1, :2, :6] = True  # 12 px: fine
    masks[2, :5, :6] = True  # 30 px: jump x2.5
    flags = find_drift(masks, propagation_order(4, 0), area_jump=2.0)
    assert [(f["frame"], f["kind"]) for f in flags] == [(2, "area_jump"), (3, "empty")]
    assert flags[0]["ratio"] == pytest.approx(2.5) and flags[0]["from_frame"] == 1
    assert propagation_order(4, 2) == [(3, 2), (1, 2), (0, 1)]


# -- provided masks -----------------------------------------------------------------------------


def _write_pngs(folder, masks):
    folder.mkdir(parents=True, exist_ok=True)
    for i, m in enumerate(masks):
        cv2.imwrite(str(folder / f"mask_{i}.png"), (m * 255).astype(np.uint8))


def test_provided_png_folder_and_drift_warning(tmp_path):
    frames = np.zeros((12, 24, 32, 3), np.uint8)
    given = np.zeros((12, 24, 32), bool)
    given[:, 4:10, 4:10] = True
    given[11, 4:20, 4:30] = True  # an area jump on the last frame
    _write_pngs(tmp_path / "given", given)  # mask_10.png must sort after mask_9.png
    with pytest.warns(MaskDriftWarning, match="frame 11"):
        masks, report = make_masks(frames, "file:given", method="sam", base_dir=tmp_path, context=ROW)
    assert report["method"] == "file" and report["file"]["kind"] == "folder"
    assert np.array_equal(masks > 0.5, given)
    assert [(f["frame"], f["kind"]) for f in report["drift"]] == [(11, "area_jump")]


@pytest.mark.parametrize(
    "count, shape, fragment",
    [
        (3, (24, 32), "holds 3 masks but the clip has 4 frames"),
        (4, (32, 32), "is 32x32 (WxH) but the frames are 32x24"),
    ],
)
def test_provided_masks_wrong_count_or_size(tmp_path, count, shape, fragment):
    frames = np.zeros((4, 24, 32, 3), np.uint8)
    given = np.ones((count, *shape), bool)
    _write_pngs(tmp_path / "given", given)
    with pytest.raises(InputError) as err:
        make_masks(frames, f"file:{tmp_path / 'given'}", method="file", context=ROW)
    assert str(err.value).startswith(ROW) and fragment in str(err.value) and str(tmp_path / "given") in str(err.value)


def test_provided_masks_missing_empty_or_unreadable(tmp_path):
    frames = np.zeros((2, 16, 16, 3), np.uint8)
    with pytest.raises(InputError, match="does not exist"):
        make_masks(frames, f"file:{tmp_path / 'nope'}", method="file", context=ROW)
    given = np.zeros((2, 16, 16), bool)
    given[0, 2:6, 2:6] = True  # frame 1 empty
    _write_pngs(tmp_path / "given", given)
    with pytest.raises(InputError, match="empty mask on frame 1"):
        make_masks(frames, f"file:{tmp_path / 'given'}", method="file", context=ROW)
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    with pytest.raises(InputError, match="cannot decode mask video"):
        make_masks(frames, f"file:{tmp_path / 'bad.mp4'}", method="file", context=ROW)


def test_provided_mask_video(tmp_path):
    import imageio_ffmpeg

    given = np.zeros((5, 32, 48), bool)
    for i in range(5):
        given[i, 8:24, 4 + 4 * i : 20 + 4 * i] = True
    path = tmp_path / "mask.mp4"
    writer = imageio_ffmpeg.write_frames(str(path), (48, 32), pix_fmt_in="gray", pix_fmt_out="yuv420p", fps=8,
                                         macro_block_size=1, output_params=["-qp", "0"], ffmpeg_log_level="error")
    writer.send(None)
    for m in given:
        writer.send(np.ascontiguousarray(m.astype(np.uint8) * 255))
    writer.close()
    masks, report = make_masks(np.zeros((5, 32, 48, 3), np.uint8), f"file:{path}", method="file")
    assert report["file"]["kind"] == "video" and masks.shape == (5, 32, 48)
    assert min(iou(m > 0.5, g) for m, g in zip(masks, given)) >= 0.95
    with pytest.raises(InputError, match="holds 5 masks but the clip has 4"):
        make_masks(np.zeros((4, 32, 48, 3), np.uint8), f"file:{path}", method="file")


# -- segment-anything (tiny random model through the real predictor path) ----------------------


@pytest.fixture(scope="module")
def tiny_sam_checkpoint(tmp_path_factory):
    return save_tiny_sam(tmp_path_factory.mktemp("sam") / "tiny_sam.pth", seed=1)


def test_sam_batched_encoding_matches_set_image(tiny_sam_checkpoint):
    predictor = load_sam(tiny_sam_checkpoint, "tiny", "cpu")
    frames = np.random.default_rng(0).integers(0, 256, (3, 48, 64, 3), dtype=np.uint8)
    embeddings, input_size = encode_frames(predictor, frames, batch_size=2)
    assert embeddings.shape == (3, 16, 4, 4)
    for i, frame in enumerate(frames):
        predictor.set_image(frame)
        assert input_size == predictor.input_size
        torch.testing.assert_close(embeddings[i], predictor.features[0], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("spec", ["box=8,8,40,30@2", "points=20,20;30,25:0@0"])
def test_sam_path_shapes_and_report(tiny_sam_checkpoint, spec):
    frames, _ = render_moving_shape(64, "circle", frames=5)
    frames = frames[:, :48]  # non-square: exercises SAM's padding and postprocessing
    masks, report = make_masks(frames, spec, method="auto", sam_checkpoint=tiny_sam_checkpoint,
                               sam_model_type="tiny", sam_batch_size=2, context=ROW)
    assert masks.shape == (5, 48, 64) and masks.dtype == np.float32
    assert set(np.unique(masks)) <= {0.0, 1.0}  # no dilate/feather: binary
    assert report["method"] == "sam" and report["sam"]["model_type"] == "tiny"
    assert len(report["sam"]["predicted_iou"]) == 5 and report["sam"]["batch_size"] == 2
    assert report["area_fraction"] == [pytest.approx(m.mean(), abs=1e-5) for m in masks]
    # A random SAM's masks are meaningless; the drift flags must still describe them.
    assert report["drift"] == find_drift(masks > 0.5, propagation_order(5, report["prompt_frame"]))


def test_sam_empty_mask_is_an_error(tmp_path):
    sam = build_tiny_sam()
    for mlp in sam.mask_decoder.output_hypernetworks_mlps:  # zero mask logits everywhere -> nothing above 0
        torch.nn.init.zeros_(mlp.layers[-1].weight)
        torch.nn.init.zeros_(mlp.layers[-1].bias)
    torch.save(sam.state_dict(), tmp_path / "blind.pth")
    frames = np.zeros((3, 32, 32, 3), np.uint8)
    with pytest.raises(InputError) as err:
        make_masks(frames, "box=4,4,20,20@1", method="sam", sam_checkpoint=tmp_path / "blind.pth",
                   sam_model_type="tiny", context=ROW)
    assert ROW in str(err.value) and "empty mask on frame 1 (method sam)" in str(err.value)


def test_sam_missing_or_bad_checkpoint(tmp_path):
    frames = np.zeros((2, 32, 32, 3), np.uint8)
    missing = tmp_path / "weights" / "sam_vit_b_01ec64.pth"
    with pytest.raises(InputError) as err:
        make_masks(frames, "box=4,4,20,20@0", method="sam", sam_checkpoint=missing, context=ROW)
    message = str(err.value)
    assert "sam_vit_b_01ec64.pth" in message and str(missing) in message and "masks.sam.checkpoint" in message
    with pytest.raises(InputError, match="not configured"):
        make_masks(frames, "box=4,4,20,20@0", method="sam", sam_checkpoint=None)
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="cannot load SAM checkpoint"):
        make_masks(frames, "box=4,4,20,20@0", method="sam", sam_checkpoint=tmp_path / "garbage.pth", sam_model_type="tiny")
    with pytest.raises(InputError, match="unknown SAM model type 'vit_x'"):
        make_masks(frames, "box=4,4,20,20@0", method="sam", sam_checkpoint=tmp_path / "garbage.pth", sam_model_type="vit_x")


# -- CLI ----------------------------------------------------------------------------------------


def test_cli_writes_masks_report_and_preview(tmp_path, capsys):
    import imageio_ffmpeg

    frames, truth = render_moving_shape(32, "circle", frames=6)
    write_frames(frames, tmp_path / "frames")
    out = tmp_path / "masks" / "clip" / "dog"
    spec = "box={},{},{},{}@0".format(*box_around(truth[0]))
    code = main(["masks", "--frames", str(tmp_path / "frames"), "--spec", spec, "--method", "grabcut",
                 "--out", str(out), "--feather", "1", "--context", ROW])
    assert code == 0
    masks = read_masks(out)
    assert masks.shape == (6, 32, 32) and min(iou(m > 0.5, t) for m, t in zip(masks, truth)) >= 0.9
    report = json.loads((out / "masks.json").read_text())
    assert report["method"] == "grabcut" and report["context"] == ROW and report["feather"] == 1
    reader = imageio_ffmpeg.read_frames(str(out / "preview.mp4"))
    meta = reader.__next__()
    width, height = meta["size"]  # frames | overlay side by side, upscaled to a viewable size
    assert width == 2 * height and height >= 256 and sum(1 for _ in reader) == 6
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporary leftovers

    code = main(["masks", "--frames", str(tmp_path / "frames"), "--spec", "box=0,0,40,10@0", "--method", "grabcut",
                 "--out", str(tmp_path / "bad"), "--context", ROW])
    assert code == 1 and ROW in capsys.readouterr().err and not (tmp_path / "bad").exists()
