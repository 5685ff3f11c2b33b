"""Attention processors for the UNet3D's temporal attention (each pixel attends over its frames).

Temporal attention runs over very many very short sequences: batch x H x W sequences of F frames
(8 for the embedded prior). Kernels built for long sequences waste most of their work on them:
flash attention pads each 8-row sequence to a full tile (and its grid overflows at large batches,
"CUDA error: invalid argument"), and the plain ``AttnProcessor``'s baddbmm/bmm become batched GEMMs
of 8x8 matrices that tensor cores run at a fraction of their rate (bench/prior/NOTES.md, run 9).
``FrameAttnProcessor`` writes the same arithmetic as broadcast products and sums, which
``torch.compile`` fuses into a few elementwise/reduction kernels, backward included.
"""

from __future__ import annotations


TEMPORAL_ATTENTION_KINDS = ("sdpa", "math", "broadcast")


def is_temporal_attention(name: str) -> bool:
    """Whether the module (or processor) `name` of a UNet3D attends over frames."""
    parts = name.split(".")
    return "temp_attentions" in parts or parts[0] == "transformer_in"


class FrameAttnProcessor:
    """Self- or cross-attention over short sequences as broadcast products and sums.

    Equal to diffusers' ``AttnProcessor`` (same projections, scale and softmax) for the temporal
    transformers' attention: 3-D input, no mask, no group or spatial norm. Anything else is refused
    rather than silently computed another way. Eager, it materialises (N, F, F, heads, head size)
    products: meant for short sequences under ``torch.compile``."""

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None,
                 *args, **kwargs):
        if attention_mask is not None or attn.group_norm is not None or attn.spatial_norm is not None:
            raise ValueError("FrameAttnProcessor handles unmasked attention without group/spatial norm only")
        if hidden_states.ndim != 3:
            raise ValueError(f"FrameAttnProcessor needs (batch, sequence, channels) input, got {tuple(hidden_states.shape)}")
        residual = hidden_states
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        if encoder_hidden_states is not None and attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        query, key, value = attn.to_q(hidden_states), attn.to_k(context), attn.to_v(context)
        batch, frames, inner = query.shape
        heads = attn.heads
        size = inner // heads
        query = query.view(batch, frames, 1, heads, size)
        key = key.view(batch, 1, key.shape[1], heads, size)
        value = value.view(batch, 1, value.shape[1], heads, size)
        # scores[n, i, j, h] = <q_i, k_j> * scale; softmax over j (in fp32, as AttnProcessor under autocast)
        scores = (query * key).sum(-1) * attn.scale
        weights = scores.float().softmax(dim=2).to(value.dtype)
        out = (weights.unsqueeze(-1) * value).sum(2).reshape(batch, frames, inner)
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


def set_temporal_attention(unet, kind: str) -> int:
    """Give every temporal attention of `unet` the processor `kind`: "sdpa" (diffusers' default,
    ``AttnProcessor2_0``), "math" (``AttnProcessor``: baddbmm + softmax + bmm) or "broadcast"
    (``FrameAttnProcessor``). Returns how many processors were set."""
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    makers = {"sdpa": AttnProcessor2_0, "math": AttnProcessor, "broadcast": FrameAttnProcessor}
    if kind not in makers:
        raise ValueError(f"unknown temporal attention {kind!r}: {', '.join(TEMPORAL_ATTENTION_KINDS)}")
    processors = dict(unet.attn_processors)
    temporal = [name for name in processors if is_temporal_attention(name)]
    for name in temporal:
        processors[name] = makers[kind]()
    unet.set_attn_processor(processors)
    return len(temporal)


__all__ = ["FrameAttnProcessor", "TEMPORAL_ATTENTION_KINDS", "is_temporal_attention", "set_temporal_attention"]
