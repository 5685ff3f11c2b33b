"""The fast iteration (EditStep with FastPath) gives the straightforward loop's update (CPU, tiny UNet3D).

bench/dreammotion_bench.py times the same two functions on a GPU at ZeroScope size.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import edit_inputs

from dreammotion.edit import EditConfig, dreammotion_edit, spatial_ssm_loss, temporal_ssm_loss
from dreammotion.edit.hooks import (
    ActivationCheckpointing,
    TemporalAttentionChunking,
    select_checkpoint_units,
    select_spatial_self_attention,
)
from dreammotion.edit.optimizer import EditStep, FastPath, ssm_gradient
from dreammotion.edit.reference import NaiveStep

FRAMES, SIZE = 4, 16
BENCH = Path(__file__).resolve().parents[1] / "bench" / "dreammotion_bench.py"


@pytest.fixture(scope="module")
def setup(tiny_model):
    model, x_src, emb, mask, x, noise = edit_inputs(tiny_model, FRAMES, SIZE, seed=1)
    mask = torch.zeros_like(mask)
    mask[..., 2:6, 3:7] = 1  # a partial mask: masked and unmasked cells both occur
    return model, x_src, emb, mask, x, noise


def _update(setup, config, fast_path, t=400):
    model, x_src, emb, mask, x, noise = setup
    with EditStep(model.unet, x_src, emb, mask, model.alphas_cumprod.float(), config, fast_path) as step:
        return step(x, t, noise)


def _rel(a, b):
    return float((a - b).norm() / b.norm())


# float32 on the CPU: batch composition changes rounding (x7.5 guidance); a wrong update is off by O(1).
TOL = 1e-4
STRAIGHT = FastPath(fuse_null_branch=False, checkpoint=(), chunk_temporal_attention=False)


@pytest.mark.parametrize("score", ["dds", "sds"])
def test_fused_null_branch_gives_the_same_update(setup, score):
    config = EditConfig(score=score, lambda_s=50.0, lambda_t=50.0)
    reference = _update(setup, config, STRAIGHT)
    fused = _update(setup, config, FastPath(fuse_null_branch=True, checkpoint=()))
    assert reference.ssm_grad.norm() > 0 and reference.score_grad.norm() > 0
    assert _rel(fused.update, reference.update) < TOL
    assert _rel(fused.ssm_grad, reference.ssm_grad) < TOL
    assert torch.allclose(fused.loss_s, reference.loss_s, rtol=1e-5)


@pytest.mark.parametrize("patterns", [("down_blocks.0.*", "up_blocks.1.*"), ("down_blocks.*", "mid_block", "up_blocks.*")])
@pytest.mark.parametrize("fuse", [True, False])
def test_activation_checkpointing_gives_the_same_gradient(setup, patterns, fuse):
    # fuse=False truncates the with-grad pass inside a checkpointed block: recomputation must still work.
    config = EditConfig(lambda_s=50.0, lambda_t=50.0)
    reference = _update(setup, config, STRAIGHT)
    checkpointed = _update(setup, config, FastPath(fuse_null_branch=fuse, checkpoint=patterns))
    assert _rel(checkpointed.ssm_grad, reference.ssm_grad) < TOL
    assert _rel(checkpointed.update, reference.update) < TOL


@pytest.mark.slow  # inductor compiles the tiny UNet's conv blocks for the CPU (~1 min on 2 cores)
def test_compiled_conv_blocks_give_the_same_update_and_are_undone(setup):
    # With checkpointing of an up block too: its recomputation runs the compiled forwards again.
    config = EditConfig(lambda_s=50.0, lambda_t=50.0)
    reference = _update(setup, config, STRAIGHT)
    compiled = _update(setup, config, FastPath(checkpoint=("up_blocks.1.*",), compile_conv_blocks=True))
    assert _rel(compiled.update, reference.update) < TOL
    assert _rel(compiled.ssm_grad, reference.ssm_grad) < TOL
    assert all("forward" not in m.__dict__ for m in setup[0].unet.modules())


def test_attention_kernels_by_length_give_the_same_update_and_are_undone(setup):
    config = EditConfig(lambda_s=50.0, lambda_t=50.0)
    processors = {n: type(p) for n, p in setup[0].unet.attn_processors.items()}
    reference = _update(setup, config, STRAIGHT)
    by_length = _update(setup, config, FastPath(checkpoint=("up_blocks.1.*",), attention_kernels_by_length=True))
    assert _rel(by_length.update, reference.update) < TOL
    assert _rel(by_length.ssm_grad, reference.ssm_grad) < TOL
    assert {n: type(p) for n, p in setup[0].unet.attn_processors.items()} == processors


def test_attention_kernel_order_follows_the_sequence_length():
    from torch.nn.attention import SDPBackend

    from dreammotion.edit.hooks import SHORT_SEQUENCE_TOKENS, _KernelByLengthProcessor

    seen = []

    def inner(attn, hidden_states, *args, **kwargs):  # what the SDPA call inside a processor would get
        seen.append(torch._C._get_sdp_priority_order()[:2])
        return hidden_states

    wrapped = _KernelByLengthProcessor(inner, SHORT_SEQUENCE_TOKENS)
    before = torch._C._get_sdp_priority_order()
    for tokens in (24, SHORT_SEQUENCE_TOKENS, SHORT_SEQUENCE_TOKENS + 1, 2880):
        wrapped(None, torch.zeros(2, tokens, 8))
    efficient, flash = int(SDPBackend.EFFICIENT_ATTENTION), int(SDPBackend.FLASH_ATTENTION)
    assert seen == [[efficient, flash]] * 2 + [[flash, efficient]] * 2
    assert torch._C._get_sdp_priority_order() == before  # restored on leaving


def test_auto_fuses_only_when_keys_reach_the_last_up_block(setup):
    model, x_src, emb, mask, *_ = setup
    alphas = model.alphas_cumprod.float()
    default = EditStep(model.unet, x_src, emb, mask, alphas, EditConfig())
    early = EditStep(model.unet, x_src, emb, mask, alphas,
                     EditConfig(key_layers=("up_blocks.1.attentions.0.transformer_blocks.0.attn1",)))
    no_ssm = EditStep(model.unet, x_src, emb, mask, alphas, EditConfig(lambda_s=0, lambda_t=0))
    assert default.fuse  # the tiny UNet's last up block (up_blocks.1) holds the default key layers
    assert not no_ssm.fuse
    early_tiny = select_spatial_self_attention(model.unet, early.config.key_layers)
    assert early.fuse == early_tiny[-1].startswith("up_blocks.1.")
    assert default.checkpoint_units == []  # CPU default: no checkpointing


def test_step_restores_the_unet(setup):
    model, x_src, emb, mask, x, noise = setup
    unet = model.unet
    processors = {n: type(p) for n, p in unet.attn_processors.items()}
    unet.up_blocks[0].requires_grad_(True)
    try:
        _update(setup, EditConfig(), FastPath(checkpoint=("up_blocks.*",)))
        assert {n: type(p) for n, p in unet.attn_processors.items()} == processors
        assert all("forward" not in m.__dict__ for m in unet.modules())
        assert all(p.requires_grad for p in unet.up_blocks[0].parameters())
        assert not any(p.requires_grad for p in unet.down_blocks.parameters())
    finally:
        unet.requires_grad_(False)


def test_temporal_attention_chunking_is_exact(setup):
    model, x_src, emb, *_ = setup
    unet = model.unet
    sample, t = x_src.repeat(2, 1, 1, 1, 1), torch.tensor([300, 300])
    states = torch.stack([emb.target, emb.null])
    with torch.no_grad():
        reference = unet(sample, t, encoder_hidden_states=states).sample
        # 2 videos * 8x8 latent positions = 128 sequences; 4 heads -> slices of 16 sequences
        with TemporalAttentionChunking(unet, max_batch_heads=64) as chunking:
            assert chunking.modules and all("temp_attentions" in n or n.startswith("transformer_in") for n in chunking.modules)
            chunked = unet(sample, t, encoder_hidden_states=states).sample
    assert torch.allclose(chunked, reference, atol=1e-5)


def test_checkpoint_unit_selection(tiny_model):
    unet = tiny_model.unet
    assert select_checkpoint_units(unet, ["up_blocks.1"]) == ["up_blocks.1"]
    layers = select_checkpoint_units(unet, ["up_blocks.1.*"])
    assert "up_blocks.1.resnets.0" in layers and "up_blocks.1.attentions.0" in layers
    assert not any(n.endswith("resnets") or ".norm" in n for n in layers)  # no lists, no children of chosen units
    with pytest.raises(ValueError, match="match no module"):
        select_checkpoint_units(unet, ["nope.*"])
    with ActivationCheckpointing(unet, layers):
        assert all("forward" in dict(unet.named_modules())[n].__dict__ for n in layers)
    assert not any("forward" in m.__dict__ for m in unet.modules())


def test_bench_naive_iteration_matches_the_fast_one(setup):
    """The benchmark's straightforward iteration computes the same update as ours (CPU, float32)."""
    model, x_src, emb, mask, x, noise = setup
    config = EditConfig(lambda_s=50.0, lambda_t=50.0)
    alphas = model.alphas_cumprod.float()
    naive = NaiveStep(model.unet, x_src, emb, mask, alphas, config)
    with naive:
        reference = naive(x, 400, noise)
    ours = _update(setup, config, FastPath(checkpoint=("down_blocks.0.*", "up_blocks.1.*")))
    assert _rel(ours.update, reference.update) < TOL
    assert _rel(ours.ssm_grad, reference.ssm_grad) < TOL


def test_bench_runs_end_to_end_on_the_cpu(tmp_path):
    """A small ZeroScope-structured UNet (real block layout, fewer channels) through the whole script."""
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, str(BENCH), "--preset", "cpu-smoke-quick", "--out", str(out), "--budget-s", "60"],
                         capture_output=True, text=True, cwd=BENCH.parents[1], timeout=600,
                         env={**os.environ, "PYTHONPATH": str(BENCH.parents[1])})
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads((out / "cpu-smoke-quick_4f.json").read_text())
    for key in ("gpu", "frames", "height", "width", "naive_s_per_iter", "ours_s_per_iter", "naive_peak_gib",
                "ours_peak_gib", "max_rel_err", "command"):
        assert key in result
    assert result["max_rel_err"] < 1e-4
    assert len(result["rel_err_draws"]) == 2 and result["second_draw_error"] is None
    default_order = next(v for v in result["variants"] if v["variant"] == "ours_default_attention_order")
    assert default_order["rel_err_update"] < 1e-4 and default_order["s_per_iter"] > 0


def test_edit_loop_with_checkpointing_equals_plain_loop(tiny_model):
    torch.manual_seed(2)
    source = tiny_model.encode_frames(torch.rand(FRAMES, 3, SIZE, SIZE) * 2 - 1)
    cfg = EditConfig(iterations=2, seed=4, lambda_s=1.0, lambda_t=1.0, lr=0.1)
    plain = dreammotion_edit(tiny_model, source, "a red circle", "a blue circle", None, cfg, progress=False,
                             fast_path=STRAIGHT)
    fast = dreammotion_edit(tiny_model, source, "a red circle", "a blue circle", None, cfg, progress=False,
                            fast_path=FastPath(checkpoint=("up_blocks.*",)))
    assert torch.allclose(fast.latents, plain.latents, atol=1e-5)
    assert [r["t"] for r in fast.log] == [r["t"] for r in plain.log]


def test_ssm_gradient_survives_float16_where_plain_autograd_underflows():
    """At ZeroScope size the SSM gradient at float16 keys is ~1e-9 and plain autograd returns exactly 0
    (measured on the GPU); ssm_gradient scales it by a power of two first."""
    torch.manual_seed(0)
    frames, hw, c = 2, 64, 8
    x = torch.randn(frames, hw, c, requires_grad=True)
    weight = torch.randn(c, c)
    source = {"k": (torch.randn(frames, hw, c) @ weight).half()}
    config = EditConfig(lambda_s=1e-10, lambda_t=1e-10)  # pushes the key gradients below float16's range

    def keys_of(v):
        return {"k": (v @ weight).half()}  # the half-precision "UNet"

    keys32 = {"k": (x @ weight)}
    reference, *_ = ssm_gradient(keys32, {"k": source["k"].float()}, x, config, frames)
    assert reference.norm() > 0
    plain_loss = config.lambda_s * spatial_ssm_loss(keys_of(x)["k"], source["k"]) + config.lambda_t * temporal_ssm_loss(
        keys_of(x)["k"], source["k"], frames)
    (plain,) = torch.autograd.grad(plain_loss, x)
    assert plain.abs().max() == 0  # the failure this guards against
    scaled, loss_s, loss_t = ssm_gradient(keys_of(x), source, x, config, frames)
    assert loss_s > 0 and loss_t > 0
    assert _rel(scaled, reference) < 1e-2  # float16 keys: half-precision rounding, not zero


@pytest.mark.parametrize("preset", ["tiny", "base"])
def test_cuda_default_checkpointing_matches_the_models_own_blocks(preset):
    """The CUDA fast path derives what to checkpoint from the UNet (a 3-level prior has no
    up_blocks.3); the selection itself runs on CPU modules, so it is tested here."""
    from dreammotion.edit.optimizer import FastPath, default_checkpoint_patterns
    from dreammotion.prior import train

    unet, *_ = train.build_model(32, preset=preset)
    patterns = FastPath().resolve_checkpoint(unet, torch.device("cuda"))
    assert patterns == default_checkpoint_patterns(unet) == ("down_blocks.0.*", f"up_blocks.{len(unet.up_blocks) - 1}.*")
    units = select_checkpoint_units(unet, patterns)
    assert any(u.startswith("down_blocks.0.") for u in units) and any(u.startswith("up_blocks.2.") for u in units)
    assert FastPath().resolve_checkpoint(unet, torch.device("cpu")) == ()
    assert FastPath(checkpoint=("up_blocks.1.*",)).resolve_checkpoint(unet, torch.device("cuda")) == ("up_blocks.1.*",)


def test_attention_kernels_by_length_are_the_cuda_default_only():
    """Measured faster on CUDA (bench/NOTES.md, run 5), so on by default there; the CPU has one SDPA kernel,
    so nothing is wrapped there; an explicit setting wins on either device."""
    from dreammotion.edit.optimizer import FastPath

    assert FastPath().resolve_attention_kernels(torch.device("cuda")) is True
    assert FastPath().resolve_attention_kernels(torch.device("cpu")) is False
    assert FastPath(attention_kernels_by_length=False).resolve_attention_kernels(torch.device("cuda")) is False
    assert FastPath(attention_kernels_by_length=True).resolve_attention_kernels(torch.device("cpu")) is True


def test_edit_step_wraps_the_attention_processors_only_where_the_kernels_by_length_resolve(setup):
    from dreammotion.edit.hooks import _KernelByLengthProcessor

    model, x_src, emb, mask, _, _ = setup

    def wrapped(fast_path):
        with EditStep(model.unet, x_src, emb, mask, model.alphas_cumprod.float(), EditConfig(), fast_path) as step:
            return any(isinstance(p, _KernelByLengthProcessor) for p in step.unet.attn_processors.values())

    assert not wrapped(FastPath(checkpoint=()))  # the CPU default
    assert wrapped(FastPath(checkpoint=(), attention_kernels_by_length=True))


def test_cuda_default_checkpointing_on_a_zeroscope_shaped_unet():
    from diffusers import UNet3DConditionModel

    from dreammotion.edit.optimizer import default_checkpoint_patterns

    # ZeroScope's block layout (4 levels) at toy width: the defaults name its outer blocks.
    unet = UNet3DConditionModel(block_out_channels=(8, 8, 8, 8), norm_num_groups=4, layers_per_block=1,
                                cross_attention_dim=8, attention_head_dim=4, sample_size=8)
    assert default_checkpoint_patterns(unet) == ("down_blocks.0.*", "up_blocks.3.*")
    assert select_checkpoint_units(unet, default_checkpoint_patterns(unet))


class _AsVPrediction(torch.nn.Module):
    """The tiny epsilon UNet re-expressed as a v-prediction model: v = (eps - sqrt(1-a) x_t) / sqrt(a)."""

    def __init__(self, unet, alphas):
        super().__init__()
        self.unet, self.alphas = unet, alphas

    def forward(self, sample, timestep, encoder_hidden_states):
        from types import SimpleNamespace

        eps = self.unet(sample, timestep, encoder_hidden_states=encoder_hidden_states).sample
        a = self.alphas[timestep].view(-1, 1, 1, 1, 1).to(eps.dtype)
        return SimpleNamespace(sample=(eps - (1 - a).sqrt() * sample) / a.sqrt())


@pytest.mark.parametrize("score", ["dds", "sds"])
def test_v_prediction_models_give_the_same_vdds_update(setup, score):
    """A v-prediction model (the embedded prior) must give the update its noise predictions imply:
    EditStep converts v to eps with the x_t of each branch (target and source differ)."""
    model, x_src, emb, mask, x, noise = setup
    alphas = model.alphas_cumprod.float()
    config = EditConfig(lambda_s=0.0, lambda_t=0.0, score=score)
    plain = FastPath(fuse_null_branch=False, checkpoint=(), chunk_temporal_attention=False)
    with EditStep(model.unet, x_src, emb, mask, alphas, config, plain) as step:
        reference = step(x, 300, noise)
    v_model = _AsVPrediction(model.unet, alphas)
    with EditStep(v_model, x_src, emb, mask, alphas, config, plain, prediction_type="v_prediction") as step:
        converted = step(x, 300, noise)
    assert _rel(converted.update, reference.update) < TOL
    # Reading v as if it were eps gives another update: the conversion is not a no-op.
    with EditStep(v_model, x_src, emb, mask, alphas, config, plain) as step:
        assert _rel(step(x, 300, noise).update, reference.update) > 0.1
    with pytest.raises(ValueError, match="can convert"):
        EditStep(model.unet, x_src, emb, mask, alphas, config, plain, prediction_type="sample")


def test_fused_null_branch_converts_v_predictions_too(setup):
    """The fused path takes eps(x_t, null) from the with-grad pass: it must convert it like the rest."""
    model, x_src, emb, mask, x, noise = setup
    alphas = model.alphas_cumprod.float()
    config = EditConfig(lambda_s=0.1, lambda_t=0.1)
    updates = {}
    for fuse in (True, False):
        fast_path = FastPath(fuse_null_branch=fuse, checkpoint=(), chunk_temporal_attention=False)
        with EditStep(model.unet, x_src, emb, mask, alphas, config, fast_path, prediction_type="v_prediction") as step:
            updates[fuse] = step(x, 400, noise).update
    assert _rel(updates[True], updates[False]) < TOL
