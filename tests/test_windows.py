"""Long clips: overlapping windows over one set of latents (dreammotion.edit.windows), tiny model, CPU."""

import pytest
import torch

from dreammotion.edit import EditConfig, dreammotion_edit
from dreammotion.edit.losses import frame_key_means, temporal_cross_ssm_loss
from conftest import edit_inputs
from dreammotion.edit.optimizer import EditStep, FastPath
from dreammotion.edit.windows import Windows, crossfade, independent_windows, windowed_update
from dreammotion.edit.config import EditSettingsError

FRAMES, SIZE = 10, 16


def test_windows_cover_the_clip_and_end_at_its_last_frame():
    windows = Windows.for_clip(32, 8, 4)
    assert windows.starts == [0, 4, 8, 12, 16, 20, 24]
    assert windows.coverage().min() >= 1 and windows.coverage().max() == 2
    assert windows.borders() == [4, 7, 8, 11, 12, 15, 16, 19, 20, 23, 24, 27]
    uneven = Windows.for_clip(10, 4, 1)  # stride 3: 0, 3, 6 -> a last window at 6 ends at frame 9
    assert uneven.starts == [0, 3, 6] and uneven.slices[-1] == slice(6, 10)
    assert Windows.for_clip(8, 0, 4).starts == [0] and Windows.for_clip(8, 8, 4).starts == [0]
    assert Windows.for_clip(6, 24, 4).length == 6  # a clip shorter than the window: one window
    with pytest.raises(ValueError, match="overlap"):
        Windows(32, 8, 8)


def test_window_settings_are_checked():
    with pytest.raises(EditSettingsError, match="window_overlap"):
        EditConfig(window=4, window_overlap=4)
    with pytest.raises(EditSettingsError, match="window must be >= 0"):
        EditConfig(window=-1)
    assert EditConfig(window=8).fingerprint() != EditConfig().fingerprint()


def test_crossfade_keeps_constant_parts_and_weights_sum_to_one():
    windows = Windows.for_clip(10, 4, 2)
    parts = [torch.full((1, 2, 4, 3, 3), float(i)) for i in range(len(windows.starts))]
    joined = crossfade(parts, windows)
    assert joined.shape == (1, 2, 10, 3, 3)
    assert torch.all(joined[:, :, 0] == 0) and torch.all(joined[:, :, -1] == len(parts) - 1)
    same = crossfade([torch.ones(1, 2, 4, 3, 3)] * len(parts), windows)
    torch.testing.assert_close(same, torch.ones(1, 2, 10, 3, 3))
    # Inside an overlap the value moves monotonically from one window's to the next's.
    values = joined[0, 0, :, 0, 0]
    assert torch.all(values[1:] >= values[:-1])


@pytest.fixture(scope="module")
def clip(tiny_model):
    return edit_inputs(tiny_model, FRAMES, SIZE, seed=3)


def test_a_frame_in_an_overlap_gets_the_mean_of_its_windows_updates(clip):
    model, x_src, emb, mask, x, noise = clip
    windows = Windows.for_clip(FRAMES, 4, 2)
    config = EditConfig(lambda_s=0.1, lambda_t=0.1)
    plain = FastPath(fuse_null_branch=False, checkpoint=(), chunk_temporal_attention=False)
    alphas = model.alphas_cumprod.float()
    per_window = []
    with EditStep(model.unet, x_src[:, :, :4], emb, mask[:, :, :4], alphas, config, plain) as step:
        joint = windowed_update(step, x, x_src, mask, 300, noise, windows, cross_window=False)
        for window in windows.slices:
            step.set_window(x_src[:, :, window], mask[:, :, window])
            per_window.append(step(x[:, :, window], 300, noise[:, :, window]).update)
    # frame 2 lies in windows 0 (frames 0-3) and 1 (frames 2-5); frame 0 only in window 0
    torch.testing.assert_close(joint.update[:, :, 2], (per_window[0][:, :, 2] + per_window[1][:, :, 0]) / 2)
    torch.testing.assert_close(joint.update[:, :, 0], per_window[0][:, :, 0])
    with pytest.raises(ValueError, match="window of shape"):
        step.set_window(x_src, mask)


def test_taper_weighting_takes_a_border_frames_update_mostly_from_the_window_it_is_inside(clip):
    windows = Windows.for_clip(FRAMES, 4, 2)
    assert windows.frame_weights("taper").tolist() == [1, 2, 2, 1]
    assert windows.weight_sum("uniform").tolist() == windows.coverage().tolist()
    with pytest.raises(ValueError, match="window weighting"):
        windows.frame_weights("hann")
    with pytest.raises(EditSettingsError, match="window_weighting"):
        EditConfig(window_weighting="hann")
    model, x_src, emb, mask, x, noise = clip
    plain = FastPath(fuse_null_branch=False, checkpoint=(), chunk_temporal_attention=False)
    alphas = model.alphas_cumprod.float()
    with EditStep(model.unet, x_src[:, :, :4], emb, mask[:, :, :4], alphas, EditConfig(), plain) as step:
        taper = windowed_update(step, x, x_src, mask, 300, noise, windows, cross_window=False, weighting="taper")
        per_window = []
        for window in windows.slices:
            step.set_window(x_src[:, :, window], mask[:, :, window])
            per_window.append(step(x[:, :, window], 300, noise[:, :, window]).update)
    # frame 3: last frame of window 0 (weight 1), second of window 1 (weight 2)
    torch.testing.assert_close(taper.update[:, :, 3], (per_window[0][:, :, 3] + 2 * per_window[1][:, :, 1]) / 3)
    torch.testing.assert_close(taper.update[:, :, 0], per_window[0][:, :, 0])  # one window: its own update
    assert EditConfig(window_weighting="uniform").fingerprint() != EditConfig().fingerprint()  # default: taper


def test_cross_window_tssm_matches_similarities_to_the_previous_window(clip):
    model, x_src, emb, mask, x, noise = clip
    keys = torch.randn(4 * 1, 9, 8)
    # The source's own context gives zero loss for the source's own keys, a positive loss otherwise.
    source_means = frame_key_means(keys, 4)
    assert temporal_cross_ssm_loss(keys, keys, 4, source_means, source_means) == 0
    assert temporal_cross_ssm_loss(keys + torch.randn_like(keys), keys, 4, source_means, source_means) > 0
    # In a windowed step the term changes the update (it reaches the latents through the keys).
    windows = Windows.for_clip(FRAMES, 4, 2)
    config = EditConfig(lambda_s=0.0, lambda_t=1.0)
    plain = FastPath(fuse_null_branch=False, checkpoint=(), chunk_temporal_attention=False)
    with EditStep(model.unet, x_src[:, :, :4], emb, mask[:, :, :4], model.alphas_cumprod.float(), config, plain) as step:
        with_cross = windowed_update(step, x, x_src, mask, 300, noise, windows, cross_window=True)
        without = windowed_update(step, x, x_src, mask, 300, noise, windows, cross_window=False)
    assert torch.equal(with_cross.update[:, :, :2], without.update[:, :, :2])  # the first window has no context
    assert not torch.allclose(with_cross.ssm_grad[:, :, 4:], without.ssm_grad[:, :, 4:])
    assert with_cross.loss_t > without.loss_t


def test_long_clip_edit_end_to_end_and_the_naive_route(clip, tmp_path):
    model, x_src, *_ = clip
    config = EditConfig(iterations=2, window=4, window_overlap=2, lambda_s=0.1, lambda_t=0.1, checkpoint_every=1)
    result = dreammotion_edit(model, x_src, "a red circle", "a blue square", None, config, progress=False,
                              checkpoint_path=tmp_path / "ckpt.pt")
    assert result.latents.shape == x_src.shape and torch.isfinite(result.latents).all()
    assert len(result.log) == 2 and not torch.equal(result.latents, x_src.cpu())
    naive = independent_windows(model, x_src, "a red circle", "a blue square", None,
                                EditConfig(iterations=1, lambda_s=0.1, lambda_t=0.1), Windows.for_clip(FRAMES, 4, 2),
                                progress=False)
    assert naive.shape == x_src.shape


@pytest.mark.parametrize("frames,length,overlap", [(32, 8, 4), (30, 8, 4), (15, 8, 4), (20, 8, 2), (9, 8, 7)])
def test_an_offset_grid_still_covers_the_clip_with_the_overlap(frames, length, overlap):
    fixed = Windows.for_clip(frames, length, overlap)
    assert fixed.with_offset(0).starts == fixed.starts
    for offset in range(fixed.stride):
        starts = fixed.with_offset(offset).starts
        assert starts[0] == 0 and starts[-1] == frames - length and starts == sorted(set(starts))
        assert all(b - a <= fixed.stride for a, b in zip(starts, starts[1:]))  # shares >= overlap frames
        if offset and frames - length > offset:
            assert offset in starts  # the inner grid moved
    with pytest.raises(ValueError, match="window offset"):
        fixed.with_offset(fixed.stride)
    drawn = {fixed.random_offset(torch.Generator().manual_seed(seed)).offset for seed in range(64)}
    assert drawn == set(range(fixed.stride))
    assert Windows.for_clip(8, 8, 4).random_offset(torch.Generator()).starts == [0]  # one window: nothing moves


def test_random_window_grid_edits_reproducibly_and_differently_from_the_fixed_grid(clip):
    model, x_src, *_ = clip
    base = dict(iterations=3, window=4, window_overlap=2, lambda_s=0.1, lambda_t=0.1)
    runs = [dreammotion_edit(model, x_src, "a red circle", "a blue square", None, EditConfig(**base, window_grid=grid),
                             progress=False).latents for grid in ("random", "random", "fixed")]
    assert torch.equal(runs[0], runs[1])  # the offsets come from the seeded per-iteration draws
    assert not torch.allclose(runs[0], runs[2])
    with pytest.raises(EditSettingsError, match="window_grid"):
        EditConfig(window_grid="sliding")


def test_window_noise_gives_every_window_the_same_draw(clip):
    model, x_src, emb, mask, x, noise = clip
    windows = Windows.for_clip(FRAMES, 4, 2)  # frames 0-3, 2-5, 4-7, 6-9
    config = EditConfig(lambda_s=0.1, lambda_t=0.1)
    plain = FastPath(fuse_null_branch=False, checkpoint=(), chunk_temporal_attention=False)
    one_window = noise[:, :, :4]
    per_window = []
    with EditStep(model.unet, x_src[:, :, :4], emb, mask[:, :, :4], model.alphas_cumprod.float(), config, plain) as step:
        joint = windowed_update(step, x, x_src, mask, 300, one_window, windows, cross_window=False)
        for window in windows.slices:
            step.set_window(x_src[:, :, window], mask[:, :, window])
            per_window.append(step(x[:, :, window], 300, one_window).update)
        with pytest.raises(ValueError, match="noise of 3 frames"):
            windowed_update(step, x, x_src, mask, 300, noise[:, :, :3], windows)
    # frame 4 is position 2 of window 1 and position 0 of window 2: two different draws of the one window's noise
    torch.testing.assert_close(joint.update[:, :, 4], (per_window[1][:, :, 2] + per_window[2][:, :, 0]) / 2)


def test_window_noise_edits_reproducibly_and_differently_from_clip_noise(clip):
    model, x_src, *_ = clip
    base = dict(iterations=3, window=4, window_overlap=2, lambda_s=0.1, lambda_t=0.1)
    runs = [dreammotion_edit(model, x_src, "a red circle", "a blue square", None,
                             EditConfig(**base, window_noise=kind), progress=False).latents
            for kind in ("window", "window", "clip")]
    assert torch.equal(runs[0], runs[1]) and not torch.allclose(runs[0], runs[2])
    # a clip that fits one window draws the same noise either way
    short = [dreammotion_edit(model, x_src[:, :, :4], "a red circle", "a blue square", None,
                              EditConfig(**base, window_noise=kind), progress=False).latents for kind in ("window", "clip")]
    assert torch.equal(short[0], short[1])
    with pytest.raises(EditSettingsError, match="window_noise"):
        EditConfig(window_noise="frame")


def test_window_noise_makes_disjoint_joint_windows_the_naive_route(clip):
    # Without shared frames, cross-window T-SSM or weights, the joint route under window noise is the naive
    # route: each window sees the same timesteps and window-length noise draws as when it is edited alone.
    model, x_src, *_ = clip
    settings = dict(iterations=3, lambda_s=0.1, lambda_t=0.1, window_weighting="uniform", cross_window_tssm=False)
    x = x_src[:, :, :8]
    joint = dreammotion_edit(model, x, "a red circle", "a blue square", None,
                             EditConfig(**settings, window=4, window_overlap=0, window_noise="window"),
                             progress=False).latents
    naive = independent_windows(model, x, "a red circle", "a blue square", None, EditConfig(**settings),
                                Windows.for_clip(8, 4, 0), progress=False)
    torch.testing.assert_close(joint.cpu(), naive)
    clip_noise = dreammotion_edit(model, x, "a red circle", "a blue square", None,
                                  EditConfig(**settings, window=4, window_overlap=0, window_noise="clip"),
                                  progress=False).latents
    assert not torch.allclose(clip_noise.cpu(), naive)


def test_clip_noise_the_earlier_default_keeps_earlier_checkpoints_fingerprints():
    import hashlib
    import json

    assert EditConfig().window_noise == "window"  # the default since 2026-12-07 (bench/long/README.md)
    config = EditConfig(window=8, window_noise="clip")
    before = config.to_dict()  # the fingerprint as computed before the setting existed
    for key in ("iterations", "checkpoint_every", "extra", "window_noise"):
        before.pop(key)
    assert config.fingerprint() == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:16]
    # the new default is another trajectory: a checkpoint of the old one is not resumed under it
    assert EditConfig(window=8).fingerprint() != config.fingerprint()
    # without windows the setting changes nothing, so an edit of a clip that fits keeps its fingerprint
    whole = EditConfig()
    before = whole.to_dict()
    for key in ("iterations", "checkpoint_every", "extra", "window_noise"):
        before.pop(key)
    assert whole.fingerprint() == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:16]
    assert EditConfig(window_noise="clip").fingerprint() == whole.fingerprint()


# -- the workflow's settings: window and overlap `auto`, read from the model ------------------------------------


def test_auto_window_is_the_models_and_auto_overlap_half_of_it():
    from dreammotion.edit.config import merged_settings, resolve_windows

    auto = {"window": "auto", "window_overlap": "auto", "iterations": 3}
    assert resolve_windows(auto, model_window=8, clip_frames=32) == {"window": 8, "window_overlap": 4, "iterations": 3}
    assert resolve_windows(auto, model_window=24, clip_frames=None) == {"window": 24, "window_overlap": 12, "iterations": 3}
    # A clip known to fit in one window, or a model that states no window: no window keys (the whole clip at
    # once), so the settings are exactly those of an edit without windows.
    assert resolve_windows(auto, model_window=8, clip_frames=8) == {"iterations": 3}
    assert resolve_windows(auto, model_window=None, clip_frames=32) == {"iterations": 3}
    # Explicit values are kept; an auto overlap follows an explicit window.
    assert resolve_windows({"window": 6, "window_overlap": "auto"}, 8, 32) == {"window": 6, "window_overlap": 3}
    assert resolve_windows({"window": "auto", "window_overlap": 2}, 8, 32) == {"window": 8, "window_overlap": 2}
    assert resolve_windows({"window": 0, "window_overlap": "auto"}, 8, 32) == {"window": 0}
    # A row's override wins over the config's auto; the result builds a valid EditConfig.
    settings = merged_settings(auto, {}, {"window": 4}, 1, model_window=8, clip_frames=32)
    assert (settings["window"], settings["window_overlap"], settings["seed"]) == (4, 2, 1)
    EditConfig.from_dict(settings)


def test_model_window_comes_from_training_json_or_a_known_hub_id(tmp_path):
    import json
    from pathlib import Path

    from dreammotion.edit.windows import model_window
    from dreammotion.errors import InputError

    shipped = Path(__file__).parents[1] / "data/models/dreammotion-shapes-t2v"
    assert model_window(str(shipped), shipped) == 8
    assert model_window("cerspense/zeroscope_v2_576w", None) == 24
    assert model_window("someone/unknown-model", None) is None
    (tmp_path / "training.json").write_text(json.dumps({"frames": "eight"}))
    assert model_window(str(tmp_path), tmp_path) is None  # not a count: nothing says
    (tmp_path / "training.json").write_text("{not json")  # a broken record is named, not read as "no window"
    with pytest.raises(InputError, match=r"training record .*training.json is not valid JSON"):
        model_window(str(tmp_path), tmp_path)


# -- the report: window borders on the per-frame plots ------------------------------------------------------------


def test_per_frame_plot_marks_every_window_border(tmp_path):
    import numpy as np
    from PIL import Image

    from dreammotion.report.per_frame import difference_energy, edit_windows, per_frame_figure, write_per_frame_plot

    settings = {"window": 8, "window_overlap": 4}
    record = {"method": "dreammotion", "method_settings": {}, "settings": settings}
    windows = edit_windows(record, 32)
    assert windows.borders() == [4, 7, 8, 11, 12, 15, 16, 19, 20, 23, 24, 27]
    assert edit_windows({}, 32) is None and edit_windows(record, 8) is None  # one window: no borders
    # SDEdit denoises the whole clip: no borders, whether the record names it as a field or (older) in extra
    assert edit_windows({**record, "method": "sdedit", "method_settings": {"strength": 0.5}}, 32) is None
    assert edit_windows({"settings": {**settings, "extra": {"method": "sdedit"}}}, 32) is None

    clip = np.zeros((32, 4, 4, 3), np.uint8)
    clip[10:] = 2
    energy = difference_energy(clip)
    assert np.isnan(energy[0]) and energy[10] == 4 and energy[11] == 0
    metrics = {"gt_psnr": {"value": 30.0, "per_frame": [30.0] * 31 + [None]},  # per frame: plotted
               "runtime_s": {"value": 1.0},  # one number: not a per-frame plot
               "lpips_alex": {"status": "missing", "value": None}}
    fig = per_frame_figure({"edit": clip, "input": clip}, metrics, windows, "row")
    plotted = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title(loc="left") for ax in plotted][1:] == ["gt_psnr"]
    for ax in plotted:  # one dashed vertical line per border
        borders = sorted(line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == "--")
        assert borders == windows.borders()
    png = write_per_frame_plot({"edit": clip, "input": clip}, metrics, record, tmp_path / "frames.png", "row")
    assert Image.open(png).size[0] > 200 and not list(tmp_path.glob(".frames.png.*"))
