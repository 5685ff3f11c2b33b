"""CLIP text alignment and CLIP frame consistency, through transformers' CLIPModel.

The model comes from a hub id (e.g. ``openai/clip-vit-base-patch32``, read from the local hub cache
when offline) or a local folder holding a saved CLIPModel with its tokenizer and image processor.
Both metrics are plain cosines in [-1, 1] (not the x100 "CLIPScore" scaling).

Every result names the model it was computed with (``clip_model``: a folder's name, e.g.
``dreammotion-shapes-clip``, or the hub id, e.g. ``openai/clip-vit-base-patch32``): the cosines of
different CLIP models are on different scales, and a domain model must never pass for OpenAI CLIP.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dreammotion.metrics.results import MetricUnavailable, from_exception, ok
from dreammotion.model_files import looks_like_path  # one rule for every model path


@dataclass
class ClipScorer:
    model: torch.nn.Module
    tokenizer: object
    image_processor: object
    source: str

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def name(self) -> str:
        """What the tables call the model (``clip_model``): see ``clip_model_name``."""
        return clip_model_name(self.source)


def clip_model_name(pretrained: str) -> str:
    """The name a CLIP model is reported under: a local folder's own name (``.../dreammotion-shapes-clip``
    -> ``dreammotion-shapes-clip``), a hub id as written (``openai/clip-vit-base-patch32``)."""
    folder = Path(pretrained).expanduser()
    if folder.is_dir() or looks_like_path(pretrained):
        return folder.resolve().name if folder.exists() else folder.name
    return pretrained


def load_clip(pretrained: str | None, device: str = "cpu") -> ClipScorer:
    """Load CLIPModel + tokenizer + image processor, or raise MetricUnavailable saying why not."""
    from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

    if not pretrained:
        raise MetricUnavailable("no CLIP model configured (config clip.pretrained is empty)")
    folder = Path(pretrained).expanduser()
    if not folder.exists() and looks_like_path(pretrained):
        raise MetricUnavailable(f"CLIP folder {folder} does not exist (config clip.pretrained)")
    if folder.exists() and not folder.is_dir():
        raise MetricUnavailable(f"CLIP path {folder} is a file; expected a folder saved by CLIPModel.save_pretrained")
    source = str(folder) if folder.is_dir() else pretrained
    try:
        model = CLIPModel.from_pretrained(source)
        tokenizer = AutoTokenizer.from_pretrained(source)
        image_processor = AutoImageProcessor.from_pretrained(source)
    except (OSError, ValueError) as err:
        # Offline without a cached copy, or a folder without the model/tokenizer/processor files.
        raise MetricUnavailable(f"cannot load CLIP from {source!r}: {err}") from err
    model.eval().to(device)
    return ClipScorer(model=model, tokenizer=tokenizer, image_processor=image_processor, source=source)


def _embedding(output) -> torch.Tensor:
    # transformers >= 5 returns a ModelOutput whose pooler_output is the projected embedding.
    return output if isinstance(output, torch.Tensor) else output.pooler_output


@torch.no_grad()
def image_embeddings(scorer: ClipScorer, frames: np.ndarray, batch_size: int = 16) -> torch.Tensor:
    """(F, H, W, 3) uint8 -> (F, D) L2-normalised CLIP image embeddings."""
    parts = []
    for start in range(0, len(frames), batch_size):
        batch = [frame for frame in frames[start : start + batch_size]]
        pixels = scorer.image_processor(images=batch, return_tensors="pt")["pixel_values"].to(scorer.device)
        parts.append(_embedding(scorer.model.get_image_features(pixel_values=pixels)))
    return torch.nn.functional.normalize(torch.cat(parts).float(), dim=-1)


@torch.no_grad()
def text_embedding(scorer: ClipScorer, prompt: str) -> tuple[torch.Tensor, bool]:
    """(D,) L2-normalised CLIP text embedding, and whether the prompt had to be truncated."""
    limit = scorer.tokenizer.model_max_length
    needed = len(scorer.tokenizer(prompt, truncation=False)["input_ids"])
    tokens = scorer.tokenizer([prompt], padding=True, truncation=True, max_length=limit, return_tensors="pt")
    tokens = {k: v.to(scorer.device) for k, v in tokens.items() if k in ("input_ids", "attention_mask")}
    embedding = _embedding(scorer.model.get_text_features(**tokens))[0].float()
    return torch.nn.functional.normalize(embedding, dim=-1), needed > limit


def clip_text_alignment(scorer: ClipScorer, frames: np.ndarray, prompt: str) -> dict:
    images = image_embeddings(scorer, frames)
    text, truncated = text_embedding(scorer, prompt)
    per_frame = (images @ text).tolist()
    return ok(float(np.mean(per_frame)), per_frame=per_frame, clip_model=scorer.name, model=scorer.source,
              prompt_truncated=truncated)


def clip_frame_consistency(scorer: ClipScorer, frames: np.ndarray) -> dict:
    if len(frames) < 2:
        raise MetricUnavailable("CLIP frame consistency needs at least 2 frames")
    images = image_embeddings(scorer, frames)
    per_pair = (images[:-1] * images[1:]).sum(dim=-1).tolist()
    return ok(float(np.mean(per_pair)), per_pair=per_pair, clip_model=scorer.name, model=scorer.source)


def compute_clip_metrics(
    edit_frames: np.ndarray, target_prompt: str, pretrained: str | None, device: str = "cpu",
    scorer: ClipScorer | None = None,
) -> dict:
    """Both CLIP metrics of the edit; if the model is missing, both are reported missing with the reason.

    `scorer`: an already loaded model (the metrics stage loads it once for every metric that uses it)."""
    try:
        scorer = scorer if scorer is not None else load_clip(pretrained, device)
    except Exception as err:  # missing model -> missing; a broken one -> failed; both with the reason
        result = from_exception(err)
        return {"clip_text_alignment": result, "clip_frame_consistency": dict(result)}
    results = {}
    for name, compute in (
        ("clip_text_alignment", lambda: clip_text_alignment(scorer, edit_frames, target_prompt)),
        ("clip_frame_consistency", lambda: clip_frame_consistency(scorer, edit_frames)),
    ):
        try:
            results[name] = compute()
        except Exception as err:  # recorded as failed with its type and message, never dropped
            results[name] = from_exception(err)
    return results
