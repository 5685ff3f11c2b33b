"""The fused frame attention's Triton kernels, run by Triton's interpreter on the CPU.

Not collected by a plain ``pytest`` run (no ``test_`` prefix): ``tests/test_frame_attention.py`` runs
this file in a subprocess with ``TRITON_INTERPRET=1``, which must be set before triton compiles the
kernels (at import). On a GPU machine the same checks run compiled with
``python -m pytest -q tests/frame_attention_interpreted.py`` (without the variable)."""

from __future__ import annotations

import os

import pytest
import torch

from dreammotion.models.attention import (FusedFrameAttnProcessor, is_spatial_self_attention, is_temporal_attention,
                                          set_spatial_self_attention, set_temporal_attention)
from dreammotion.models.frame_attention import (block_rows, frame_attention, frame_attention_backward,
                                                frame_attention_forward)
from dreammotion.prior import train

DEVICE = "cpu" if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0") else "cuda"


def reference(q, k, v, heads, scale):
    """softmax(q k^T scale) v with heads split out, by plain matmuls."""
    n, frames, channels = q.shape
    split = lambda t: t.view(n, frames, heads, channels // heads).transpose(1, 2)
    weights = (split(q) @ split(k).transpose(-1, -2) * scale).softmax(-1)
    return (weights @ split(v)).transpose(1, 2).reshape(n, frames, channels)


def inputs(n, frames, heads, size, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    tensors = [torch.randn(n, frames, heads * size, generator=generator) for _ in range(4)]
    q, k, v, grad_out = (t.to(DEVICE, dtype) for t in tensors)
    return q, k, v, grad_out


# 8 frames as the prior has; a frame count that is not a power of two (padded inside the kernel);
# one frame; row counts that do not fill the last program's block (block_rows(8, 32) = 32); the
# spatial self-attention's 64 and 16 positions at the prior's 8x8 and 4x4 levels
@pytest.mark.parametrize("n,frames,heads,size", [(5, 8, 2, 32), (3, 5, 3, 16), (7, 1, 1, 8), (33, 8, 8, 32),
                                                 (6, 64, 3, 32), (9, 16, 4, 32)])
def test_forward_and_backward_equal_the_matmul_reference(n, frames, heads, size):
    q, k, v, grad_out = inputs(n, frames, heads, size)
    scale = size ** -0.5
    results = []
    for attend in (frame_attention, reference):
        leaves = [t.clone().requires_grad_(True) for t in (q, k, v)]
        out = attend(*leaves, heads, scale)
        out.backward(grad_out)
        results.append((out.detach(), *(t.grad for t in leaves)))
    for got, expected in zip(*results):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_the_kernel_matches_only_the_right_scale_and_head_split():
    """The reference comparison is sharp enough to tell a wrong scale or a wrong head split apart,
    so passing it pins both down."""
    q, k, v, _ = inputs(4, 8, 2, 16)
    out = frame_attention(q, k, v, 2, 0.25)
    torch.testing.assert_close(out, reference(q, k, v, 2, 0.25), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(out, reference(q, k, v, 2, 0.3), rtol=1e-3, atol=1e-3)
    assert not torch.allclose(out, reference(q, k, v, 1, 0.25), rtol=1e-3, atol=1e-3)


def test_bf16_inputs_give_bf16_results_close_to_fp32():
    """Forward and backward on bf16 tensors (as under autocast): bf16 results within bf16 rounding
    of the fp32 reference."""
    q, k, v, grad_out = inputs(9, 8, 2, 32)
    scale = 32 ** -0.5
    halves = [t.bfloat16().requires_grad_(True) for t in (q, k, v)]
    out = frame_attention(*halves, 2, scale)
    out.backward(grad_out.bfloat16())
    exact = [t.bfloat16().float().requires_grad_(True) for t in (q, k, v)]
    expected = reference(*exact, 2, scale)
    expected.backward(grad_out.bfloat16().float())
    assert out.dtype == torch.bfloat16 and all(t.grad.dtype == torch.bfloat16 for t in halves)
    torch.testing.assert_close(out.float(), expected, rtol=2e-2, atol=2e-2)
    for half, full in zip(halves, exact):
        torch.testing.assert_close(half.grad.float(), full.grad, rtol=2e-2, atol=3e-2)


def test_custom_ops_pass_torch_library_checks():
    """Schema, fake (meta) implementation, autograd registration: what torch.compile relies on."""
    q, k, v, grad_out = inputs(6, 8, 2, 16)
    q, k, v = (t.requires_grad_(True) for t in (q, k, v))
    torch.library.opcheck(frame_attention_forward, (q, k, v, 2, 0.25))
    out, lse = frame_attention_forward(q.detach(), k.detach(), v.detach(), 2, 0.25)
    torch.library.opcheck(frame_attention_backward, (grad_out, q.detach(), k.detach(), v.detach(), out, lse, 2, 0.25))


def test_compiled_function_equals_eager():
    """Traced by torch.compile (aot_eager: the fake implementations and the autograd formula, no
    code generation), forward and backward agree with the eager op."""
    q, k, v, grad_out = inputs(6, 8, 2, 16)

    def attend(q, k, v):
        return frame_attention(q * 2.0, k, v, 2, 0.25).sin()

    results = []
    for fn in (attend, torch.compile(attend, backend="aot_eager", fullgraph=True)):
        leaves = [t.clone().requires_grad_(True) for t in (q, k, v)]
        out = fn(*leaves)
        out.backward(grad_out)
        results.append((out.detach(), *(t.grad for t in leaves)))
    for got, expected in zip(*results):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


@pytest.fixture
def full_fp32():
    """TF32 off for convolutions and matmuls (cuDNN's convolutions use it by default on CUDA)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.mark.parametrize("spatial_levels", [(), (1, 2)])
def test_fused_processor_in_a_unet_computes_what_sdpa_computes(full_fp32, spatial_levels):
    """The tiny prior UNet with every temporal attention fused, and with the spatial self-attention
    of its 8x8 and 4x4 levels too (64 and 16 positions): output and input gradient equal those of
    diffusers' default processors."""
    outputs = []
    for kind in ("sdpa", "fused"):
        unet, *_ = train.build_model(32, preset="tiny", seed=0)
        if kind == "fused":
            assert set_temporal_attention(unet, "fused") > 0
            if spatial_levels:
                assert set_spatial_self_attention(unet, "fused", spatial_levels) > 0
            assert all(isinstance(p, FusedFrameAttnProcessor) == (is_temporal_attention(name) or (
                       bool(spatial_levels) and is_spatial_self_attention(name)))
                       for name, p in unet.attn_processors.items())
        unet = unet.to(DEVICE).eval()
        generator = torch.Generator().manual_seed(1)
        sample = torch.randn(2, unet.config.in_channels, train.FRAMES, 16, 16, generator=generator).to(DEVICE)
        context = torch.randn(2, 4, unet.config.cross_attention_dim, generator=generator).to(DEVICE)
        sample.requires_grad_(True)
        out = unet(sample, torch.tensor([10, 500], device=DEVICE), encoder_hidden_states=context).sample
        out.square().mean().backward()
        outputs.append((out.detach(), sample.grad))
    torch.testing.assert_close(outputs[1][0], outputs[0][0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(outputs[1][1], outputs[0][1], rtol=1e-4, atol=1e-6)


def test_block_rows_fill_a_tile():
    assert block_rows(8, 32) == 32  # TILE_VALUES = 8192
    assert block_rows(5, 16, tile=4096) == 32  # 5 frames pad to 8
    assert block_rows(64, 64, tile=4096) == 1
