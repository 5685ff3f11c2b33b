"""Build, save and load dreammotion-shapes-clip in transformers' CLIPModel layout.

The saved folder holds ``config.json`` + ``model.safetensors`` (fp16), the word-level tokenizer
(``tokenizer.json``) and a ``CLIPImageProcessor`` (``preprocessor_config.json``), which is all that
``dreammotion.metrics.clip.load_clip`` reads. The image processor resizes the shortest edge to 32
(bicubic), centre-crops 32x32 and maps [0, 255] to [-1, 1] (mean 0.5, std 0.5): edited frames of
32x32 pass through unchanged (``inputs.to_pixel_values`` is the same map, used in training), 64x64
frames are downscaled as any CLIP processor would.
"""

from __future__ import annotations

from pathlib import Path

import torch

from dreammotion.model_files import read_training_record
from dreammotion.synthetic.captions import MAX_TOKENS, vocabulary
from dreammotion.utils.atomic import atomic_dir, write_json

IMAGE_SIZE = 32
PIXEL_MEAN = (0.5, 0.5, 0.5)
PIXEL_STD = (0.5, 0.5, 0.5)
MAX_FILE_BYTES = 16 * 1024 * 1024

PRESETS = {
    # (vision hidden, layers, heads), (text hidden, layers, heads), projection dim
    "tiny": ((32, 1, 2), (32, 1, 2), 32),  # tests: builds and trains a step in well under a second on a CPU
    "base": ((192, 4, 6), (128, 3, 4), 128),  # ~2.5 M parameters, ~5 MB in fp16
}


def build_tokenizer():
    """The captions' closed vocabulary, word-level (the prior's tokenizer, same ids)."""
    from dreammotion.models.tokenizer import build_word_tokenizer

    return build_word_tokenizer(vocabulary(), max_length=MAX_TOKENS)


def clip_config(preset: str, tokenizer):
    """CLIPConfig of a preset. The text tower pools at the first <eos> (transformers does so when
    ``eos_token_id`` is not the legacy 2), so its config must carry the tokenizer's special ids."""
    from transformers import CLIPConfig

    from dreammotion.models.tokenizer import text_tower_config

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}: {' or '.join(PRESETS)}")
    (v_hidden, v_layers, v_heads), (t_hidden, t_layers, t_heads), projection = PRESETS[preset]
    if tokenizer.eos_token_id == 2:
        raise ValueError("the tokenizer's <eos> id is 2: CLIPTextModel would pool at the largest token id instead")
    text = text_tower_config(tokenizer, t_hidden, t_layers, t_heads)
    vision = dict(
        image_size=IMAGE_SIZE,
        patch_size=4,
        num_channels=3,
        hidden_size=v_hidden,
        intermediate_size=4 * v_hidden,
        num_hidden_layers=v_layers,
        num_attention_heads=v_heads,
    )
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection)


def image_processor():
    """The processor the metric code applies to every frame (see the module docstring)."""
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(
        do_resize=True,
        size={"shortest_edge": IMAGE_SIZE},
        resample=3,  # PIL bicubic, as OpenAI CLIP's processor
        do_center_crop=True,
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=list(PIXEL_MEAN),
        image_std=list(PIXEL_STD),
        do_convert_rgb=True,
    )


def build_clip(preset: str = "base", seed: int = 0):
    """A fresh (CLIPModel, tokenizer, image processor)."""
    from transformers import CLIPModel

    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    model = CLIPModel(clip_config(preset, tokenizer))
    return model, tokenizer, image_processor()


def save_clip(folder: Path, model, tokenizer, processor, info: dict) -> None:
    """fp16 weights, tokenizer, processor and training.json, written atomically (the folder is
    replaced whole, so a model card from an earlier evaluation is gone: evaluate again)."""
    with atomic_dir(folder) as tmp:
        model.to(torch.float16).save_pretrained(tmp, max_shard_size="15MB")
        model.to(torch.float32)
        tokenizer.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        write_json(tmp / "training.json", info)
        too_large = [p.name for p in tmp.iterdir() if p.stat().st_size >= MAX_FILE_BYTES]
        if too_large:
            raise ValueError(f"files of 16 MiB or more in the model folder: {too_large}")


def load_weights(folder: Path, model) -> dict:
    """Copy a saved model's weights into a fresh model of the same config; returns its training.json."""
    from transformers import CLIPModel

    saved = CLIPModel.from_pretrained(folder, dtype=torch.float32)
    model.load_state_dict(saved.state_dict())
    return read_training_record(folder)


def n_parameters(model) -> dict[str, int]:
    return {
        "vision": sum(p.numel() for p in model.vision_model.parameters()) + model.visual_projection.weight.numel(),
        "text": sum(p.numel() for p in model.text_model.parameters()) + model.text_projection.weight.numel(),
    }
