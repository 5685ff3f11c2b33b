"""Attention processors for the UNet3D's short attentions: temporal (each pixel attends over its
frames) and, in training, the spatial self-attention of its low-resolution levels.

Temporal attention runs over very many very short sequences: batch x H x W sequences of F frames
(8 for the embedded prior). Kernels built for long sequences waste most of their work on them:
flash attention pads each 8-row sequence to a full tile (and its grid overflows at large batches,
"CUDA error: invalid argument"), and the plain ``AttnProcessor``'s baddbmm/bmm become batched GEMMs
of 8x8 matrices that tensor cores run at a fraction of their rate (bench/prior/NOTES.md, run 9).
``FrameAttnProcessor`` writes the same arithmetic as broadcast products and sums, which
``torch.compile`` fuses into a few elementwise/reduction kernels, backward included.
``FusedFrameAttnProcessor`` calls one Triton kernel each way instead
(``dreammotion.models.frame_attention``; CUDA only).

The same kernel fits any short self-attention: the spatial self-attention of the UNet's lower
levels runs over B x F sequences of only H x W positions (64 and 16 at the prior's 8x8 and 4x4
levels), where flash attention again pads each sequence to a much longer tile
(``set_spatial_self_attention``).
"""

from __future__ import annotations


TEMPORAL_ATTENTION_KINDS = ("sdpa", "math", "broadcast", "fused")


def is_temporal_attention(name: str) -> bool:
    """Whether the module (or processor) `name` of a UNet3D attends over frames."""
    parts = name.split(".")
    return "temp_attentions" in parts or parts[0] == "transformer_in"


def is_spatial_self_attention(name: str) -> bool:
    """Whether the module (or processor) `name` of a UNet3D is a spatial self-attention (the attn1 of
    a Transformer2DModel: each frame's positions attend to each other)."""
    parts = name.split(".")
    return "attentions" in parts and "attn1" in parts


def unet_level(name: str, n_levels: int) -> int | None:
    """The resolution level (0: full resolution) of a module or processor `name` of a UNet with
    `n_levels` down blocks: down_blocks.i is level i, up_blocks.j level n_levels - 1 - j, the mid
    block the lowest level; None for modules outside the blocks (conv_in, transformer_in, ...)."""
    parts = name.split(".")
    if parts[0] == "down_blocks":
        return int(parts[1])
    if parts[0] == "up_blocks":
        return n_levels - 1 - int(parts[1])
    if parts[0] == "mid_block":
        return n_levels - 1
    return None


def _refuse_unsupported(name: str, attn, hidden_states, attention_mask) -> None:
    if attention_mask is not None or attn.group_norm is not None or attn.spatial_norm is not None:
        raise ValueError(f"{name} handles unmasked attention without group/spatial norm only")
    if getattr(attn, "norm_q", None) is not None or getattr(attn, "norm_k", None) is not None:
        raise ValueError(f"{name} does not apply query/key normalisation (qk_norm)")
    if hidden_states.ndim != 3:
        raise ValueError(f"{name} needs (batch, sequence, channels) input, got {tuple(hidden_states.shape)}")


def _projections(attn, hidden_states, encoder_hidden_states):
    context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
    if encoder_hidden_states is not None and attn.norm_cross:
        context = attn.norm_encoder_hidden_states(context)
    return attn.to_q(hidden_states), attn.to_k(context), attn.to_v(context)


def _output(attn, out, residual):
    out = attn.to_out[1](attn.to_out[0](out))
    if attn.residual_connection:
        out = out + residual
    return out / attn.rescale_output_factor


def broadcast_attention(query, key, value, heads: int, scale: float):
    """softmax(q k^T x scale) v per head of (N, sequence, heads x size) tensors, as broadcast products
    and sums (the core of ``FrameAttnProcessor``)."""
    batch, frames, inner = query.shape
    size = inner // heads
    query = query.view(batch, frames, 1, heads, size)
    key = key.view(batch, 1, key.shape[1], heads, size)
    value = value.view(batch, 1, value.shape[1], heads, size)
    # scores[n, i, j, h] = <q_i, k_j> * scale; softmax over j (in fp32, as AttnProcessor under autocast)
    scores = (query * key).sum(-1) * scale
    weights = scores.float().softmax(dim=2).to(value.dtype)
    return (weights.unsqueeze(-1) * value).sum(2).reshape(batch, frames, inner)


class FrameAttnProcessor:
    """Self- or cross-attention over short sequences as broadcast products and sums.

    Equal to diffusers' ``AttnProcessor`` (same projections, scale and softmax) for the temporal
    transformers' attention: 3-D input, no mask, no group or spatial norm. Anything else is refused
    rather than silently computed another way. Eager, it materialises (N, F, F, heads, head size)
    products: meant for short sequences under ``torch.compile``."""

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None,
                 *args, **kwargs):
        _refuse_unsupported("FrameAttnProcessor", attn, hidden_states, attention_mask)
        query, key, value = _projections(attn, hidden_states, encoder_hidden_states)
        out = broadcast_attention(query, key, value, attn.heads, attn.scale)
        return _output(attn, out, hidden_states)


class FusedFrameAttnProcessor:
    """The same attention as ``FrameAttnProcessor``, as one Triton kernel forward and one backward
    (``dreammotion.models.frame_attention``): self-attention over short sequences (frames, or the
    positions of a low UNet level; queries and keys of one length, up to 64), power-of-two head size,
    CUDA tensors. Anything else is refused."""

    def __init__(self):
        # imported here, not at module level: triton is needed only when this processor is used
        from dreammotion.models.frame_attention import frame_attention

        self.attend = frame_attention

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None,
                 *args, **kwargs):
        _refuse_unsupported("FusedFrameAttnProcessor", attn, hidden_states, attention_mask)
        query, key, value = _projections(attn, hidden_states, encoder_hidden_states)
        # frame_attention refuses keys of another length than the queries (cross-attention)
        return _output(attn, self.attend(query, key, value, attn.heads, attn.scale), hidden_states)


def _set_processors(unet, kind: str, chosen: list[str]) -> None:
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    makers = {"sdpa": AttnProcessor2_0, "math": AttnProcessor, "broadcast": FrameAttnProcessor,
              "fused": FusedFrameAttnProcessor}
    if kind not in makers:
        raise ValueError(f"unknown attention kind {kind!r}: {', '.join(makers)}")
    processors = dict(unet.attn_processors)
    for name in chosen:
        processors[name] = makers[kind]()
    unet.set_attn_processor(processors)


def set_temporal_attention(unet, kind: str) -> int:
    """Give every temporal attention of `unet` the processor `kind`: "sdpa" (diffusers' default,
    ``AttnProcessor2_0``), "math" (``AttnProcessor``: baddbmm + softmax + bmm), "broadcast"
    (``FrameAttnProcessor``) or "fused" (``FusedFrameAttnProcessor``, CUDA only). Returns how many
    processors were set."""
    temporal = [name for name in unet.attn_processors if is_temporal_attention(name)]
    _set_processors(unet, kind, temporal)
    return len(temporal)


def set_spatial_self_attention(unet, kind: str, levels) -> int:
    """Give the spatial self-attention at each of `levels` (0: full resolution, see ``unet_level``)
    the processor `kind` (as ``set_temporal_attention``'s); the cross-attention (attn2, queries and
    text keys of different lengths) keeps its own. A level without spatial self-attention is refused.
    Returns how many processors were set."""
    n_levels = len(unet.config.block_out_channels)
    by_level = {level: [name for name in unet.attn_processors
                        if is_spatial_self_attention(name) and unet_level(name, n_levels) == level] for level in levels}
    empty = sorted(level for level, names in by_level.items() if not names)
    if empty:
        having = sorted({unet_level(name, n_levels) for name in unet.attn_processors
                         if is_spatial_self_attention(name)})
        raise ValueError(f"UNet level(s) {empty} have no spatial self-attention; levels with one: {having}")
    chosen = [name for names in by_level.values() for name in names]
    _set_processors(unet, kind, chosen)
    return len(chosen)


__all__ = ["FrameAttnProcessor", "FusedFrameAttnProcessor", "broadcast_attention", "TEMPORAL_ATTENTION_KINDS",
           "is_spatial_self_attention", "is_temporal_attention", "set_spatial_self_attention", "set_temporal_attention",
           "unet_level"]
