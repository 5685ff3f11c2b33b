"""A tiny randomly initialised SAM (64 px input) for tests: same classes as the real one, toy sizes.

``segment_anything.sam_model_registry`` only builds the 1024 px ViT-B/L/H, so tests use this builder
(model type ``tiny``). Its masks are meaningless; it exercises the real SamPredictor code path.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

TINY_IMAGE_SIZE = 64
TINY_PATCH_SIZE = 16
TINY_PROMPT_DIM = 16


def build_tiny_sam(checkpoint: str | Path | None = None) -> Sam:
    """Same signature as ``sam_model_registry[...]``: build, then load ``checkpoint`` if given."""
    embedding_size = TINY_IMAGE_SIZE // TINY_PATCH_SIZE
    sam = Sam(
        image_encoder=ImageEncoderViT(
            img_size=TINY_IMAGE_SIZE,
            patch_size=TINY_PATCH_SIZE,
            embed_dim=32,
            depth=1,
            num_heads=2,
            mlp_ratio=2.0,
            out_chans=TINY_PROMPT_DIM,
            qkv_bias=True,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            use_rel_pos=True,
            window_size=2,
            global_attn_indexes=(),
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=TINY_PROMPT_DIM,
            image_embedding_size=(embedding_size, embedding_size),
            input_image_size=(TINY_IMAGE_SIZE, TINY_IMAGE_SIZE),
            mask_in_chans=4,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=1, embedding_dim=TINY_PROMPT_DIM, mlp_dim=32, num_heads=2),
            transformer_dim=TINY_PROMPT_DIM,
            iou_head_depth=2,
            iou_head_hidden_dim=16,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    sam.eval()
    if checkpoint is not None:
        sam.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    return sam


def save_tiny_sam(path: str | Path, *, seed: int = 0) -> Path:
    """Write a tiny random SAM state dict to ``path`` (load it with model type ``tiny``)."""
    torch.manual_seed(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(build_tiny_sam().state_dict(), path)
    return path
