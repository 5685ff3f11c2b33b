"""torch.compile of a diffusers UNet3D's convolution blocks, shared by training and editing.

The UNet's memory-bound work (GroupNorm statistics, SiLU, casts, residual adds) sits in its
``ResnetBlock2D`` and ``TemporalConvLayer`` blocks; compiling them fuses those chains around the
convolutions. Attention blocks are left alone here: the edit reads keys through attention processors
(``dreammotion.edit.hooks``), which are Python-side hooks a compiled graph would have to trace.
"""

from __future__ import annotations

import torch


def conv_block_classes() -> tuple[type, ...]:
    from diffusers.models.resnet import ResnetBlock2D, TemporalConvLayer

    return (ResnetBlock2D, TemporalConvLayer)


def raise_dynamo_cache_limits() -> None:
    """Each distinct (code object, input shapes) is one compiled graph; the default limit of 8 per code
    object would silently send later blocks of other shapes back to eager."""
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
    torch._dynamo.config.accumulated_cache_size_limit = max(torch._dynamo.config.accumulated_cache_size_limit, 512)


class CompiledConvBlocks:
    """Context manager: every conv block of `unet` runs through ``torch.compile`` with static shapes
    (``dynamic=False``: an earlier ``dynamic=True`` attempt crashed inductor, bench/NOTES.md); leaving
    restores the eager forwards. The first call of each shape compiles (seconds on a tiny UNet,
    minutes at ZeroScope size); results equal eager up to floating-point rounding."""

    def __init__(self, unet: torch.nn.Module):
        classes = conv_block_classes()
        self.modules = [m for m in unet.modules() if isinstance(m, classes)]
        if not self.modules:
            raise ValueError("the UNet has no ResnetBlock2D or TemporalConvLayer to compile")

    def __enter__(self) -> "CompiledConvBlocks":
        raise_dynamo_cache_limits()
        for module in self.modules:
            module.forward = torch.compile(module.forward, dynamic=False)
        return self

    def __exit__(self, *exc) -> None:
        for module in self.modules:
            module.__dict__.pop("forward", None)  # back to the class's forward


__all__ = ["CompiledConvBlocks", "conv_block_classes", "raise_dynamo_cache_limits"]
