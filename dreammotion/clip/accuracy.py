"""Zero-shot accuracy of dreammotion-shapes-clip, and its model card section.

    python -m dreammotion.clip.accuracy --model data/models/dreammotion-shapes-clip \
        --out data/models/dreammotion-shapes-clip/evaluation.json --n 200

For each rendered clip and each attribute (colour, shape, background, texture, size, direction) the
model picks a caption among alternatives that differ from the true caption in that attribute only;
accuracy is how often it picks the true one. Two scorers:

- ``frames``: the mean over frames of the frame-caption cosine, i.e. the value of
  ``dreammotion.metrics.clip.clip_text_alignment``, computed through that module's loader, image
  processor and image embeddings (so the card measures what the metric sees). Single frames cannot
  show direction: its direction accuracy is expected near chance and reported as such;
- ``clip``: the clip embedding (mean frame embedding plus the motion image's, see
  ``dreammotion.clip.inputs``), the only one that can read direction.

Clips come from held-out (colour, shape) pairs (never in training) and from training pairs, clean
and under ``dreammotion.prior.classify.DEGRADATIONS`` (noise, blur, colour shift, all three), plus
clean renders at 64x64 (edited frames at the second stage's size, downscaled by the processor).
The JSON is written to ``--out``, and the "Evaluation" section of the model folder's README.md
(between ``<!-- evaluation:begin -->`` and ``<!-- evaluation:end -->``) is rewritten from it;
``--from-report`` rewrites the card from an existing JSON without a model.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from dreammotion.clip import MODEL_NAME
from dreammotion.clip.inputs import caption_with, motion_image
from dreammotion.prior.classify import DEGRADATIONS, degrade
from dreammotion.synthetic.captions import caption, size_word
from dreammotion.synthetic.render import (
    BACKGROUND_COLOURS,
    DIRECTIONS,
    OBJECT_COLOURS,
    SHAPES,
    TEXTURES,
    ClipSpec,
    colours_compatible,
    render,
    sample_spec,
)
from dreammotion import model_files
from dreammotion.model_files import read_training_record
from dreammotion.utils.atomic import write_json
from dreammotion.utils.devices import resolve_device

FRAMES = 8
ATTRIBUTES = ("colour", "shape", "background", "texture", "size", "direction")
SCORERS = ("frames", "clip")
GROUPS = ("held_out", "training")
# A size inside each caption word's range (captions.size_word): small, no word, large.
SIZE_EXAMPLES = {"small": 0.12, "medium": 0.165, "large": 0.21}
CARD_BEGIN, CARD_END = "<!-- evaluation:begin -->", "<!-- evaluation:end -->"


def conditions() -> dict[str, dict]:
    """Evaluation conditions: the classifier's degradations at 32x32, and clean 64x64 renders."""
    out = {name: {"size": 32, **settings} for name, settings in DEGRADATIONS.items()}
    out["size_64"] = {"size": 64}
    return out


def alternatives(spec: ClipSpec, attribute: str) -> tuple[list[str], int]:
    """Captions that differ from `spec`'s in `attribute` only, and the index of the true one.
    Colours and backgrounds that could not be rendered together (too similar) are left out."""
    if attribute == "colour":
        values = [c for c in OBJECT_COLOURS if colours_compatible(c, spec.background)]
        truth = spec.colour
    elif attribute == "background":
        values = [b for b in BACKGROUND_COLOURS if colours_compatible(spec.colour, b)]
        truth = spec.background
    elif attribute == "shape":
        values, truth = list(SHAPES), spec.shape
    elif attribute == "texture":
        values, truth = list(TEXTURES), spec.texture
    elif attribute == "direction":
        values, truth = list(DIRECTIONS), spec.direction
    elif attribute == "size":
        values, truth = list(SIZE_EXAMPLES), size_word(spec) or "medium"
        return [caption_with(spec, size=SIZE_EXAMPLES[v]) for v in values], values.index(truth)
    else:
        raise ValueError(f"unknown attribute {attribute!r}")
    return [caption_with(spec, **{attribute: v}) for v in values], values.index(truth)


class Embedder:
    """Frame, clip and caption embeddings through ``dreammotion.metrics.clip`` (its loader, image
    processor and ``image_embeddings``); caption embeddings are cached (a closed vocabulary)."""

    def __init__(self, folder: str, device: str):
        from dreammotion.metrics.clip import load_clip

        self.scorer = load_clip(folder, device)
        self.texts: dict[str, torch.Tensor] = {}

    def frames(self, clips: list[np.ndarray]) -> torch.Tensor:
        """(N, F, D) normalised embeddings of the clips' frames, exactly as the metric computes them
        (``image_embeddings`` embeds every image on its own; batching many clips changes nothing)."""
        from dreammotion.metrics.clip import image_embeddings

        embeddings = image_embeddings(self.scorer, np.concatenate(clips), batch_size=256)
        return embeddings.reshape(len(clips), len(clips[0]), -1).cpu()

    def clips(self, clips: list[np.ndarray], frame_embeddings: torch.Tensor) -> torch.Tensor:
        """(N, D) normalised clip embeddings: mean frame embedding plus motion-image embedding."""
        from dreammotion.metrics.clip import image_embeddings

        motion = image_embeddings(self.scorer, np.stack([motion_image(c) for c in clips]), batch_size=256).cpu()
        mean_frame = torch.nn.functional.normalize(frame_embeddings.mean(dim=1), dim=-1)
        return torch.nn.functional.normalize(mean_frame + motion, dim=-1)

    @torch.no_grad()
    def captions(self, prompts: list[str]) -> torch.Tensor:
        """(N, D) normalised caption embeddings, tokenized as ``metrics.clip.text_embedding`` does."""
        from dreammotion.clip.train import text_features

        missing = [p for p in dict.fromkeys(prompts) if p not in self.texts]
        scorer = self.scorer
        for start in range(0, len(missing), 512):
            chunk = missing[start : start + 512]
            tokens = scorer.tokenizer(chunk, padding=True, truncation=True, max_length=scorer.tokenizer.model_max_length,
                                      return_tensors="pt")
            features = text_features(scorer.model, tokens.input_ids.to(scorer.device), tokens.attention_mask.to(scorer.device))
            for prompt, embedding in zip(chunk, torch.nn.functional.normalize(features.float(), dim=-1).cpu()):
                self.texts[prompt] = embedding
        return torch.stack([self.texts[p] for p in prompts])


def evaluate_clips(embedder: Embedder, specs: list[ClipSpec], clips: list[np.ndarray]) -> dict:
    """Accuracy per attribute and scorer, and the metric values of the true captions."""
    hits = {a: {s: [] for s in SCORERS} for a in ATTRIBUTES}
    alignment, consistency = [], []
    all_frames = embedder.frames(clips)
    all_clips = embedder.clips(clips, all_frames)
    for spec, frame_embeddings, clip_embedding in zip(specs, all_frames, all_clips):
        embeddings = {"frames": frame_embeddings, "clip": clip_embedding[None]}
        alignment.append(float((frame_embeddings @ embedder.captions([caption(spec)])[0]).mean()))
        consistency.append(float((frame_embeddings[:-1] * frame_embeddings[1:]).sum(dim=-1).mean()))
        for attribute in ATTRIBUTES:
            prompts, truth = alternatives(spec, attribute)
            texts = embedder.captions(prompts)
            for scorer in SCORERS:
                scores = (embeddings[scorer] @ texts.T).mean(dim=0)  # frames: mean over frames
                hits[attribute][scorer].append(int(scores.argmax()) == truth)
    return {
        "n": len(specs),
        "accuracy": {a: {s: float(np.mean(hits[a][s])) for s in SCORERS} for a in ATTRIBUTES},
        "text_alignment_mean": float(np.mean(alignment)),
        "frame_consistency_mean": float(np.mean(consistency)),
    }


def chance_levels(specs: list[ClipSpec]) -> dict[str, float]:
    """Accuracy of a uniform guess among each attribute's alternatives, averaged over `specs`."""
    return {a: float(np.mean([1 / len(alternatives(s, a)[0]) for s in specs])) for a in ATTRIBUTES}


def evaluate(folder: str, *, n: int, seed: int, device: str) -> dict:
    embedder = Embedder(folder, device)
    rng = np.random.default_rng(seed)
    report: dict = {"name": MODEL_NAME, "n": n, "seed": seed, "frames": FRAMES, "attributes": list(ATTRIBUTES),
                    "scorers": list(SCORERS), "conditions": conditions(), "groups": {}, "chance": {}}
    start = time.time()
    for group in GROUPS:
        specs = [sample_spec(rng, FRAMES, held_out="only" if group == "held_out" else "exclude") for _ in range(n)]
        report["chance"][group] = chance_levels(specs)
        renders = {size: [render(s, size, FRAMES)[0] for s in specs] for size in (32, 64)}
        report["groups"][group] = {}
        for name, settings in conditions().items():
            settings = dict(settings)
            size = settings.pop("size")
            degrade_rng = np.random.default_rng(seed)
            clips = [degrade(c, degrade_rng, **settings) if settings else c for c in renders[size]]
            report["groups"][group][name] = evaluate_clips(embedder, specs, clips)
    report["seconds"] = round(time.time() - start, 1)
    return report


# -- the model card ------------------------------------------------------------------------------


def card_header() -> str:
    """The model card's fixed part, written when the folder's README.md does not exist yet."""
    return f"""# {MODEL_NAME}

A small video-text dual encoder for the synthetic moving-shapes world of `dreammotion`
(`dreammotion/synthetic/`): a transformers `CLIPModel` whose image tower reads 32x32 RGB images
(ViT, patch 4) and whose text tower reads the captions' word-level tokenizer, trained from scratch
with a contrastive loss on clips rendered on the fly (`python -m dreammotion.clip.train`). It is
**not OpenAI CLIP**: its cosines are on its own scale, it knows only the captions' vocabulary (8
colours, 5 shapes, 4 backgrounds, 3 textures, 3 sizes, 8 directions) and only rendered-looking
frames. Metrics computed with it carry its name (`clip_model: {MODEL_NAME}`) beside the value.

Load it by path like any CLIP checkpoint: `dreammotion.metrics.clip.load_clip("data/models/{MODEL_NAME}")`
(weights fp16, `tokenizer.json`, `preprocessor_config.json`: shortest edge to 32 bicubic, centre
crop 32, [0, 255] to [-1, 1]).

- **Frames.** A single frame is embedded as a whole image: what `clip_text_alignment` and
  `clip_frame_consistency` use. Trained on one random frame per clip against its caption, with
  clips whose captions differ only in direction counted as matches (a frame cannot show it).
- **Direction.** Only the *clip embedding* sees motion: the mean frame embedding plus the embedding
  of the clip's motion image (the saliency of the first, middle and last frame as its three
  channels; `dreammotion/clip/inputs.py`). The metric code scores frames only, so
  `clip_text_alignment` computed with this model does not measure direction.
- **Held-out pairs.** Training never shows the (colour, shape) pairs of
  `dreammotion.synthetic.render.HELD_OUT_PAIRS`; accuracy on them is compositional generalisation.
- **Degradations.** Training frames are blurred, colour-shifted and noised at random
  (`dreammotion.clip.inputs.AUGMENT`), because the model scores edited videos, not clean renders.

## Evaluation

{CARD_BEGIN}
{CARD_END}
"""


def _pct(value: float) -> str:
    return f"{value:.3f}"


def card_section(report: dict) -> str:
    """The card's Evaluation section, from an evaluation.json report."""
    training = report.get("training") or {}
    clips_seen = training.get("total_clips_seen")
    trained = (f"weights after {clips_seen:,} training clips ({training.get('total_train_seconds')} s on "
               f"{training.get('device')}, preset {training.get('preset')})" if clips_seen is not None else "training unknown")
    groups, chance = report["groups"], report["chance"]
    lines = [
        CARD_BEGIN,
        f"Measured by `python -m dreammotion.clip.accuracy` ({report['n']} clips per group, seed {report['seed']}, "
        f"{trained}); data: `evaluation.json`. Zero-shot: the model picks the true caption among captions that "
        "differ in one attribute. `frames` = mean frame-caption cosine (the value `clip_text_alignment` reports); "
        "`clip` = clip embedding (frames + motion image).",
        "",
        "Clean 32x32 renders:",
        "",
        "| attribute | chance | held-out pairs, frames | held-out pairs, clip | training pairs, frames | training pairs, clip |",
        "|---|---|---|---|---|---|",
    ]
    for attribute in report["attributes"]:
        held, train = groups["held_out"]["none"]["accuracy"][attribute], groups["training"]["none"]["accuracy"][attribute]
        lines.append(f"| {attribute} | {_pct(chance['held_out'][attribute])} | {_pct(held['frames'])} | {_pct(held['clip'])} "
                     f"| {_pct(train['frames'])} | {_pct(train['clip'])} |")
    appearance = [a for a in report["attributes"] if a != "direction"]
    lines += [
        "",
        "Held-out pairs under degradations (appearance attributes by the `frames` scorer, direction by `clip`):",
        "",
        "| condition | " + " | ".join(appearance) + " | direction (clip) | mean text alignment | mean frame consistency |",
        "|---|" + "---|" * (len(appearance) + 3),
    ]
    for name, result in groups["held_out"].items():
        acc = result["accuracy"]
        cells = [_pct(acc[a]["frames"]) for a in appearance] + [_pct(acc["direction"]["clip"])]
        lines.append(f"| {name} | " + " | ".join(cells)
                     + f" | {result['text_alignment_mean']:.3f} | {result['frame_consistency_mean']:.3f} |")
    lines += [
        "",
        "Conditions: " + "; ".join(f"`{k}` {_describe(v)}" for k, v in report["conditions"].items()) + ".",
        "Mean text alignment is `clip_text_alignment` of the true caption (a cosine of this model, "
        "not comparable with OpenAI CLIP's); mean frame consistency is `clip_frame_consistency`.",
        CARD_END,
    ]
    return "\n".join(lines)


def _describe(settings: dict) -> str:
    parts = [f"{settings['size']}x{settings['size']}"]
    if settings.get("noise"):
        parts.append(f"noise std {settings['noise']}")
    if settings.get("blur"):
        parts.append(f"blur sigma {settings['blur']}")
    if settings.get("shift"):
        parts.append(f"colour shift +-{settings['shift']}")
    return ", ".join(parts) if len(parts) > 1 else parts[0] + " clean"


def write_card_section(card: Path, report: dict) -> None:
    """Rewrite the Evaluation section of `card` (creating the card from ``card_header`` if absent)."""
    model_files.write_card_section(card, card_section(report), (CARD_BEGIN, CARD_END), new_card=card_header())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=None, help="model folder (not needed with --from-report)")
    parser.add_argument("--out", type=Path, default=None, help="evaluation.json to write")
    parser.add_argument("--n", type=int, default=200, help="clips per group (held-out pairs, training pairs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--card", type=Path, default=None, help="model card to rewrite (default: MODEL/README.md)")
    parser.add_argument("--from-report", type=Path, default=None,
                        help="rewrite --card from this evaluation.json (measured earlier) instead of evaluating")


def run(args: argparse.Namespace) -> int:
    if args.from_report:
        return model_files.card_from_report(args.card, args.from_report, write_card_section)
    if not args.model:
        raise SystemExit("--model is required (unless --from-report)")
    device = resolve_device(args.device)
    report = evaluate(str(args.model), n=args.n, seed=args.seed, device=device)
    info = read_training_record(args.model)
    if info:
        report["training"] = {k: info.get(k) for k in ("preset", "device", "total_steps", "total_clips_seen",
                                                       "total_train_seconds", "parameters")}
    report["model"] = str(args.model)
    report["command"] = f"python -m dreammotion.clip.accuracy --model {args.model} --n {args.n} --seed {args.seed}"
    if args.out:
        write_json(args.out, report)
    write_card_section(args.card or args.model / "README.md", report)
    summary = {g: {c: {a: report["groups"][g][c]["accuracy"][a]["clip" if a == "direction" else "frames"]
                       for a in ATTRIBUTES} for c in ("none", "all")} for g in GROUPS}
    print(json.dumps(summary), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dreammotion.clip.accuracy", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
