"""S-SSM and T-SSM: distances between self-similarity matrices of attention keys.

Keys of one layer have shape (batch * frames, H * W, C), as the UNet3D spatial transformer lays them
out. Similarities are cosine (keys normalised over channels), so scaling a token's key changes
nothing.

As in the paper, S-SSM is (1/N) sum_n ||S^n(x) - S^n(x_hat)||_F^2 over the N frames and T-SSM is
||T(x) - T(x_hat)||_F^2 (sums of squares over matrix entries, not means: a mean over the (HW)^2
entries makes the gradient vanish at video resolution). Both are averaged over key layers by the
caller.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _per_frame(keys: torch.Tensor, frames: int) -> torch.Tensor:
    """(batch * frames, HW, C) -> (batch, frames, HW, C)."""
    bf, hw, c = keys.shape
    if bf % frames:
        raise ValueError(f"keys of shape {tuple(keys.shape)} do not split into {frames} frames")
    return keys.reshape(bf // frames, frames, hw, c)


def spatial_similarity(keys: torch.Tensor) -> torch.Tensor:
    """(..., HW, C) -> (..., HW, HW) cosine similarity of every pair of positions."""
    k = F.normalize(keys.float(), dim=-1)
    return k @ k.transpose(-1, -2)


def temporal_similarity(keys: torch.Tensor, frames: int) -> torch.Tensor:
    """(batch * frames, HW, C) -> (batch, frames, frames) cosine similarity of spatially averaged keys."""
    mean = _per_frame(keys.float(), frames).mean(dim=2)  # (batch, frames, C)
    m = F.normalize(mean, dim=-1)
    return m @ m.transpose(-1, -2)


def spatial_ssm_loss(keys: torch.Tensor, keys_ref: torch.Tensor, *, gram: bool | None = None) -> torch.Tensor:
    """Mean over frames of the squared Frobenius distance ||S(keys) - S(keys_ref)||_F^2.

    With ``gram`` (default when HW > C) the same number is computed without forming the HW x HW
    matrices, by ||A A^T - B B^T||_F^2 = ||A^T A||^2 - 2 ||A^T B||^2 + ||B^T B||^2 on C x C Gram
    matrices: exact in exact arithmetic, and far cheaper at video resolution (HW in the thousands).
    """
    if keys.shape != keys_ref.shape:
        raise ValueError(f"key shapes differ: {tuple(keys.shape)} vs {tuple(keys_ref.shape)}")
    n, hw, c = keys.shape
    if gram is None:
        gram = hw > c
    if not gram:
        diff = spatial_similarity(keys) - spatial_similarity(keys_ref)
        return diff.pow(2).sum((-1, -2)).mean()
    # float64 for the Gram form: the three terms nearly cancel when keys ~ keys_ref.
    a = F.normalize(keys.double(), dim=-1)
    b = F.normalize(keys_ref.double(), dim=-1)
    ata = a.transpose(-1, -2) @ a
    btb = b.transpose(-1, -2) @ b
    atb = a.transpose(-1, -2) @ b
    per_frame = ata.pow(2).sum((-1, -2)) - 2 * atb.pow(2).sum((-1, -2)) + btb.pow(2).sum((-1, -2))
    return per_frame.clamp_min(0).mean().float()


def temporal_ssm_loss(keys: torch.Tensor, keys_ref: torch.Tensor, frames: int) -> torch.Tensor:
    """Squared Frobenius distance ||T(keys) - T(keys_ref)||_F^2 (mean over the batch), T frames x frames."""
    if keys.shape != keys_ref.shape:
        raise ValueError(f"key shapes differ: {tuple(keys.shape)} vs {tuple(keys_ref.shape)}")
    diff = temporal_similarity(keys, frames) - temporal_similarity(keys_ref, frames)
    return diff.pow(2).sum((-1, -2)).mean()


def frame_key_means(keys: torch.Tensor, frames: int) -> torch.Tensor:
    """(batch * frames, HW, C) -> (batch, frames, C): each frame's spatially averaged key (T-SSM's input)."""
    return _per_frame(keys.float(), frames).mean(dim=2)


def temporal_cross_ssm_loss(
    keys: torch.Tensor, keys_ref: torch.Tensor, frames: int, context: torch.Tensor, context_ref: torch.Tensor
) -> torch.Tensor:
    """T-SSM between the frames of `keys` and other frames (`context`, (batch, Fc, C) key means, e.g. of the
    neighbouring window of a long video): ||cos(m, c) - cos(m_ref, c_ref)||_F^2 over the frames x Fc block,
    mean over the batch. The context is a constant (no gradient flows into it)."""
    m = F.normalize(frame_key_means(keys, frames), dim=-1)
    m_ref = F.normalize(frame_key_means(keys_ref, frames), dim=-1)
    c, c_ref = F.normalize(context.float(), dim=-1), F.normalize(context_ref.float(), dim=-1)
    diff = m @ c.transpose(-1, -2) - m_ref @ c_ref.transpose(-1, -2)
    return diff.pow(2).sum((-1, -2)).mean()
