"""Clips longer than the model's window: overlapping windows that share one set of latents.

A model like ZeroScope (24 frames) or the embedded prior (8 frames) sees a fixed number of frames.
A longer clip is split into windows of that length that overlap; the latents of the whole clip are
one variable, so a frame that two windows share is not two copies blended afterwards. Each iteration
draws one timestep, and one window's noise that every window uses, as windows edited apart get it
(``window_noise: window``; or, under ``window_noise: clip``, one noise for the whole clip); every window computes its update (V-DDS, S-SSM,
T-SSM) on its slice, and a frame's update is the mean over the windows that contain it. GPU memory is
one window's (the windows run one after another), plus the latents of all frames.

T-SSM across window borders: the frames x frames similarity of the source video's keys is known for
every pair, so each window also matches the similarities between its frames and the previous window's
frames that it does not share (their key means from the same iteration, held constant).

``independent_windows`` is the naive route it is measured against: each window edited on its own and
the results cross-faded where windows overlap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from dreammotion.model_files import read_training_record

WINDOW_WEIGHTINGS = ("uniform", "taper")
WINDOW_GRIDS = ("fixed", "random")

# Frames per clip that hub models were trained on, from their model cards, for folders that do not say:
# ZeroScope v2 576w and XL were trained on 24-frame clips, ModelScope 1.7b samples 16 (diffusers' default).
KNOWN_WINDOWS = {
    "cerspense/zeroscope_v2_576w": 24,
    "cerspense/zeroscope_v2_XL": 24,
    "damo-vilab/text-to-video-ms-1.7b": 16,
}


def model_window(pretrained: str, folder: str | Path | None) -> int | None:
    """Frames per clip the model was trained on (its window), None when nothing says.

    A model folder says so with `frames` in its training.json (the embedded priors' training record);
    otherwise a known hub id (``KNOWN_WINDOWS``) does. The UNet's config holds no frame count: temporal
    attention runs on any length, but quality falls off past the training length."""
    if folder is not None:
        frames = read_training_record(folder).get("frames")
        if isinstance(frames, int) and not isinstance(frames, bool) and frames >= 1:
            return frames
    return KNOWN_WINDOWS.get(str(pretrained).rstrip("/"))


@dataclass(frozen=True)
class Windows:
    """Windows of `length` frames over a clip of `frames` frames, consecutive windows sharing at least
    `overlap` frames; the first window starts at the first frame, the last ends at the last frame.

    `offset` (0 to stride - 1, stride = length - overlap) moves the inner windows' starts by that
    many frames: the grid of an iteration under ``window_grid: random`` (``with_offset``). An offset
    can add a window (offset 1: starts 0, 1, 1 + stride, ...), so such an iteration costs a little more."""

    frames: int
    length: int
    overlap: int
    offset: int = 0

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise ValueError(f"a clip needs at least one frame, got {self.frames}")
        if self.length < 1:
            raise ValueError(f"window length must be >= 1, got {self.length}")
        if self.frames > self.length and not 0 <= self.overlap < self.length:
            raise ValueError(f"window overlap must be in [0, {self.length - 1}] for windows of {self.length} frames, got {self.overlap}")
        if not 0 <= self.offset < max(1, self.stride):
            raise ValueError(f"window offset must be in [0, {self.stride - 1}] (the stride), got {self.offset}")

    @classmethod
    def for_clip(cls, frames: int, length: int, overlap: int) -> "Windows":
        """`length` 0 (or >= frames) means one window over the whole clip."""
        if length <= 0 or length >= frames:
            return cls(frames, frames, 0)
        return cls(frames, length, overlap)

    @property
    def stride(self) -> int:
        return self.length - self.overlap

    def with_offset(self, offset: int) -> "Windows":
        return Windows(self.frames, self.length, self.overlap, offset)

    def random_offset(self, generator: torch.Generator) -> "Windows":
        """These windows with an offset drawn uniformly from [0, stride) (one clip-long window: itself)."""
        if len(self.starts) == 1:
            return self
        return self.with_offset(int(torch.randint(0, self.stride, (1,), generator=generator)))

    @property
    def starts(self) -> list[int]:
        if self.length >= self.frames:
            return [0]
        last = self.frames - self.length
        # Inner starts at offset, offset + stride, ... below the last; the first window at frame 0. Each
        # gap is at most one stride, so consecutive windows still share at least `overlap` frames.
        starts = [0] + [s for s in range(self.offset, last, self.stride) if s > 0]
        if starts[-1] + self.length < self.frames:
            starts.append(last)
        return starts

    @property
    def slices(self) -> list[slice]:
        return [slice(s, s + self.length) for s in self.starts]

    def coverage(self) -> torch.Tensor:
        """(frames,) how many windows contain each frame."""
        return self.weight_sum("uniform")

    def frame_weights(self, weighting: str = "uniform") -> torch.Tensor:
        """(length,) weight of each position of a window in the mean that makes a frame's update.

        "uniform": every window counts the same. "taper": min(p + 1, length - p), a triangle: a frame
        at a window's edge (little temporal context on one side) counts less there than in the
        window where it lies nearer the middle, so border frames take their update mostly from the
        window that sees both their neighbours."""
        if weighting == "uniform":
            return torch.ones(self.length)
        if weighting == "taper":
            positions = torch.arange(self.length, dtype=torch.float32)
            return torch.minimum(positions + 1, self.length - positions)
        raise ValueError(f"window weighting must be one of {', '.join(WINDOW_WEIGHTINGS)}, got {weighting!r}")

    def weight_sum(self, weighting: str = "uniform") -> torch.Tensor:
        """(frames,) the sum of the weights of the windows that contain each frame (``coverage`` for uniform)."""
        weights, total = self.frame_weights(weighting), torch.zeros(self.frames)
        for window in self.slices:
            total[window] += weights
        return total

    def borders(self) -> list[int]:
        """Frames where a window starts or ends (besides the clip's own ends): where seams would show."""
        edges = {s for s in self.starts[1:]} | {s + self.length - 1 for s in self.starts[:-1]}
        return sorted(edges)

    def describe(self) -> dict:
        """The windows as edit.json records them (under ``window_grid: random``: offset 0's starts;
        each iteration then moves the inner ones)."""
        return {"frames": self.frames, "length": self.length, "overlap": self.overlap, "starts": self.starts}


def windowed_update(step, x: torch.Tensor, x_src: torch.Tensor, mask: torch.Tensor, t: int, noise: torch.Tensor,
                    windows: Windows, *, cross_window: bool = True, weighting: str = "uniform"):
    """One iteration's update of the whole clip's latents x (1, C, F, h, w), window by window.

    `step` is an entered ``EditStep`` of one window's length. `noise` covers the clip (each window takes
    its frames' part) or one window (every window takes all of it: ``window_noise: window``). Returns an
    ``IterationOutput`` over the
    whole clip (score and SSM gradients per frame: the mean over its windows, weighted by
    ``Windows.frame_weights(weighting)``; the losses are the mean over windows)."""
    from dreammotion.edit.optimizer import IterationOutput

    if noise.shape[2] not in (windows.frames, windows.length):
        raise ValueError(f"noise of {noise.shape[2]} frames for a clip of {windows.frames} in windows of {windows.length}")
    per_window = noise.shape[2] == windows.length != windows.frames
    weights = windows.frame_weights(weighting).to(x.device).view(1, 1, -1, 1, 1)
    coverage = windows.weight_sum(weighting).to(x.device).view(1, 1, -1, 1, 1)
    update, score, ssm = torch.zeros_like(x), torch.zeros_like(x), torch.zeros_like(x)
    loss_s, loss_t = [], []
    step.record_key_means = cross_window
    previous = None  # (slice, key means) of the window before
    for window in windows.slices:
        step.set_window(x_src[:, :, window], mask[:, :, window])
        context = None
        if cross_window and previous is not None:
            before = window.start - previous[0].start  # frames of the previous window that this one lacks
            context = {n: (edited[:, :before], source[:, :before]) for n, (edited, source) in previous[1].items()}
        out = step(x[:, :, window], t, noise if per_window else noise[:, :, window], context)
        update[:, :, window] += weights * out.update
        score[:, :, window] += weights * out.score_grad
        ssm[:, :, window] += weights * out.ssm_grad
        loss_s.append(out.loss_s)
        loss_t.append(out.loss_t)
        previous = (window, step.key_means)
    return IterationOutput(update / coverage, score / coverage, ssm / coverage,
                           torch.stack(loss_s).mean(), torch.stack(loss_t).mean())


def crossfade(parts: list[torch.Tensor], windows: Windows) -> torch.Tensor:
    """Latents of independently edited windows (each (1, C, length, h, w)) joined into one clip: in an
    overlap, weights ramp linearly from one window to the next (the naive route to long videos)."""
    if len(parts) != len(windows.slices):
        raise ValueError(f"{len(parts)} parts for {len(windows.slices)} windows")
    shape = list(parts[0].shape)
    shape[2] = windows.frames
    total = torch.zeros(shape)
    weight_sum = torch.zeros(windows.frames)
    for index, (part, window) in enumerate(zip(parts, windows.slices)):
        weights = torch.ones(windows.length)
        if index > 0:  # ramp up over the overlap with the previous window
            shared = windows.slices[index - 1].stop - window.start
            weights[:shared] = torch.linspace(0, 1, shared + 2)[1:-1]
        if index < len(parts) - 1:  # ramp down over the overlap with the next window
            shared = window.stop - windows.slices[index + 1].start
            weights[windows.length - shared:] = torch.minimum(
                weights[windows.length - shared:], torch.linspace(1, 0, shared + 2)[1:-1])
        total[:, :, window] += part.cpu() * weights.view(1, 1, -1, 1, 1)
        weight_sum[window] += weights
    return total / weight_sum.view(1, 1, -1, 1, 1)


def independent_windows(model, source_latents, source_prompt, target_prompt, masks, config, windows: Windows, **kwargs):
    """The naive route: each window edited by ``dreammotion_edit`` on its own, then ``crossfade``d."""
    from dreammotion.edit.optimizer import dreammotion_edit

    parts = []
    for window in windows.slices:
        window_masks = masks[window] if masks is not None else None
        result = dreammotion_edit(model, source_latents[:, :, window], source_prompt, target_prompt, window_masks,
                                  config, **kwargs)
        parts.append(result.latents)
    return crossfade(parts, windows)
