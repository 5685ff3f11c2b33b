"""Fused attention over frames: one Triton kernel for the forward, one for the backward.

The temporal attention of a video UNet runs over batch x H x W sequences of F frames (F = 8 for the
embedded prior). Each sequence is tiny, so the work is memory traffic, not arithmetic: a kernel that
reads q, k and v once and writes the output once is as fast as it gets. Libraries' kernels do far
more: flash attention pads each 8-row sequence to a 64-128 row tile, batched GEMMs run 8x8 tiles, and
inductor's fusion of the broadcast form (``FrameAttnProcessor``) reads its inputs many times over in
the backward (bench/prior/NOTES.md, run 12: ~19% of a compiled training step).

Here a program takes ``BLOCK_ROWS`` (sequence, head) rows and loops over the F keys with an online
softmax, keeping everything in registers (fp32); the forward also writes each query's log-sum-exp
(F floats per row), so the backward recomputes the probabilities without a second pass. Layout: q, k,
v and the output are (N, F, heads x head size), contiguous, as ``Attention.to_q`` etc. produce them.

``frame_attention(q, k, v, heads, scale)`` is a ``torch.library`` custom op with its autograd and a
fake implementation, so it runs eagerly, under ``torch.compile`` (as an opaque kernel) and inside a
captured CUDA graph. It needs CUDA tensors; on the CPU it runs only under Triton's interpreter
(``TRITON_INTERPRET=1``, which the tests use), and refuses otherwise.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

# Registers hold a few (rows, frames, head size) fp32 tiles per program. The tile size sets the
# speed: on an H100 forward + backward at the prior's largest attention took 42, 16 and 6 ms with
# tiles of 2048, 4096 and 8192 values (bench/prior/run15/frame_attention.json; 4 warps). Not
# autotuned: every candidate costs a Triton compile at the first call (bench/prior/NOTES.md, run 16).
TILE_VALUES = 8192
NUM_WARPS = 4
MAX_FRAMES = 64


def kernel_setting() -> str:
    """The kernels' register tile and warps, as TILExWARPS (e.g. "8192x4")."""
    return f"{TILE_VALUES}x{NUM_WARPS}"


def use_kernel_setting(setting: str) -> None:
    """Run the kernels with a TILExWARPS setting from now on (benchmarks compare settings this way)."""
    global TILE_VALUES, NUM_WARPS
    try:
        TILE_VALUES, NUM_WARPS = (int(part) for part in setting.split("x"))
    except ValueError:
        raise ValueError(f"frame attention kernel setting {setting!r}: expected TILExWARPS, e.g. 8192x4") from None


def block_rows(frames: int, head_size: int, tile: int | None = None) -> int:
    """Rows (sequence, head pairs) per program: as many as fill a tile of `tile` values."""
    return max(1, (tile or TILE_VALUES) // (triton.next_power_of_2(frames) * head_size))


@triton.jit
def _rows(pid, n_rows, heads, F: tl.constexpr, C, BLOCK_ROWS: tl.constexpr, BLOCK_F: tl.constexpr,
          D: tl.constexpr):
    """Offsets of the (rows, frames, head size) tile of program `pid`, its mask, and the row ids."""
    rows = pid * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    frames = tl.arange(0, BLOCK_F)
    dims = tl.arange(0, D)
    base = (rows // heads).to(tl.int64) * (F * C) + (rows % heads) * D
    offsets = base[:, None, None] + frames[None, :, None] * C + dims[None, None, :]
    mask = (rows < n_rows)[:, None, None] & (frames < F)[None, :, None]
    return rows, base, offsets, mask


@triton.jit
def _frame_attention_forward(q_ptr, k_ptr, v_ptr, out_ptr, lse_ptr, n_rows, heads, C, scale,
                             F: tl.constexpr, BLOCK_ROWS: tl.constexpr, BLOCK_F: tl.constexpr, D: tl.constexpr):
    rows, base, offsets, mask = _rows(tl.program_id(0), n_rows, heads, F, C, BLOCK_ROWS, BLOCK_F, D)
    row_mask = (rows < n_rows)[:, None]
    dims = tl.arange(0, D)
    q = tl.load(q_ptr + offsets, mask=mask, other=0.0).to(tl.float32) * scale
    running_max = tl.full((BLOCK_ROWS, BLOCK_F), float("-inf"), tl.float32)
    running_sum = tl.zeros((BLOCK_ROWS, BLOCK_F), tl.float32)
    acc = tl.zeros((BLOCK_ROWS, BLOCK_F, D), tl.float32)
    for j in tl.static_range(F):
        key_offsets = base[:, None] + j * C + dims[None, :]
        k_j = tl.load(k_ptr + key_offsets, mask=row_mask, other=0.0).to(tl.float32)
        v_j = tl.load(v_ptr + key_offsets, mask=row_mask, other=0.0).to(tl.float32)
        s_j = tl.sum(q * k_j[:, None, :], axis=2)  # (rows, queries): score of key j
        new_max = tl.maximum(running_max, s_j)
        alpha = tl.exp(running_max - new_max)
        p_j = tl.exp(s_j - new_max)
        running_sum = running_sum * alpha + p_j
        acc = acc * alpha[:, :, None] + p_j[:, :, None] * v_j[:, None, :]
        running_max = new_max
    out = acc / running_sum[:, :, None]
    tl.store(out_ptr + offsets, out.to(out_ptr.dtype.element_ty), mask=mask)
    frames = tl.arange(0, BLOCK_F)
    lse_offsets = rows.to(tl.int64)[:, None] * F + frames[None, :]
    tl.store(lse_ptr + lse_offsets, running_max + tl.log(running_sum), mask=row_mask & (frames < F)[None, :])


@triton.jit
def _frame_attention_backward(q_ptr, k_ptr, v_ptr, out_ptr, grad_out_ptr, lse_ptr, grad_q_ptr, grad_k_ptr,
                              grad_v_ptr, n_rows, heads, C, scale, F: tl.constexpr, BLOCK_ROWS: tl.constexpr,
                              BLOCK_F: tl.constexpr, D: tl.constexpr):
    rows, base, offsets, mask = _rows(tl.program_id(0), n_rows, heads, F, C, BLOCK_ROWS, BLOCK_F, D)
    row_mask = (rows < n_rows)[:, None]
    dims = tl.arange(0, D)
    frames = tl.arange(0, BLOCK_F)
    q = tl.load(q_ptr + offsets, mask=mask, other=0.0).to(tl.float32) * scale
    grad_out = tl.load(grad_out_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
    out = tl.load(out_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
    lse = tl.load(lse_ptr + rows.to(tl.int64)[:, None] * F + frames[None, :],
                  mask=row_mask & (frames < F)[None, :], other=0.0)
    # softmax backward: dS_ij = P_ij (dP_ij - sum_j' P_ij' dP_ij'), and that sum is <dO_i, O_i>
    delta = tl.sum(grad_out * out, axis=2)
    grad_q = tl.zeros((BLOCK_ROWS, BLOCK_F, D), tl.float32)
    for j in tl.static_range(F):
        key_offsets = base[:, None] + j * C + dims[None, :]
        k_j = tl.load(k_ptr + key_offsets, mask=row_mask, other=0.0).to(tl.float32)
        v_j = tl.load(v_ptr + key_offsets, mask=row_mask, other=0.0).to(tl.float32)
        p_j = tl.exp(tl.sum(q * k_j[:, None, :], axis=2) - lse)  # (rows, queries)
        grad_p_j = tl.sum(grad_out * v_j[:, None, :], axis=2)
        grad_s_j = p_j * (grad_p_j - delta)
        grad_q += grad_s_j[:, :, None] * k_j[:, None, :]
        # padded query rows contribute nothing: their grad_out (hence grad_p and delta) is zero
        grad_k_j = tl.sum(grad_s_j[:, :, None] * q, axis=1)  # q is already scaled
        grad_v_j = tl.sum(p_j[:, :, None] * grad_out, axis=1)
        tl.store(grad_k_ptr + key_offsets, grad_k_j.to(grad_k_ptr.dtype.element_ty), mask=row_mask)
        tl.store(grad_v_ptr + key_offsets, grad_v_j.to(grad_v_ptr.dtype.element_ty), mask=row_mask)
    tl.store(grad_q_ptr + offsets, (grad_q * scale).to(grad_q_ptr.dtype.element_ty), mask=mask)


def _interpreting() -> bool:
    return bool(triton.knobs.runtime.interpret)  # what triton.jit read when it built the kernels


def _check(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> tuple[int, int, int]:
    if q.ndim != 3 or q.shape != k.shape or q.shape != v.shape:
        raise ValueError(f"frame_attention needs q, k, v of one shape (N, frames, channels); got "
                         f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if len({(t.dtype, t.device) for t in (q, k, v)}) != 1:
        raise ValueError(f"frame_attention needs q, k, v of one dtype on one device; got "
                         f"{[(str(t.dtype), str(t.device)) for t in (q, k, v)]}")
    n, frames, channels = q.shape
    if heads < 1 or channels % heads:
        raise ValueError(f"frame_attention: {channels} channels do not split into {heads} heads")
    size = channels // heads
    if size & (size - 1) or not 1 <= frames <= MAX_FRAMES:
        raise ValueError(f"frame_attention needs a power-of-two head size and 1..{MAX_FRAMES} frames; got head size "
                         f"{size}, {frames} frames")
    if q.device.type != "cuda" and not _interpreting():
        raise RuntimeError(f"frame_attention is a Triton kernel: it needs CUDA tensors, got {q.device} "
                           "(on the CPU use the 'math' or 'broadcast' temporal attention)")
    return n, frames, size


def _grid(n_rows: int, frames: int, size: int) -> tuple[dict, tuple[int]]:
    rows = block_rows(frames, size)
    constants = {"BLOCK_ROWS": rows, "BLOCK_F": triton.next_power_of_2(frames), "D": size, "F": frames,
                 "num_warps": NUM_WARPS}
    return constants, (triton.cdiv(n_rows, rows),)


@torch.library.custom_op("dreammotion::frame_attention_forward", mutates_args=())
def frame_attention_forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int,
                            scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Output (N, F, C) and log-sum-exp (N x heads, F) in fp32."""
    n, frames, size = _check(q, k, v, heads)
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    out = torch.empty_like(q)
    lse = torch.empty(n * heads, frames, device=q.device, dtype=torch.float32)
    if n:
        constants, grid = _grid(n * heads, frames, size)
        _frame_attention_forward[grid](q, k, v, out, lse, n * heads, heads, q.shape[2], scale, **constants)
    return out, lse


@frame_attention_forward.register_fake
def _(q, k, v, heads, scale):
    # contiguous, as the real op returns them whatever the inputs' strides
    return (torch.empty(q.shape, dtype=q.dtype, device=q.device),
            torch.empty(q.shape[0] * heads, q.shape[1], dtype=torch.float32, device=q.device))


@torch.library.custom_op("dreammotion::frame_attention_backward", mutates_args=())
def frame_attention_backward(grad_out: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                             out: torch.Tensor, lse: torch.Tensor, heads: int,
                             scale: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n, frames, size = _check(q, k, v, heads)
    q, k, v, out, grad_out = (t.contiguous() for t in (q, k, v, out, grad_out))
    grad_q, grad_k, grad_v = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    if n:
        constants, grid = _grid(n * heads, frames, size)
        _frame_attention_backward[grid](q, k, v, out, grad_out, lse, grad_q, grad_k, grad_v, n * heads, heads,
                                        q.shape[2], scale, **constants)
    return grad_q, grad_k, grad_v


@frame_attention_backward.register_fake
def _(grad_out, q, k, v, out, lse, heads, scale):
    return tuple(torch.empty(t.shape, dtype=t.dtype, device=t.device) for t in (q, k, v))


def _setup_context(ctx, inputs, output):
    q, k, v, heads, scale = inputs
    out, lse = output
    ctx.save_for_backward(q, k, v, out, lse)
    ctx.mark_non_differentiable(lse)  # an auxiliary output for the backward, not part of the result
    ctx.heads, ctx.scale = heads, scale


def _backward(ctx, grad_out, grad_lse):
    q, k, v, out, lse = ctx.saved_tensors
    grad_q, grad_k, grad_v = frame_attention_backward(grad_out, q, k, v, out, lse, ctx.heads, ctx.scale)
    return grad_q, grad_k, grad_v, None, None


frame_attention_forward.register_autograd(_backward, setup_context=_setup_context)


def frame_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, scale: float) -> torch.Tensor:
    """softmax(q k^T x scale) v per (sequence, head), over the frame axis of (N, frames, heads x size) tensors."""
    return frame_attention_forward(q, k, v, heads, scale)[0]


__all__ = ["block_rows", "kernel_setting", "use_kernel_setting", "frame_attention", "frame_attention_backward", "frame_attention_forward"]
