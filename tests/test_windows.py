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
