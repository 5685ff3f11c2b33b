"""dreammotion-shapes-clip: training, the metric code's loading and scoring, evaluation and card."""

import json
import os

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from dreammotion.clip import MODEL_NAME  # noqa: E402
from dreammotion.clip import accuracy as clip_evaluate  # noqa: E402
from dreammotion.clip import train as clip_train  # noqa: E402
from dreammotion.clip.inputs import appearance_key, augment, motion_image, motion_images_torch, to_pixel_values  # noqa: E402
from dreammotion.synthetic.captions import caption  # noqa: E402
from dreammotion.synthetic.render import (  # noqa: E402
    BACKGROUND_COLOURS, HELD_OUT_PAIRS, OBJECT_COLOURS, SHAPES, ClipSpec, colours_compatible, render,
)

STEPS, BATCH = 2, 8


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model after a short CPU training run, with its archive prefix."""
    folder = tmp_path_factory.mktemp("clip") / MODEL_NAME
    archive = folder.parent / "clip"
    code = clip_train.main(["--out", str(folder), "--minutes", "5", "--max-steps", str(STEPS), "--batch", str(BATCH),
                            "--preset", "tiny", "--device", "cpu", "--archive", str(archive), "--log-every", "1"])
    assert code == 0
    return folder, archive


def test_training_writes_a_small_fp16_folder_with_its_record(trained):
    folder, archive = trained
    info = json.loads((folder / "training.json").read_text())
    assert info["name"] == MODEL_NAME
    assert (info["steps"], info["clips_seen"], info["total_clips_seen"]) == (STEPS, STEPS * BATCH, STEPS * BATCH)
    assert info["final"] is True and len(info["loss_log"]) == STEPS
    assert sorted(map(tuple, info["excluded_pairs"])) == sorted(HELD_OUT_PAIRS)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "preprocessor_config.json"):
        assert (folder / name).stat().st_size < 16 * 1024 * 1024, name
    assert list(archive.parent.glob("clip.tar.part*")) == [archive.parent / "clip.tar.part0"]
    from safetensors import safe_open

    with safe_open(folder / "model.safetensors", "pt") as weights:
        assert {weights.get_tensor(k).dtype for k in weights.keys()} == {torch.float16}


def test_init_from_adds_up_the_runs(trained, tmp_path):
    folder, _ = trained
    out = tmp_path / "continued"
    clip_train.main(["--out", str(out), "--minutes", "5", "--max-steps", "1", "--batch", "4", "--preset", "tiny",
                     "--device", "cpu", "--init-from", str(folder)])
    info = json.loads((out / "training.json").read_text())
    assert info["steps"] == 1 and info["total_steps"] == STEPS + 1
    assert info["total_clips_seen"] == STEPS * BATCH + 4


def test_metric_code_loads_and_scores_the_folder(trained):
    from dreammotion.metrics.clip import clip_frame_consistency, clip_text_alignment, load_clip

    folder, _ = trained
    scorer = load_clip(str(folder))
    spec = ClipSpec(shape="square", colour="green", direction="down")
    for size in (32, 64):  # edited frames at either stage's size
        frames = render(spec, size=size, frames=8)[0]
        alignment = clip_text_alignment(scorer, frames, caption(spec))
        consistency = clip_frame_consistency(scorer, frames)
        assert alignment["status"] == consistency["status"] == "ok"
        assert np.isfinite(alignment["value"]) and -1 <= alignment["value"] <= 1
        assert np.isfinite(consistency["value"]) and len(consistency["per_pair"]) == 7
        assert alignment["prompt_truncated"] is False


def test_metric_embeddings_equal_the_training_path(trained):
    """The saved image processor maps a 32x32 frame exactly as training does, and the metric's
    text embedding is the training one: a wrong mean/std, resize or pooling token fails here."""
    from dreammotion.metrics.clip import image_embeddings, load_clip, text_embedding

    folder, _ = trained
    scorer = load_clip(str(folder))
    frames = render(ClipSpec(texture="checkered"), size=32, frames=2)[0]
    model = scorer.model
    with torch.no_grad():
        ours = clip_train.image_features(model, to_pixel_values(torch.tensor(frames, dtype=torch.float32)).half())
        ours = torch.nn.functional.normalize(ours.float(), dim=-1)
    torch.testing.assert_close(image_embeddings(scorer, frames), ours, atol=2e-3, rtol=0)
    prompt = "a small red circle moving up left on a striped gray background"
    embedder = clip_evaluate.Embedder(str(folder), "cpu")
    torch.testing.assert_close(embedder.captions([prompt])[0], text_embedding(scorer, prompt)[0], atol=2e-3, rtol=0)


def test_training_batches_never_hold_a_held_out_pair():
    import argparse

    parser = argparse.ArgumentParser()
    clip_train.add_arguments(parser)
    args = parser.parse_args(["--out", "unused", "--preset", "tiny", "--batch", "200", "--device", "cpu"])
    trainer = clip_train.ClipTrainer(args, torch.device("cpu"))
    pairs = set()
    for _ in range(3):
        batch = trainer.batch()
        pairs |= {(s.colour, s.shape) for s in batch["specs"]}
        assert batch["pixel_values"].shape == (400, 3, 32, 32)  # a frame and a motion image per clip
        assert batch["pixel_values"].min() >= -1 and batch["pixel_values"].max() <= 1
    assert not pairs & HELD_OUT_PAIRS
    assert len(pairs) > 20  # the rest of the 40 pairs do occur


def test_motion_image_shows_the_direction_and_torch_matches_numpy():
    spec = ClipSpec(shape="circle", colour="red", background="gray", direction="right", x0=0.25, y0=0.5, speed=0.06)
    clip = render(spec, size=32, frames=8)[0]
    image = motion_image(clip)
    columns = np.arange(32)
    centres = [(image[..., k].sum(axis=0) * columns).sum() / image[..., k].sum() for k in range(3)]
    assert centres[0] < centres[1] < centres[2]  # start, middle, end: left to right
    moving_left = render(spec.replace(direction="left", x0=0.75), size=32, frames=8)[0]
    batch = torch.tensor(np.stack([clip, moving_left]), dtype=torch.float32)
    ours = motion_images_torch(batch).numpy()
    np.testing.assert_array_equal(ours[0], image)
    np.testing.assert_array_equal(ours[1], motion_image(moving_left))


def test_augment_degrades_within_uint8_and_is_seeded():
    clip = torch.tensor(render(ClipSpec(), size=32, frames=8)[0], dtype=torch.float32)[None].repeat(16, 1, 1, 1, 1)
    first = augment(clip, torch.Generator().manual_seed(0))
    again = augment(clip, torch.Generator().manual_seed(0))
    torch.testing.assert_close(first, again)
    assert first.min() >= 0 and first.max() <= 255 and torch.equal(first, first.round())
    changed = (first != clip).flatten(1).any(dim=1)
    assert 4 <= int(changed.sum()) <= 16  # most clips are degraded, by the settings' probabilities


def test_frame_loss_does_not_pull_apart_frames_that_differ_only_in_direction():
    """Two clips with the same look and captions that differ in direction: with one-hot targets
    the loss pushes their (identical) frame embeddings apart, with the appearance positives not."""
    torch.manual_seed(0)
    texts = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    images = texts.clone()
    images[0] = images[1] = torch.nn.functional.normalize(texts[0] + texts[1], dim=0)
    scale = torch.tensor(np.log(50.0))
    same_look = torch.eye(4)
    same_look[0, 1] = same_look[1, 0] = 1

    def pull_apart(positives):
        leaf = images.clone().requires_grad_(True)
        clip_train.contrastive_loss(leaf, texts, positives, scale).backward()
        return (leaf.grad[0] - leaf.grad[1]).norm()

    assert pull_apart(torch.eye(4)) > 5
    assert pull_apart(same_look) < 0.01
    matched = clip_train.contrastive_loss(texts, texts, torch.eye(4), scale)
    assert clip_train.contrastive_loss(texts[[2, 3, 0, 1]], texts, torch.eye(4), scale) > matched + 3
    keys = [appearance_key(ClipSpec(direction=d)) for d in ("left", "right")] + [appearance_key(ClipSpec(shape="cross"))]
    torch.testing.assert_close(clip_train.positives_matrix(keys, "cpu"),
                               torch.tensor([[1.0, 1, 0], [1, 1, 0], [0, 0, 1]]))


ATTRIBUTE_WORDS = {
    "colour": set(OBJECT_COLOURS), "shape": set(SHAPES), "background": set(BACKGROUND_COLOURS),
    "texture": {"striped", "checkered"}, "size": {"small", "large"}, "direction": {"up", "down", "left", "right"},
}


@pytest.mark.parametrize("attribute", clip_evaluate.ATTRIBUTES)
def test_alternatives_differ_in_one_attribute(attribute):
    spec = ClipSpec(shape="triangle", colour="blue", background="black", texture="striped", direction="up left",
                    size=0.2)
    prompts, truth = clip_evaluate.alternatives(spec, attribute)
    assert prompts[truth] == caption(spec) and len(set(prompts)) == len(prompts) >= 3
    true_words = caption(spec).split()
    for prompt in prompts:
        changed = set(prompt.split()) ^ set(true_words)
        assert changed <= ATTRIBUTE_WORDS[attribute], (prompt, changed)
    if attribute == "colour":  # black objects do not exist; no colour too close to the black background
        assert len(prompts) == sum(colours_compatible(c, "black") for c in OBJECT_COLOURS)


def test_evaluation_json_and_card(trained, tmp_path):
    folder, _ = trained
    out = tmp_path / "evaluation.json"
    assert clip_evaluate.main(["--model", str(folder), "--out", str(out), "--n", "2", "--device", "cpu"]) == 0
    report = json.loads(out.read_text())
    assert report["name"] == MODEL_NAME and report["n"] == 2
    assert report["training"]["total_clips_seen"] == STEPS * BATCH
    assert set(report["groups"]) == {"held_out", "training"}
    expected_conditions = {"none", "noise_5", "noise_10", "blur_0.6", "colour_shift_15", "all", "size_64"}
    for group in report["groups"].values():
        assert set(group) == expected_conditions
        for result in group.values():
            assert set(result["accuracy"]) == {"colour", "shape", "background", "texture", "size", "direction"}
            for scores in result["accuracy"].values():
                assert set(scores) == {"frames", "clip"} and all(0 <= v <= 1 for v in scores.values())
            assert np.isfinite(result["text_alignment_mean"]) and np.isfinite(result["frame_consistency_mean"])
    assert 0.1 < report["chance"]["held_out"]["direction"] < 0.13  # 1 of 8
    card = (folder / "README.md").read_text()
    assert card.startswith(f"# {MODEL_NAME}") and "not OpenAI CLIP" in card
    assert "| direction | 0.125 |" in card and "| size_64 |" in card
    # --from-report rewrites the section in place, once
    report["n"] = 999
    (tmp_path / "edited.json").write_text(json.dumps(report))
    clip_evaluate.main(["--from-report", str(tmp_path / "edited.json"), "--card", str(folder / "README.md")])
    rewritten = (folder / "README.md").read_text()
    assert "999 clips per group" in rewritten and rewritten.count(clip_evaluate.CARD_BEGIN) == 1
    assert rewritten.split(clip_evaluate.CARD_BEGIN)[0] == card.split(clip_evaluate.CARD_BEGIN)[0]
