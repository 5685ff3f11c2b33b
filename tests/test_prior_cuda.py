"""The prior's training step as one CUDA graph (``--cuda-graph``). These need a CUDA GPU: CI has
none, so they run on the lent H200 (bench/prior/NOTES.md gives the command) and skip elsewhere;
on a CPU only the refusal is tested."""

from __future__ import annotations

import pytest
import torch

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
