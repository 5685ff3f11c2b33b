"""segment-anything masks: a box or points on one frame, propagated through the clip.

The prompt frame is segmented from the manifest prompt. Every next (and, for a prompt on a later
frame, every previous) frame is prompted with the bounding box of its neighbour's mask and that
mask's low-resolution logits as ``mask_input``, which is how SAM's own interactive loop refines.
Image embeddings are computed in batches by calling ``model.image_encoder`` on stacked,
preprocessed frames (the expensive part); the prompt/decoder step runs per frame through
``SamPredictor``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from segment_anything import SamPredictor, sam_model_registry
from segment_anything.modeling import Sam
from segment_anything.utils.transforms import ResizeLongestSide

from dreammotion.errors import InputError
from dreammotion.masks.ops import empty_mask_error, mask_bbox, propagation_order
from dreammotion.masks.spec import BoxPrompt, PromptSpec, spec_error
from dreammotion.utils.devices import resolve_device

# File names of the official checkpoints (github.com/facebookresearch/segment-anything#model-checkpoints).
OFFICIAL_CHECKPOINTS = {
    "vit_b": "sam_vit_b_01ec64.pth",
    "vit_l": "sam_vit_l_0b3195.pth",
    "vit_h": "sam_vit_h_4b8939.pth",
    "default": "sam_vit_h_4b8939.pth",  # segment-anything's "default" is ViT-H
    "tiny": "a state dict from dreammotion.masks.tiny_sam.save_tiny_sam",
}


def sam_builders() -> dict[str, Callable[..., Sam]]:
    """Model types the loader knows: segment-anything's registry plus ``tiny`` (random, for tests)."""
    from dreammotion.masks.tiny_sam import build_tiny_sam

    return {**sam_model_registry, "tiny": build_tiny_sam}


def load_sam(checkpoint: str | Path | None, model_type: str = "vit_b", device: str = "cpu", *, context: str = "") -> SamPredictor:
    """Build SAM of ``model_type`` with the weights in ``checkpoint`` and wrap it in a SamPredictor.

    A missing checkpoint is an error that says which file to put where; there is no fallback.
    """
    builders = sam_builders()
    if model_type not in builders:
        raise spec_error(context, f"unknown SAM model type {model_type!r}; choose one of {sorted(builders)}")
    official_name = OFFICIAL_CHECKPOINTS.get(model_type, "the checkpoint matching it")
    if checkpoint is None or not Path(checkpoint).is_file():
        where = f"at {Path(checkpoint).resolve()}" if checkpoint is not None else "somewhere on disk"
        raise spec_error(
            context,
            f"segment-anything checkpoint {'not configured' if checkpoint is None else 'not found'}: put the "
            f"{model_type} checkpoint (e.g. {official_name} from the segment-anything release, "
            f"https://github.com/facebookresearch/segment-anything#model-checkpoints) {where} "
            "or set masks.sam.checkpoint (CLI --sam-checkpoint) to its path, with masks.sam.model_type "
            "(--sam-model-type) matching it",
        )
    try:
        model = builders[model_type](checkpoint=str(checkpoint))
    except (RuntimeError, KeyError, EOFError, OSError, pickle.UnpicklingError) as err:
        raise InputError(
            f"{context + ': ' if context else ''}cannot load SAM checkpoint {checkpoint} as model type "
            f"{model_type!r} ({type(err).__name__}: {_first_line(err)}); is it the {official_name} file?"
        ) from None
    model.to(device=resolve_device(device))
    model.eval()
    return SamPredictor(model)


def _first_line(err: Exception) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else "no message"


@torch.inference_mode()
def encode_frames(predictor: SamPredictor, frames: np.ndarray, batch_size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """SAM image embeddings of all RGB frames (F, C, h, w), and the resized input size (h, w).

    Does what ``SamPredictor.set_image`` does (resize longest side, normalise, pad, encode), but for
    ``batch_size`` frames per encoder call.
    """
    model = predictor.model
    transform = ResizeLongestSide(model.image_encoder.img_size)
    embeddings = []
    input_size: tuple[int, int] = (0, 0)
    for start in range(0, len(frames), batch_size):
        resized = np.stack([transform.apply_image(frame) for frame in frames[start : start + batch_size]])
        batch = torch.as_tensor(resized, device=predictor.device).permute(0, 3, 1, 2).contiguous()
        input_size = (batch.shape[-2], batch.shape[-1])
        embeddings.append(model.image_encoder(model.preprocess(batch.float())))
    return torch.cat(embeddings), input_size


def set_embedding(
    predictor: SamPredictor, embedding: torch.Tensor, input_size: tuple[int, int], original_size: tuple[int, int]
) -> None:
    """Put one precomputed embedding into the predictor, as ``set_torch_image`` would have left it."""
    predictor.reset_image()
    predictor.features = embedding[None]
    predictor.input_size = input_size
    predictor.original_size = original_size
    predictor.is_image_set = True


def segment_with_sam(
    frames: np.ndarray,
    prompt: PromptSpec,
    predictor: SamPredictor,
    *,
    batch_size: int | None = None,
    context: str = "",
) -> tuple[np.ndarray, dict]:
    """Binary masks (F, H, W) bool for RGB ``frames`` (F, H, W, 3) uint8, and a report (scores, batch)."""
    num_frames, height, width = frames.shape[:3]
    if batch_size is None:
        # Batching the encoder pays on a GPU; on a CPU, ViT-H's global attention makes big batches heavy.
        batch_size = 4 if predictor.device.type == "cuda" else 1
    embeddings, input_size = encode_frames(predictor, frames, batch_size)

    masks = np.zeros((num_frames, height, width), dtype=bool)
    low_res_logits: dict[int, np.ndarray] = {}
    scores = [0.0] * num_frames

    set_embedding(predictor, embeddings[prompt.frame], input_size, (height, width))
    masks[prompt.frame], scores[prompt.frame], low_res_logits[prompt.frame] = _predict_from_prompt(predictor, prompt)
    if not masks[prompt.frame].any():
        raise empty_mask_error(context, prompt.text, "sam", prompt.frame)

    for frame, source in propagation_order(num_frames, prompt.frame):
        set_embedding(predictor, embeddings[frame], input_size, (height, width))
        box = np.array(mask_bbox(masks[source]), dtype=np.float32)
        predicted, quality, logits = predictor.predict(box=box, mask_input=low_res_logits[source][None], multimask_output=False)
        masks[frame], scores[frame], low_res_logits[frame] = predicted[0], float(quality[0]), logits[0]
        if not masks[frame].any():
            raise empty_mask_error(context, prompt.text, "sam", frame)
    predictor.reset_image()
    return masks, {"batch_size": batch_size, "predicted_iou": [round(s, 4) for s in scores]}


def _predict_from_prompt(predictor: SamPredictor, prompt: PromptSpec) -> tuple[np.ndarray, float, np.ndarray]:
    """Mask, SAM's predicted IoU and low-res logits on the prompt frame."""
    if isinstance(prompt, BoxPrompt):
        predicted, quality, logits = predictor.predict(box=np.array(prompt.box, dtype=np.float32), multimask_output=False)
        return predicted[0], float(quality[0]), logits[0]
    # A single click is ambiguous (part / object / group): ask for three masks and keep the best scored.
    predicted, quality, logits = predictor.predict(
        point_coords=np.array(prompt.points, dtype=np.float32),
        point_labels=np.array(prompt.labels, dtype=np.int64),
        multimask_output=len(prompt.points) == 1,
    )
    best = int(np.argmax(quality))
    return predicted[best], float(quality[best]), logits[best]
