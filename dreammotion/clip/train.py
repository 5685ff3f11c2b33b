"""Train dreammotion-shapes-clip on synthetic clips and captions rendered on the fly.

    python -m dreammotion.clip.train --out data/models/dreammotion-shapes-clip --minutes 5

Each step renders a batch of clips on the training device (``render_batch_torch``; never a
(colour, shape) pair of ``HELD_OUT_PAIRS``, as the prior), degrades them like edited videos
(``inputs.augment``: blur, colour shift, noise) and trains two contrastive terms with one shared
temperature:

- frame term: one *random frame* per clip against its caption. A random frame, not the clip mean:
  the metric code scores single frames (``clip_text_alignment`` averages per-frame cosines), and a
  mean of 8 frames is a smeared shape that no edited frame looks like. A frame cannot show the
  direction, so clips whose captions differ only in direction count as positives of each other
  (``inputs.appearance_key``) instead of being pushed apart for a difference the frame cannot see;
- clip term: the clip embedding (frame embedding + motion-image embedding, normalised; see
  ``dreammotion.clip.inputs``) against the caption.

Both are symmetric InfoNCE (image->text and text->image cross-entropy). The frame term's targets
are spread over every positive in the batch; without that, two identical-looking frames with
"...moving left..." and "...moving right..." captions would be pulled apart (a test measures it).
The clip term uses plain one-hot targets: repeated identical captions in a batch (a closed
vocabulary repeats some) give identical text embeddings, for which spreading the targets would not
change the loss or its gradient.
AdamW, warm-up then cosine decay to 10% of the learning rate over the wall-clock budget, bf16
autocast on CUDA; checkpoints (and ``--archive`` pieces) every ``--checkpoint-minutes``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dreammotion.clip import MODEL_NAME
from dreammotion.clip.inputs import AUGMENT, appearance_key, augment, motion_images_torch, to_pixel_values
from dreammotion.clip.model import IMAGE_SIZE, build_clip, load_weights, n_parameters, save_clip
from dreammotion.prior.train import train_for_budget
from dreammotion.synthetic.captions import MAX_TOKENS, caption
from dreammotion.synthetic.render import HELD_OUT_PAIRS, render_batch_torch, sample_spec, specs_to_tensors
from dreammotion.utils.devices import resolve_device

FRAMES = 8
MAX_LOGIT_SCALE = math.log(100.0)  # CLIP's clamp of the learned temperature


def image_features(model, pixel_values: torch.Tensor) -> torch.Tensor:
    """Projected, unnormalised image embeddings: what ``CLIPModel.get_image_features`` returns."""
    return model.visual_projection(model.vision_model(pixel_values=pixel_values).pooler_output)


def text_features(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Projected, unnormalised text embeddings: what ``CLIPModel.get_text_features`` returns."""
    output = model.text_model(input_ids=input_ids, attention_mask=attention_mask)
    return model.text_projection(output.pooler_output)


def clip_embedding(frame_embeddings: torch.Tensor, motion_embeddings: torch.Tensor) -> torch.Tensor:
    """Normalised clip embedding from normalised frame and motion-image embeddings (their sum)."""
    return F.normalize(frame_embeddings + motion_embeddings, dim=-1)


def positives_matrix(keys: list[str], device) -> torch.Tensor:
    """(B, B) float: 1 where items i and j share the key (so the diagonal is 1)."""
    ids = {key: index for index, key in enumerate(dict.fromkeys(keys))}
    codes = torch.tensor([ids[k] for k in keys], device=device)
    return (codes[:, None] == codes[None, :]).float()


def contrastive_loss(images: torch.Tensor, texts: torch.Tensor, positives: torch.Tensor,
                     logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE of normalised (B, D) embeddings with soft targets spread over `positives`."""
    logits = logit_scale.exp() * images.float() @ texts.float().T
    targets = positives / positives.sum(dim=1, keepdim=True)
    image_to_text = -(targets * logits.log_softmax(dim=1)).sum(dim=1).mean()
    text_to_image = -(targets.T * logits.T.log_softmax(dim=1)).sum(dim=1).mean()
    return 0.5 * (image_to_text + text_to_image)


def render_training_batch(rng: np.random.Generator, batch: int, device, generator: torch.Generator):
    """Degraded clips (B, F, H, W, 3) in [0, 255] and their specs; no held-out pair."""
    specs = [sample_spec(rng, FRAMES, held_out="exclude") for _ in range(batch)]
    frames, _ = render_batch_torch(specs_to_tensors(specs, device=device), size=IMAGE_SIZE, frames=FRAMES)
    return augment(frames, generator), specs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="model folder to write (CLIPModel layout)")
    parser.add_argument("--minutes", type=float, default=5.0, help="wall-clock training budget")
    parser.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: no limit)")
    parser.add_argument("--batch", type=int, default=512, help="clips per step")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--warmup", type=int, default=200, help="linear warm-up steps")
    parser.add_argument("--preset", default="base", choices=("base", "tiny"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cuda, cpu, ...")
    parser.add_argument("--checkpoint-minutes", type=float, default=2.0)
    parser.add_argument("--archive", type=Path, default=None, help="also write PREFIX.tar.part* at each checkpoint")
    parser.add_argument("--log-every", type=int, default=100)
    parser.add_argument("--init-from", type=Path, default=None, help="continue from the weights of a saved model folder")


class ClipTrainer:
    """Model, optimiser and one training step."""

    def __init__(self, args: argparse.Namespace, device: torch.device):
        if device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.args, self.device = args, device
        self.model, self.tokenizer, self.processor = build_clip(args.preset, args.seed)
        self.previous = load_weights(args.init_from, self.model) if args.init_from else {}
        if self.previous and self.previous.get("preset") not in (None, args.preset):
            raise ValueError(f"--init-from {args.init_from} is preset {self.previous['preset']!r}, not {args.preset!r}")
        self.model.to(device).train()
        self.n_params = n_parameters(self.model)
        fused = {"fused": True} if device.type == "cuda" else {}
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=args.lr, weight_decay=args.weight_decay, **fused)
        self.rng = np.random.default_rng(args.seed)
        self.generator = torch.Generator(device=device).manual_seed(args.seed)
        self.autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
        )

    def batch(self) -> dict:
        """Pixel values of one random frame and the motion image per clip, token ids, positives."""
        frames, specs = render_training_batch(self.rng, self.args.batch, self.device, self.generator)
        b = frames.shape[0]
        chosen = torch.randint(0, FRAMES, (b,), device=self.device, generator=self.generator)
        single = frames[torch.arange(b, device=self.device), chosen]  # (B, H, W, 3)
        pixels = to_pixel_values(torch.cat([single, motion_images_torch(frames)]))
        captions = [caption(s) for s in specs]
        tokens = self.tokenizer(captions, padding="max_length", max_length=MAX_TOKENS, truncation=True, return_tensors="pt")
        return {
            "pixel_values": pixels,
            "input_ids": tokens.input_ids.to(self.device, non_blocking=True),
            "attention_mask": tokens.attention_mask.to(self.device, non_blocking=True),
            "same_appearance": positives_matrix([appearance_key(s) for s in specs], self.device),
            "specs": specs,
        }

    def losses(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(frame term, clip term) of one batch, as 0-d tensors (no GPU sync)."""
        model = self.model
        with self.autocast:
            images = F.normalize(image_features(model, batch["pixel_values"]).float(), dim=-1)
            texts = F.normalize(text_features(model, batch["input_ids"], batch["attention_mask"]).float(), dim=-1)
        frame_embeddings, motion_embeddings = images.chunk(2)
        frame_loss = contrastive_loss(frame_embeddings, texts, batch["same_appearance"], model.logit_scale)
        one_hot = torch.eye(texts.shape[0], device=texts.device)
        clip_loss = contrastive_loss(clip_embedding(frame_embeddings, motion_embeddings), texts, one_hot,
                                     model.logit_scale)
        return frame_loss, clip_loss

    def step(self, batch: dict, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        frame_loss, clip_loss = self.losses(batch)
        self.optimizer.zero_grad(set_to_none=True)
        (frame_loss + clip_loss).backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        with torch.no_grad():
            self.model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
        return frame_loss.detach(), clip_loss.detach()


def run(args: argparse.Namespace) -> int:
    device = torch.device(resolve_device(args.device))
    trainer = ClipTrainer(args, device)

    def log_fields(values: torch.Tensor) -> dict:
        frame_loss, clip_loss = values.mean(dim=0).tolist()
        return {"frame_loss": round(frame_loss, 4), "clip_loss": round(clip_loss, 4),
                "logit_scale": round(trainer.model.logit_scale.exp().item(), 2)}

    return train_for_budget(
        args, device, trainer,
        train_step=lambda lr: torch.stack(trainer.step(trainer.batch(), lr)),
        log_fields=log_fields,
        save=lambda info: save_clip(args.out, trainer.model, trainer.tokenizer, trainer.processor, info),
        model_info={"name": MODEL_NAME, "preset": args.preset, "image_size": IMAGE_SIZE, "frames": FRAMES},
        run_info={"excluded_pairs": sorted(list(pair) for pair in HELD_OUT_PAIRS), "augment": AUGMENT},
        need_a_step=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dreammotion.clip.train", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
