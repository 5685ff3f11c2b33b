"""Captions of synthetic clips, from a closed vocabulary ("a red circle moving right on a gray background")."""

from __future__ import annotations

from dreammotion.synthetic.render import (
    BACKGROUND_COLOURS,
    DIRECTIONS,
    LARGE_ABOVE,
    OBJECT_COLOURS,
    SHAPES,
    SMALL_BELOW,
    TEXTURES,
    ClipSpec,
)


def size_word(spec: ClipSpec) -> str | None:
    if spec.size < SMALL_BELOW:
        return "small"
    if spec.size > LARGE_ABOVE:
        return "large"
    return None


def caption(spec: ClipSpec) -> str:
    """E.g. "a small red circle moving up right on a striped gray background"."""
    words = ["a"]
    if size_word(spec):
        words.append(size_word(spec))
    words += [spec.colour, spec.shape, "moving", spec.direction, "on", "a"]
    if spec.texture != "plain":
        words.append(spec.texture)
    words += [spec.background, "background"]
    return " ".join(words)


def vocabulary() -> list[str]:
    """Every word a caption can contain (for the word-level tokenizer)."""
    words = {"a", "small", "large", "moving", "on", "background"}
    words.update(OBJECT_COLOURS, SHAPES, BACKGROUND_COLOURS)
    words.update(t for t in TEXTURES if t != "plain")
    for direction in DIRECTIONS:
        words.update(direction.split())
    return sorted(words)


# Longest caption: a small purple triangle moving down right on a checkered brown background
# = 12 words + <bos> + <eos> = 14 tokens; 16 leaves room.
MAX_TOKENS = 16
