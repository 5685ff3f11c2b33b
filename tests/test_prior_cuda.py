"""The prior's training step as one CUDA graph (``--cuda-graph``). These need a CUDA GPU: CI has
none, so they run on the lent H200 (bench/prior/NOTES.md gives the command) and skip elsewhere;
on a CPU only the refusal is tested."""

from __future__ import annotations

import pytest
import torch

from dreammotion.models.attention import is_spatial_self_attention, is_temporal_attention
from dreammotion.prior import train
from conftest import prior_trainer_args

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def trainer_args(tmp_path, *extra: str):
    return prior_trainer_args(tmp_path, *extra, batch=4)


def test_cuda_graph_is_refused_where_it_cannot_run(tmp_path):
    with pytest.raises(ValueError, match="--cuda-graph needs a CUDA device"):
        train.PriorTrainer(trainer_args(tmp_path, "--cuda-graph", "--device", "cpu"), torch.device("cpu"))


@pytest.mark.cuda
@needs_cuda
def test_graph_replay_trains_reads_the_learning_rate_and_updates_the_ema(tmp_path):
    trainer = train.PriorTrainer(trainer_args(tmp_path, "--cuda-graph", "--ema", "0.9"), torch.device("cuda"))
    latents, ids = trainer.batch()
    params = trainer.params
    start = [p.detach().clone() for p in params]
    trainer.step(latents, ids, lr=0.0)  # captures: warm-up at lr 0 must leave the weights alone
    assert trainer.graph is not None
    assert all(torch.equal(p, s) for p, s in zip(params, start))
    losses = [trainer.step(latents, ids, lr=3e-3)[1] for _ in range(40)]
    moved = max((p - s).abs().max().item() for p, s in zip(params, start))
    assert moved > 0
    # One fixed batch, 40 replays: the prediction error must fall, so replays really train.
    first, last = torch.stack(losses[:5]).mean().item(), torch.stack(losses[-5:]).mean().item()
    assert last < 0.9 * first, (first, last)
    # The EMA follows the weights (it is part of the graph) and is what gets saved.
    assert any(not torch.equal(s, p) for s, p in zip(trainer.ema.shadow, start))
    frozen = [p.detach().clone() for p in params]
    trainer.step(latents, ids, lr=0.0)
    assert all(torch.equal(p, f) for p, f in zip(params, frozen))  # the lr tensor is read on replay
    with trainer.weights_to_save():
        assert all(torch.equal(p, s) for p, s in zip(params, trainer.ema.shadow))


@pytest.mark.cuda
@needs_cuda
def test_graph_step_matches_the_eager_step_on_the_same_noise(tmp_path):
    """Same weights, batch and random stream: the replayed step's loss equals the eager one's
    (bf16 autocast in both, so equal up to its rounding)."""
    eager = train.PriorTrainer(trainer_args(tmp_path, "--ema", "0"), torch.device("cuda"))
    graphed = train.PriorTrainer(trainer_args(tmp_path, "--ema", "0", "--cuda-graph"), torch.device("cuda"))
    graphed.unet.load_state_dict(eager.unet.state_dict())
    graphed.text_encoder.load_state_dict(eager.text_encoder.state_dict())
    latents, ids = eager.batch()
    graphed.step(latents, ids, lr=0.0)  # capture
    torch.manual_seed(7)
    with eager.autocast:
        expected = train.diffusion_loss(eager.unet, eager.text_encoder, eager.alphas_cumprod, latents, ids,
                                        0.0, eager.args.prediction_type)[1]
    torch.manual_seed(7)
    got = graphed.step(latents, ids, lr=0.0)[1]
    torch.testing.assert_close(got, expected, rtol=2e-2, atol=1e-4)


@pytest.mark.cuda
@needs_cuda
# graphed; then graphed and compiled with the spatial levels fused too (as throughput.py's variants)
@pytest.mark.parametrize("compile_mode, spatial_levels", [("none", ""), ("full", "1,2")])
def test_fused_temporal_attention_step_matches_the_math_step(tmp_path, compile_mode, spatial_levels):
    """The Triton temporal attention (and with --fused-spatial-levels the spatial self-attention)
    inside the captured (and compiled) training step gives the loss of the math processor's eager
    step on the same weights, batch and noise, and the same gradients of the fused attentions'
    weights (the loss alone barely depends on the attention: replacing it by uniform weights moves a
    tiny prior's loss by 0.05%)."""
    math = train.PriorTrainer(trainer_args(tmp_path, "--ema", "0"), torch.device("cuda"))
    fused = train.PriorTrainer(trainer_args(tmp_path, "--ema", "0", "--cuda-graph", "--temporal-attention", "fused",
                                            "--compile", compile_mode, "--fused-spatial-levels", spatial_levels),
                               torch.device("cuda"))
    fused.unet.load_state_dict(math.unet.state_dict())
    fused.text_encoder.load_state_dict(math.text_encoder.state_dict())
    latents, ids = math.batch()
    fused.step(latents, ids, lr=0.0)  # compile, capture
    losses = []
    for trainer in (math, fused):
        torch.manual_seed(7)
        losses.append(trainer.step(latents, ids, lr=0.0)[1])  # .grad keeps this step's (clipped) gradients
    torch.testing.assert_close(losses[1], losses[0], rtol=2e-2, atol=1e-4)
    fused_names = lambda name: is_temporal_attention(name) or (spatial_levels and is_spatial_self_attention(name))  # noqa: E731
    grads = [{name: p.grad.float() for name, p in t.unet.named_parameters()
              if fused_names(name) and ".to_" in name} for t in (math, fused)]
    assert grads[0].keys() == grads[1].keys() and any(".to_q." in name for name in grads[0])
    assert not spatial_levels or any(is_spatial_self_attention(name) for name in grads[0])
    for name, expected in grads[0].items():
        error = (grads[1][name] - expected).norm() / expected.norm()
        assert error < 0.05, (name, error.item())


@pytest.mark.cuda
@needs_cuda
def test_compiled_renderer_draws_the_eager_renderers_batches_on_the_gpu():
    """On a CPU the compiled renderer's batches are the eager one's exactly (tests/test_prior.py). On
    CUDA, Triton may fuse a product and a sum into one rounding step, which can move a point sample
    lying exactly on a shape's edge (one of a pixel's 16): allow such pixels, but only as rare ones."""
    import numpy as np

    from dreammotion.synthetic.render import render_batch_torch, sample_spec, specs_to_tensors

    rng = np.random.default_rng(0)
    params = specs_to_tensors([sample_spec(rng, train.FRAMES) for _ in range(256)], device="cuda")
    compiled = torch.compile(render_batch_torch, fullgraph=True, dynamic=False)
    (frames, masks), (frames_c, masks_c) = (render(params, size=32, frames=train.FRAMES)
                                            for render in (render_batch_torch, compiled))
    assert (frames_c != frames).float().mean() < 1e-4 and (masks_c != masks).float().mean() < 1e-4
