"""Temporal attention processors (dreammotion.models.attention) and the training step's layouts:
each kind must compute what diffusers' plain processor computes."""

from __future__ import annotations


import pytest
import torch

from dreammotion.models.attention import (FrameAttnProcessor, is_spatial_self_attention, is_temporal_attention,
                                          set_temporal_attention, unet_level)
from dreammotion.prior import train
from conftest import prior_trainer_args


def tiny_unet():
    unet, *_ = train.build_model(32, preset="tiny", seed=0)
    return unet.eval()


def unet_inputs(unet, batch: int = 2):
    generator = torch.Generator().manual_seed(1)
    sample = torch.randn(batch, unet.config.in_channels, train.FRAMES, 16, 16, generator=generator)
    context = torch.randn(batch, 4, unet.config.cross_attention_dim, generator=generator)
    return sample, torch.tensor([10, 500]), context


def test_temporal_attention_names():
    assert is_temporal_attention("transformer_in.transformer_blocks.0.attn1")
    assert is_temporal_attention("down_blocks.1.temp_attentions.0.transformer_blocks.0.attn2.processor")
    assert not is_temporal_attention("down_blocks.1.attentions.0.transformer_blocks.0.attn1")


def test_spatial_self_attention_names_and_levels():
    assert is_spatial_self_attention("down_blocks.1.attentions.0.transformer_blocks.0.attn1.processor")
    assert not is_spatial_self_attention("down_blocks.1.attentions.0.transformer_blocks.0.attn2.processor")
    assert not is_spatial_self_attention("down_blocks.1.temp_attentions.0.transformer_blocks.0.attn1.processor")
    assert not is_spatial_self_attention("transformer_in.transformer_blocks.0.attn1.processor")
    levels = {name: unet_level(name, 3) for name in ("down_blocks.0.resnets.0", "down_blocks.2.attentions.1",
                                                     "mid_block.attentions.0", "up_blocks.0.attentions.2",
                                                     "up_blocks.2.resnets.0", "transformer_in", "conv_in")}
    assert levels == {"down_blocks.0.resnets.0": 0, "down_blocks.2.attentions.1": 2, "mid_block.attentions.0": 2,
                      "up_blocks.0.attentions.2": 2, "up_blocks.2.resnets.0": 0, "transformer_in": None,
                      "conv_in": None}


@pytest.mark.parametrize("kind", ["math", "broadcast"])
def test_each_temporal_attention_kind_computes_what_sdpa_computes(kind):
    """The same UNet, same weights: output and input gradient agree with diffusers' default
    (SDPA) processors to float32 rounding, so a prior trained with one kind samples with another."""
    reference, changed = tiny_unet(), tiny_unet()
    n = set_temporal_attention(changed, kind)
    # transformer_in + each temporal transformer: two attentions per block (attn1, attn2)
    assert n == sum(is_temporal_attention(name) for name in changed.attn_processors) > 0
    expected_kind = FrameAttnProcessor if kind == "broadcast" else type(changed.attn_processors[
        "transformer_in.transformer_blocks.0.attn1.processor"])
    assert isinstance(changed.attn_processors["transformer_in.transformer_blocks.0.attn1.processor"], expected_kind)
    spatial = "down_blocks.1.attentions.0.transformer_blocks.0.attn1.processor"
    assert type(changed.attn_processors[spatial]) is type(reference.attn_processors[spatial])  # spatial untouched

    outputs, grads = [], []
    for unet in (reference, changed):
        sample, timesteps, context = unet_inputs(unet)
        sample.requires_grad_(True)
        out = unet(sample, timesteps, encoder_hidden_states=context).sample
        out.square().mean().backward()
        outputs.append(out.detach())
        grads.append(sample.grad)
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-6)
    # and the comparison can fail: perturbing one temporal projection shows up in the output
    with torch.no_grad():
        changed.transformer_in.transformer_blocks[0].attn1.to_q.weight.mul_(3.0)
    sample, timesteps, context = unet_inputs(changed)
    assert not torch.allclose(changed(sample, timesteps, encoder_hidden_states=context).sample, outputs[0],
                              rtol=1e-4, atol=1e-5)


def test_frame_attention_refuses_what_it_does_not_compute():
    from diffusers.models.attention_processor import Attention

    attn = Attention(query_dim=16, heads=2, dim_head=8, processor=FrameAttnProcessor())
    x = torch.randn(3, 8, 16)
    with pytest.raises(ValueError, match="unmasked"):
        attn(x, attention_mask=torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match=r"\(batch, sequence, channels\)"):
        attn.processor(attn, torch.randn(3, 16, 2, 4))
    with pytest.raises(ValueError, match="unknown attention kind 'flash'"):
        set_temporal_attention(tiny_unet(), "flash")


def trainer_args(tmp_path, *extra: str):
    return prior_trainer_args(tmp_path, "--device", "cpu", "--ema", "0", *extra)


def test_channels_last_step_equals_the_default_layout(tmp_path):
    """--channels-last changes memory layout only: Conv2d weights channels-last, the temporal
    Conv3d weights channels-last-3d, and one step gives the same loss and update."""
    plain = train.PriorTrainer(trainer_args(tmp_path), torch.device("cpu"))
    last = train.PriorTrainer(trainer_args(tmp_path, "--channels-last", "--temporal-attention", "broadcast"),
                         torch.device("cpu"))
    convs = [m for m in last.unet.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d))]
    assert any(isinstance(m, torch.nn.Conv3d) for m in convs)
    for module in convs:
        layout = torch.channels_last if module.weight.ndim == 4 else torch.channels_last_3d
        assert module.weight.is_contiguous(memory_format=layout), module
    # Dropout (0.1 in the temporal convs) draws its mask in memory order, so it differs between
    # layouts: switch it off to compare arithmetic
    for module in (*plain.unet.modules(), *last.unet.modules()):
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    latents, ids = plain.batch()
    torch.manual_seed(3)
    plain_loss, _ = plain.step(latents, ids, lr=1e-3)
    torch.manual_seed(3)
    last_loss, _ = last.step(latents, ids, lr=1e-3)
    torch.testing.assert_close(last_loss, plain_loss, rtol=1e-4, atol=1e-6)
    # The gradients (kept after the step), not the weights: Adam's first update is lr x sign(gradient),
    # so a gradient of rounding size could flip a weight's step.
    for a, b in zip(last.unet.parameters(), plain.unet.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-3, atol=1e-6)
