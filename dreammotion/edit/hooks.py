"""Reading self-attention keys through diffusers attention processors.

UNet3DConditionModel has three kinds of attention: spatial self-attention
(``*.attentions.*.transformer_blocks.*.attn1``), cross-attention (``attn2`` of the same blocks) and
temporal attention (``*.temp_attentions.*`` and ``transformer_in``, where *both* attn1 and attn2 attend
over frames). S-SSM and T-SSM read the keys of spatial self-attention only.
"""

from __future__ import annotations

import fnmatch
import functools

import torch
import torch.nn.functional as F
import torch.utils.checkpoint

from dreammotion.models.attention import is_temporal_attention

DEFAULT_LAYERS = ("up_blocks.*.attentions.*.transformer_blocks.*.attn1",)


class StopForward(Exception):
    """Raised after the last hooked layer: the rest of the UNet is not needed for S/T-SSM."""


def _is_spatial_self_attention(name: str) -> bool:
    parts = name.split(".")
    return (
        parts[-1] == "attn1"
        and "attentions" in parts
        and "temp_attentions" not in parts
        and parts[0] != "transformer_in"
    )


def select_spatial_self_attention(unet: torch.nn.Module, patterns: tuple[str, ...] | list[str] = DEFAULT_LAYERS) -> list[str]:
    """Names of the spatial self-attention modules matched by the glob `patterns`, in forward order.

    A pattern that selects temporal attention or cross-attention is an error, not silently skipped:
    the method's keys must come from spatial self-attention.
    """
    from diffusers.models.attention_processor import Attention

    names = [n for n, m in unet.named_modules() if isinstance(m, Attention)]
    selected = []
    for pattern in patterns:
        hits = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        if not hits:
            raise ValueError(f"key layer pattern {pattern!r} matches no attention layer of the UNet")
        wrong = [n for n in hits if not _is_spatial_self_attention(n)]
        if wrong:
            raise ValueError(
                f"key layer pattern {pattern!r} selects {wrong[0]!r}, which is not spatial self-attention "
                "(temporal attention and cross-attention keys are not used by S-SSM/T-SSM)"
            )
        selected += [n for n in hits if n not in selected]
    order = {n: i for i, n in enumerate(names)}  # named_modules order is the forward order in UNet3D
    return sorted(selected, key=order.__getitem__)


class _KeyCaptureProcessor:
    """Self-attention (same arithmetic as diffusers' AttnProcessor2_0) that also stores its keys."""

    def __init__(self, name: str, capture: "KeyCapture"):
        self.name = name
        self.capture = capture

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        if encoder_hidden_states is not None or attention_mask is not None:
            raise RuntimeError(f"{self.name}: key capture expects plain self-attention")
        key = attn.to_k(hidden_states)  # (batch * frames, H * W, channels)
        self.capture._store(self.name, key)

        batch, tokens, _ = hidden_states.shape
        head_dim = key.shape[-1] // attn.heads
        q = attn.to_q(hidden_states).view(batch, tokens, attn.heads, head_dim).transpose(1, 2)
        k = key.view(batch, tokens, attn.heads, head_dim).transpose(1, 2)
        v = attn.to_v(hidden_states).view(batch, tokens, attn.heads, head_dim).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(1, 2).reshape(batch, tokens, attn.heads * head_dim).to(q.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + hidden_states
        return out / attn.rescale_output_factor


class KeyCapture:
    """Installs key-capturing processors on the chosen layers; restores the originals on exit.

    >>> with KeyCapture(unet, layers) as capture:
    ...     unet(x, t, encoder_hidden_states=emb)
    ...     keys = capture.keys  # {layer name: (batch * frames, H * W, C)}

    With ``capture.truncate = True`` the forward stops (``StopForward``) once every chosen layer has
    produced its keys; ``capture.run(unet, ...)`` swallows that exception.
    """

    def __init__(self, unet: torch.nn.Module, layers: list[str]):
        if not layers:
            raise ValueError("KeyCapture needs at least one layer")
        self.unet = unet
        self.layers = list(layers)
        self.keys: dict[str, torch.Tensor] = {}
        self.truncate = False
        self._originals: dict[str, object] = {}

    def _store(self, name: str, key: torch.Tensor) -> None:
        self.keys[name] = key
        if self.truncate and len(self.keys) == len(self.layers):
            raise StopForward

    def __enter__(self) -> "KeyCapture":
        modules = dict(self.unet.named_modules())
        for name in self.layers:
            attn = modules[name]
            if attn.group_norm is not None or attn.spatial_norm is not None or attn.norm_k is not None:
                raise ValueError(f"{name}: attention with its own norms is not supported for key capture")
            self._originals[name] = attn.processor
            attn.set_processor(_KeyCaptureProcessor(name, self))
        return self

    def __exit__(self, *exc) -> None:
        modules = dict(self.unet.named_modules())
        for name, processor in self._originals.items():
            modules[name].set_processor(processor)
        self._originals.clear()

    def run(self, unet: torch.nn.Module, *args, truncate: bool, **kwargs):
        """Run the UNet once, collecting fresh keys. Returns the UNet output, or None when truncated."""
        self.keys = {}
        self.truncate = truncate
        try:
            return unet(*args, **kwargs)
        except StopForward:
            return None
        finally:
            self.truncate = False


# --- performance helpers (bench/NOTES.md has the measurements) -----------------------------------

# CUDA grids allow at most 65535 blocks along their y and z axes; SDPA kernels put batch x heads there,
# and temporal attention's batch is batch * H * W sequences (tens of thousands at 576x320).
MAX_ATTENTION_BATCH_HEADS = 65535


class _ChunkedProcessor:
    """Runs the wrapped processor on slices of the batch, so that batch x heads stays under a limit.

    Attention is independent per batch entry, so slicing changes no arithmetic.
    """

    def __init__(self, inner, max_batch_heads: int):
        self.inner = inner
        self.max_batch_heads = max_batch_heads

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        chunk = max(1, self.max_batch_heads // attn.heads)
        if hidden_states.shape[0] <= chunk or attention_mask is not None or encoder_hidden_states is not None:
            return self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, temb, **kwargs)
        return torch.cat([self.inner(attn, part, None, None, temb, **kwargs) for part in hidden_states.split(chunk)])


class _WrappedProcessors:
    """Context manager: the processor of each attention layer in `modules` wrapped by ``wrap`` while
    entered, the processors it found restored on leaving."""

    def __init__(self, modules: dict[str, torch.nn.Module]):
        self.modules = modules
        self._originals: dict[str, object] = {}

    def wrap(self, processor):
        raise NotImplementedError

    def __enter__(self):
        for name, attn in self.modules.items():
            self._originals[name] = attn.processor
            attn.set_processor(self.wrap(attn.processor))
        return self

    def __exit__(self, *exc) -> None:
        for name, processor in self._originals.items():
            self.modules[name].set_processor(processor)
        self._originals.clear()


def _attention_layers(unet: torch.nn.Module, temporal_only: bool = False) -> dict[str, torch.nn.Module]:
    from diffusers.models.attention_processor import Attention

    return {n: m for n, m in unet.named_modules()
            if isinstance(m, Attention) and (not temporal_only or is_temporal_attention(n))}


class TemporalAttentionChunking(_WrappedProcessors):
    """Context manager: temporal attention runs in batch slices of at most `max_batch_heads` / heads."""

    def __init__(self, unet: torch.nn.Module, max_batch_heads: int = MAX_ATTENTION_BATCH_HEADS):
        super().__init__(_attention_layers(unet, temporal_only=True))
        self.max_batch_heads = max_batch_heads

    def wrap(self, processor):
        return _ChunkedProcessor(processor, self.max_batch_heads)


# Up to this many query tokens memory-efficient attention beats flash attention, above it flash wins
# (bench/results/kernels_24f.json, one H100, ZeroScope at 24 frames, heads of size 64): on temporal
# attention (24-token sequences over frames) it is ~2x faster forward and 2.6-3.9x backward; about even
# at 180 tokens and 1.2-1.6x faster at 45; on the 720- and 2880-token levels flash is 1.1-2.2x faster.
SHORT_SEQUENCE_TOKENS = 256


class _KernelByLengthProcessor:
    """Runs the wrapped processor with SDPA's backends ordered by the sequence length: memory-efficient
    attention first for short sequences, flash first for long ones. Every backend computes the same
    attention (up to rounding); a backend that cannot take a shape passes it to the next in order."""

    def __init__(self, inner, short_tokens: int):
        self.inner = inner
        self.short_tokens = short_tokens

    def backends(self, tokens: int) -> list:
        from torch.nn.attention import SDPBackend

        flash, efficient = SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION
        first, second = (efficient, flash) if tokens <= self.short_tokens else (flash, efficient)
        return [first, second, SDPBackend.MATH]

    # The arguments named as diffusers' processors name them: ``Attention.forward`` passes on only the
    # keyword arguments that its processor's signature names.
    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        from torch.nn.attention import sdpa_kernel

        def call():
            return self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, temb, **kwargs)

        if hidden_states.ndim != 3:  # (batch, channels, height, width) inputs: left to the defaults
            return call()
        with sdpa_kernel(self.backends(hidden_states.shape[1]), set_priority=True):
            return call()


class AttentionKernelsByLength(_WrappedProcessors):
    """Context manager: every attention layer of `unet` runs its SDPA with the backend its sequence
    length favours (``_KernelByLengthProcessor``), around whatever processor it has on entry."""

    def __init__(self, unet: torch.nn.Module, short_tokens: int = SHORT_SEQUENCE_TOKENS):
        super().__init__(_attention_layers(unet))
        self.short_tokens = short_tokens

    def wrap(self, processor):
        return _KernelByLengthProcessor(processor, self.short_tokens)


def select_checkpoint_units(unet: torch.nn.Module, patterns: tuple[str, ...] | list[str]) -> list[str]:
    """Modules matched by the glob `patterns` that get activation checkpointing, outermost first.

    A module inside one already chosen is skipped, and so are ModuleLists (they have no forward):
    ``"up_blocks.3"`` selects the block, ``"up_blocks.3.*"`` its resnets, attentions, temporal layers
    and upsampler one by one.
    """
    chosen: list[str] = []
    for name, module in unet.named_modules():
        if not name or isinstance(module, (torch.nn.ModuleList, torch.nn.ModuleDict)):
            continue
        if any(name.startswith(parent + ".") for parent in chosen):
            continue
        if any(fnmatch.fnmatchcase(name, p) for p in patterns):
            chosen.append(name)
    unmatched = [p for p in patterns if not any(fnmatch.fnmatchcase(n, p) for n in chosen)]
    if unmatched:
        raise ValueError(f"checkpoint pattern(s) {unmatched} match no module of the UNet")
    return chosen


def _checkpointed_forward(forward, *args, **kwargs):
    if not torch.is_grad_enabled():
        return forward(*args, **kwargs)
    # Non-reentrant checkpointing: keyword arguments work, and tensors made inside the unit (the keys
    # that KeyCapture stores) can be used outside it; their inputs are recomputed during backward.
    return torch.utils.checkpoint.checkpoint(forward, *args, use_reentrant=False, **kwargs)


class ActivationCheckpointing:
    """Context manager: the named modules drop their activations in a with-grad forward and recompute
    them during backward (UNet3DConditionModel has no gradient checkpointing of its own).

    No-grad forwards are unaffected. Results are the same; memory falls and time rises by one extra
    forward of the checkpointed units.
    """

    def __init__(self, unet: torch.nn.Module, names: list[str]):
        modules = dict(unet.named_modules())
        self.modules = {n: modules[n] for n in names}

    def __enter__(self) -> "ActivationCheckpointing":
        for module in self.modules.values():
            module.forward = functools.partial(_checkpointed_forward, module.forward)
        return self

    def __exit__(self, *exc) -> None:
        for module in self.modules.values():
            module.__dict__.pop("forward", None)  # back to the class's forward
