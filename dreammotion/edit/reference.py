"""The straightforward DreamMotion iteration: the reference that ``EditStep``'s fast path is checked
against (tests/test_bench_equivalence.py) and timed against (bench/dreammotion_bench.py).

It computes the same update as ``EditStep`` the plain way, with none of the fast path's savings.
"""

from __future__ import annotations

import contextlib

import torch

from dreammotion.edit.config import EditConfig
from dreammotion.edit.hooks import KeyCapture, TemporalAttentionChunking, select_spatial_self_attention
from dreammotion.edit.optimizer import IterationOutput, PromptEmbeddings, ssm_gradient


class NaiveStep:
    """The straightforward iteration: a 4-way CFG no-grad pass, a separate no-grad pass of x^_t | null
    for the source keys, a full (untruncated) with-grad pass, and S-SSM on explicit HW x HW matrices.

    Same signature and output as ``EditStep``; temporal attention is sliced as in ours, because the
    unsliced kernels fail at ZeroScope size (bench/NOTES.md).
    """

    def __init__(self, unet, x_src, embeddings: PromptEmbeddings, mask, alphas, config: EditConfig):
        self.unet, self.x_src, self.emb, self.mask, self.alphas, self.config = unet, x_src, embeddings, mask, alphas, config
        self.frames = x_src.shape[2]
        self.dtype = next(unet.parameters()).dtype
        self.layers = select_spatial_self_attention(unet, config.key_layers)
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> "NaiveStep":
        self.unet.requires_grad_(False)
        self._stack.enter_context(TemporalAttentionChunking(self.unet))
        self.capture = self._stack.enter_context(KeyCapture(self.unet, self.layers))
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def __call__(self, x, t: int, noise) -> IterationOutput:
        cfg, unet, emb = self.config, self.unet, self.emb
        a = self.alphas[t]
        sqrt_a, sqrt_1a = a.sqrt(), (1 - a).sqrt()
        ts = lambda n: torch.full((n,), t, device=x.device)  # noqa: E731
        with torch.no_grad():
            x_t = sqrt_a * x.detach() + sqrt_1a * noise
            x_src_t = sqrt_a * self.x_src + sqrt_1a * noise
            batch = torch.cat([x_t, x_t, x_src_t, x_src_t]).to(self.dtype)
            states = torch.stack([emb.target, emb.null, emb.source, emb.null])
            eps = unet(batch, ts(4), encoder_hidden_states=states).sample.float()
            eps_target = eps[1] + cfg.guidance_scale * (eps[0] - eps[1])
            eps_source = eps[3] + cfg.guidance_scale * (eps[2] - eps[3])
            score_grad = (eps_target - eps_source)[None] * self.mask
            self.capture.run(unet, x_src_t.to(self.dtype), ts(1), encoder_hidden_states=emb.null[None], truncate=False)
            source_keys = dict(self.capture.keys)
        x_t = sqrt_a * x + sqrt_1a * noise
        self.capture.run(unet, x_t.to(self.dtype), ts(1), encoder_hidden_states=emb.null[None], truncate=False)
        # explicit HW x HW matrices; the float16 underflow fix is a correctness fix, so the naive step has it too
        ssm_grad, loss_s, loss_t = ssm_gradient(self.capture.keys, source_keys, x, cfg, self.frames, gram=False)
        self.capture.keys = {}
        return IterationOutput(score_grad + ssm_grad, score_grad, ssm_grad, loss_s, loss_t)
