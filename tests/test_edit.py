"""The DreamMotion optimiser on a tiny random UNet3D (CPU, seconds)."""

import pytest
import torch

from dreammotion.edit import (
    EditConfig,
    KeyCapture,
    dreammotion_edit,
    select_spatial_self_attention,
    spatial_ssm_loss,
    temporal_ssm_loss,
)
from dreammotion.edit.losses import spatial_similarity
from dreammotion.errors import NumericalError

FRAMES, SIZE = 4, 16


@pytest.fixture(scope="module")
def masks():
    m = torch.zeros(FRAMES, SIZE, SIZE)
    m[:, 4:12, 6:14] = 1.0
    return m


def test_vdds_gradient_is_exactly_zero_for_identical_prompts(tiny_model, source):
    cfg = EditConfig(iterations=3, lambda_s=0, lambda_t=0, seed=3)
    result = dreammotion_edit(tiny_model, source, "a red circle", "a red circle", None, cfg, progress=False)
    assert all(row["vdds_grad_norm"] == 0.0 for row in result.log)
    assert torch.equal(result.latents, source)


def test_vdds_gradient_is_nonzero_for_different_prompts(tiny_model, source):
    cfg = EditConfig(iterations=2, lambda_s=0, lambda_t=0)
    result = dreammotion_edit(tiny_model, source, "a red circle", "a blue square", None, cfg, progress=False)
    assert all(row["vdds_grad_norm"] > 0 for row in result.log)
    assert not torch.equal(result.latents, source)


def _outside(latents, lo=2, hi=6):
    """Latent cells that the test mask (pixels 4:12 x 6:14 -> latent 2:6 x 3:7) does not touch."""
    inside = torch.zeros(latents.shape[-2:], dtype=torch.bool)
    inside[2:6, 3:7] = True
    return latents[..., ~inside]


@pytest.mark.parametrize("mask_applies_to, lambdas", [("vdds", (0.0, 0.0)), ("all", (1.0, 1.0))])
def test_masked_out_latents_stay_bit_identical(tiny_model, source, masks, mask_applies_to, lambdas):
    cfg = EditConfig(iterations=4, lr=0.5, mask_applies_to=mask_applies_to, lambda_s=lambdas[0], lambda_t=lambdas[1])
    result = dreammotion_edit(tiny_model, source, "a red circle", "a blue square", masks, cfg, progress=False)
    assert torch.equal(_outside(result.latents), _outside(source))
    assert not torch.equal(result.latents, source)  # inside the mask it did edit


def test_ssm_gradient_reaches_outside_the_mask_when_only_vdds_is_masked(tiny_model, source, masks):
    """The paper masks the V-DDS term only: self-similarity matching still acts on the whole frame."""
    cfg = EditConfig(iterations=4, lr=0.5, mask_applies_to="vdds", lambda_s=1.0, lambda_t=1.0)
    result = dreammotion_edit(tiny_model, source, "a red circle", "a blue square", masks, cfg, progress=False)
    assert not torch.equal(_outside(result.latents), _outside(source))


def test_ssm_losses_zero_for_equal_keys_and_positive_otherwise():
    torch.manual_seed(0)
    keys = torch.randn(2 * 4, 36, 8)  # (batch * frames, HW, C)
    other = keys + 0.3 * torch.randn_like(keys)
    assert spatial_ssm_loss(keys, keys.clone()) == 0
    assert temporal_ssm_loss(keys, keys.clone(), frames=4) == 0
    assert spatial_ssm_loss(keys, other) > 1e-4
    assert temporal_ssm_loss(keys, other, frames=4) > 0


def test_ssm_losses_are_invariant_to_per_token_key_scaling():
    torch.manual_seed(0)
    keys = torch.randn(4, 36, 8)
    other = torch.randn(4, 36, 8)
    scale = torch.rand(4, 36, 1) * 5 + 0.1
    for gram in (False, True):
        assert torch.allclose(spatial_ssm_loss(keys * scale, other, gram=gram), spatial_ssm_loss(keys, other, gram=gram), rtol=1e-5)
    # T-SSM averages keys over positions first: it is invariant to a per-frame scale of the mean.
    frame_scale = torch.rand(4, 1, 1) + 0.5
    assert torch.allclose(temporal_ssm_loss(keys * frame_scale, other, 4), temporal_ssm_loss(keys, other, 4), rtol=1e-5)


def test_gram_form_equals_explicit_similarity_matrices():
    torch.manual_seed(0)
    keys, other = torch.randn(3, 50, 6), torch.randn(3, 50, 6)
    explicit = spatial_ssm_loss(keys, other, gram=False)
    gram = spatial_ssm_loss(keys, other, gram=True)
    assert torch.allclose(explicit, gram, rtol=1e-5)
    s = spatial_similarity(keys)
    assert torch.allclose(torch.diagonal(s, dim1=-2, dim2=-1), torch.ones(3, 50), atol=1e-6)


def test_layer_selection_takes_spatial_self_attention_only(tiny_model):
    layers = select_spatial_self_attention(tiny_model.unet)
    assert layers and all(n.startswith("up_blocks.") and n.endswith(".attn1") for n in layers)
    assert not any("temp_attentions" in n for n in layers)
    everywhere = select_spatial_self_attention(tiny_model.unet, ["*.attentions.*.attn1"])
    assert any(n.startswith("down_blocks") for n in everywhere) and any(n.startswith("mid_block") for n in everywhere)
    with pytest.raises(ValueError, match="not spatial self-attention"):
        select_spatial_self_attention(tiny_model.unet, ["up_blocks.*.temp_attentions.*.attn1"])
    with pytest.raises(ValueError, match="not spatial self-attention"):
        select_spatial_self_attention(tiny_model.unet, ["up_blocks.*.attentions.*.attn2"])
    with pytest.raises(ValueError, match="matches no attention layer"):
        select_spatial_self_attention(tiny_model.unet, ["nope.*"])


def _inputs(model, source, batch=1):
    emb = model.encode_prompt(["a red circle"] * batch)
    return source.repeat(batch, 1, 1, 1, 1), torch.full((batch,), 500), emb


def test_hooks_capture_keys_and_restore_processors(tiny_model, source):
    unet = tiny_model.unet
    layers = select_spatial_self_attention(unet)
    before = {n: type(p) for n, p in unet.attn_processors.items()}
    x, t, emb = _inputs(tiny_model, source)
    reference = unet(x, t, encoder_hidden_states=emb).sample
    with KeyCapture(unet, layers) as capture:
        out = capture.run(unet, x, t, encoder_hidden_states=emb, truncate=False).sample
        assert sorted(capture.keys) == sorted(layers)
        for name, key in capture.keys.items():
            assert key.shape[0] == FRAMES  # (batch * frames, HW, C)
    after = {n: type(p) for n, p in unet.attn_processors.items()}
    assert after == before
    # the capturing processor computes the same attention as diffusers' own
    assert torch.allclose(out, reference, atol=1e-5)


def test_truncated_forward_gives_the_same_keys_as_a_full_forward(tiny_model, source):
    unet = tiny_model.unet
    layers = select_spatial_self_attention(unet, ["up_blocks.1.attentions.0.transformer_blocks.0.attn1"])
    x, t, emb = _inputs(tiny_model, source)
    with KeyCapture(unet, layers) as capture:
        capture.run(unet, x, t, encoder_hidden_states=emb, truncate=False)
        full = dict(capture.keys)
        assert capture.run(unet, x, t, encoder_hidden_states=emb, truncate=True) is None
        truncated = dict(capture.keys)
    assert full.keys() == truncated.keys()
    for name in full:
        assert torch.equal(full[name], truncated[name])


def test_same_seed_same_result_and_other_seed_differs(tiny_model, source, masks):
    cfg = EditConfig(iterations=3, seed=7)
    a = dreammotion_edit(tiny_model, source, "a red circle", "a blue circle", masks, cfg, progress=False)
    b = dreammotion_edit(tiny_model, source, "a red circle", "a blue circle", masks, cfg, progress=False)
    c = dreammotion_edit(tiny_model, source, "a red circle", "a blue circle", masks, EditConfig(iterations=3, seed=8), progress=False)
    assert torch.equal(a.latents, b.latents)
    assert not torch.equal(a.latents, c.latents)


class _Killed(Exception):
    pass


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_resume_from_checkpoint_equals_uninterrupted_run(tiny_model, source, masks, tmp_path, optimizer, monkeypatch):
    import dreammotion.edit.optimizer as opt

    cfg = EditConfig(iterations=6, checkpoint_every=2, seed=5, optimizer=optimizer, lr=0.05)
    full = dreammotion_edit(tiny_model, source, "a red circle", "a blue circle", masks, cfg, progress=False)

    # Interrupt the run right after its second checkpoint (iteration 4), as a kill would.
    save = opt._save_checkpoint

    def save_then_die(path, x, optimizer_, iteration, *rest):
        save(path, x, optimizer_, iteration, *rest)
        if iteration == 4:
            raise _Killed

    ckpt = tmp_path / "edit.pt"
    monkeypatch.setattr(opt, "_save_checkpoint", save_then_die)
    with pytest.raises(_Killed):
        dreammotion_edit(tiny_model, source, "a red circle", "a blue circle", masks, cfg, checkpoint_path=ckpt, progress=False)
    monkeypatch.setattr(opt, "_save_checkpoint", save)

    resumed = dreammotion_edit(tiny_model, source, "a red circle", "a blue circle", masks, cfg,
                               checkpoint_path=ckpt, progress=False)
    assert resumed.resumed_from == 4
    assert torch.equal(resumed.latents, full.latents)
    assert [r["t"] for r in resumed.log] == [r["t"] for r in full.log]


def test_checkpoint_from_other_settings_is_not_resumed(tiny_model, source, masks, tmp_path, capsys):
    ckpt = tmp_path / "edit.pt"
    dreammotion_edit(tiny_model, source, "a", "b", masks, EditConfig(iterations=3, checkpoint_every=1, lr=0.1),
                     checkpoint_path=ckpt, progress=False)
    other = dreammotion_edit(tiny_model, source, "a", "b", masks, EditConfig(iterations=3, checkpoint_every=1, lr=0.2),
                             checkpoint_path=ckpt, progress=False)
    assert other.resumed_from is None
    assert "ignoring checkpoint" in capsys.readouterr().out


def test_nan_stops_with_the_iteration_named(tiny_model, source):
    bad = source.clone()
    bad[0, 0, 0, 0, 0] = float("nan")
    with pytest.raises(NumericalError, match="iteration 0"):
        dreammotion_edit(tiny_model, bad, "a red circle", "a blue circle", None, EditConfig(iterations=2), progress=False)


def test_divergence_is_reported(tiny_model, source):
    cfg = EditConfig(iterations=50, lr=1e4, divergence_factor=5.0, lambda_s=0, lambda_t=0)
    with pytest.raises(NumericalError, match="diverged"):
        dreammotion_edit(tiny_model, source, "a red circle", "a blue square", None, cfg, progress=False)


def test_sds_ablation_runs_and_differs_from_dds(tiny_model, source):
    dds = dreammotion_edit(tiny_model, source, "a red circle", "a blue circle", None, EditConfig(iterations=2), progress=False)
    sds = dreammotion_edit(tiny_model, source, "a red circle", "a blue circle", None, EditConfig(iterations=2, score="sds"), progress=False)
    assert not torch.equal(dds.latents, sds.latents)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="optimizer"):
        EditConfig(optimizer="lbfgs")
    with pytest.raises(ValueError, match="unknown edit setting"):
        EditConfig.from_dict({"lamda_s": 1})
    with pytest.raises(ValueError, match="t_min"):
        EditConfig(t_min=900, t_max=100)
