"""Renderer of synthetic clips: one coloured shape moving in a straight line over a background.

Everything is defined in normalised coordinates (x, y in [0, 1], y pointing down), so one
``ClipSpec`` renders the same motion at 32x32 and at 64x64. Pixels are antialiased by
supersampling: each pixel averages ``SUPERSAMPLE**2`` point samples of the scene.

``render`` (numpy, float64) is the reference. ``render_batch_torch`` draws a whole batch on any
torch device for training; a test checks that both agree exactly in float64.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

SUPERSAMPLE = 4

# RGB of the object colours (saturated, far from every background) and of the backgrounds.
OBJECT_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (40, 80, 230),
    "yellow": (240, 220, 40),
    "purple": (150, 60, 200),
    "orange": (245, 140, 30),
    "cyan": (40, 200, 220),
    "white": (245, 245, 245),
}
BACKGROUND_COLOURS: dict[str, tuple[int, int, int]] = {
    "gray": (128, 128, 128),
    "black": (20, 20, 20),
    "white": (235, 235, 235),
    "brown": (110, 75, 45),
}
TEXTURES = ("plain", "striped", "checkered")
SHAPES = ("circle", "square", "triangle", "diamond", "cross")
DIRECTIONS: dict[str, tuple[float, float]] = {
    "right": (1.0, 0.0),
    "left": (-1.0, 0.0),
    "up": (0.0, -1.0),
    "down": (0.0, 1.0),
    "up right": (math.sqrt(0.5), -math.sqrt(0.5)),
    "up left": (-math.sqrt(0.5), -math.sqrt(0.5)),
    "down right": (math.sqrt(0.5), math.sqrt(0.5)),
    "down left": (-math.sqrt(0.5), math.sqrt(0.5)),
}
# (colour, shape) pairs never shown in training: the prompt-following gate samples them.
HELD_OUT_PAIRS: frozenset[tuple[str, str]] = frozenset(
    {
        ("blue", "triangle"),
        ("green", "square"),
        ("yellow", "circle"),
        ("purple", "diamond"),
        ("orange", "cross"),
        ("cyan", "circle"),
        ("red", "diamond"),
        ("white", "triangle"),
    }
)
SIZE_RANGE = (0.11, 0.22)  # object "radius" as a fraction of the frame side
SPEED_RANGE = (0.02, 0.06)  # displacement per frame, fraction of the frame side
SMALL_BELOW, LARGE_ABOVE = 0.14, 0.19  # size words in captions
TEXTURE_PERIOD = 0.125  # stripe / checker cell, fraction of the frame side
TEXTURE_CONTRAST = 35  # texture shade offset from the background colour
# Half extent of each shape in units of `size` (for keeping the object inside the frame).
SHAPE_EXTENT = {"circle": 1.0, "square": 0.85, "triangle": 1.25, "diamond": 1.2, "cross": 1.05}


def colours_compatible(colour: str, background: str) -> bool:
    """An object must stand out from its background (no white square on white)."""
    a, b = np.array(OBJECT_COLOURS[colour]), np.array(BACKGROUND_COLOURS[background])
    return int(np.abs(a - b).max()) >= 60


@dataclass(frozen=True)
class ClipSpec:
    """One synthetic clip: which object, over what, and how it moves (normalised units)."""

    shape: str = "circle"
    colour: str = "red"
    background: str = "gray"
    texture: str = "plain"
    direction: str = "right"
    x0: float = 0.3  # object centre at frame 0
    y0: float = 0.5
    speed: float = 0.04  # per frame
    size: float = 0.16

    def __post_init__(self) -> None:
        for field, value, allowed in (
            ("shape", self.shape, SHAPES),
            ("colour", self.colour, OBJECT_COLOURS),
            ("background", self.background, BACKGROUND_COLOURS),
            ("texture", self.texture, TEXTURES),
            ("direction", self.direction, DIRECTIONS),
        ):
            if value not in allowed:
                raise ValueError(f"ClipSpec.{field}={value!r}; allowed: {', '.join(allowed)}")
        if not colours_compatible(self.colour, self.background):
            raise ValueError(f"a {self.colour} object does not stand out on a {self.background} background")

    def replace(self, **changes) -> "ClipSpec":
        """The same clip with some fields changed (the ground truth of an edit keeps the motion)."""
        return dataclasses.replace(self, **changes)

    @property
    def velocity(self) -> tuple[float, float]:
        dx, dy = DIRECTIONS[self.direction]
        return dx * self.speed, dy * self.speed

    def centre(self, frame: float) -> tuple[float, float]:
        """The object's centre at `frame`, a time in frames of this clip (fractional between two frames)."""
        vx, vy = self.velocity
        return self.x0 + vx * frame, self.y0 + vy * frame


def sample_spec(rng: np.random.Generator, frames: int = 8, *, held_out: str = "exclude") -> ClipSpec:
    """A random clip whose object stays inside the frame.

    held_out: "exclude" never draws a pair of HELD_OUT_PAIRS (training), "only" draws only those
    (evaluation), "any" draws from all pairs.
    """
    while True:
        colour = str(rng.choice(list(OBJECT_COLOURS)))
        shape = str(rng.choice(SHAPES))
        background = str(rng.choice(list(BACKGROUND_COLOURS)))
        pair_held_out = (colour, shape) in HELD_OUT_PAIRS
        if held_out == "exclude" and pair_held_out or held_out == "only" and not pair_held_out:
            continue
        if colours_compatible(colour, background):
            break
    texture = str(rng.choice(TEXTURES, p=[0.5, 0.25, 0.25]))
    direction = str(rng.choice(list(DIRECTIONS)))
    size = float(rng.uniform(*SIZE_RANGE))
    speed = float(rng.uniform(*SPEED_RANGE))
    dx, dy = DIRECTIONS[direction]
    margin = SHAPE_EXTENT[shape] * size + 0.02
    travel_x, travel_y = dx * speed * (frames - 1), dy * speed * (frames - 1)
    x0 = _start(rng, margin, travel_x)
    y0 = _start(rng, margin, travel_y)
    return ClipSpec(shape, colour, background, texture, direction, x0, y0, speed, size)


def _start(rng: np.random.Generator, margin: float, travel: float) -> float:
    low, high = margin - min(travel, 0.0), 1.0 - margin - max(travel, 0.0)
    return float(rng.uniform(low, high)) if high > low else 0.5 - travel / 2


# -- the scene, written once for numpy and torch (both have abs, maximum, floor, where) ---------


def _inside(shape: str, dx, dy, size, xp):
    """Boolean array: which sample points (offsets dx, dy from the centre) lie inside the shape."""
    ax, ay = xp.abs(dx), xp.abs(dy)
    if shape == "circle":
        return dx * dx + dy * dy <= size * size
    if shape == "square":
        return xp.maximum(ax, ay) <= 0.85 * size
    if shape == "diamond":
        return ax + ay <= 1.2 * size
    if shape == "triangle":  # equilateral, pointing up, centred on its centroid
        r = 1.25 * size
        s = math.sqrt(3.0) / 2
        return (dy <= r / 2) & (s * dx - dy / 2 <= r / 2) & (-s * dx - dy / 2 <= r / 2)
    if shape == "cross":
        w, length = 0.35 * size, 1.05 * size
        return ((ax <= w) & (ay <= length)) | ((ay <= w) & (ax <= length))
    raise ValueError(f"unknown shape {shape!r}")


def _texture_shade(texture: str, x, y, xp):
    """1 where the background takes its second shade, else 0."""
    if texture == "plain":
        return x * 0 + y * 0
    if texture == "striped":  # diagonal stripes
        return xp.floor((x + y) / TEXTURE_PERIOD) % 2
    if texture == "checkered":
        return (xp.floor(x / TEXTURE_PERIOD) + xp.floor(y / TEXTURE_PERIOD)) % 2
    raise ValueError(f"unknown texture {texture!r}")


def background_shades(background: str) -> tuple[np.ndarray, np.ndarray]:
    """The background colour and its texture's second shade (lighter on dark, darker on light)."""
    base = np.array(BACKGROUND_COLOURS[background], dtype=np.float64)
    offset = TEXTURE_CONTRAST if base.mean() < 128 else -TEXTURE_CONTRAST
    return base, np.clip(base + offset, 0, 255)


def sample_grid(size: int, supersample: int = SUPERSAMPLE) -> np.ndarray:
    """Normalised coordinates of the point samples along one axis, (size * supersample,)."""
    n = size * supersample
    return (np.arange(n, dtype=np.float64) + 0.5) / n


def _pool(samples: np.ndarray, size: int, supersample: int) -> np.ndarray:
    """Average (..., size*ss, size*ss) point samples into (..., size, size) pixels."""
    lead = samples.shape[:-2]
    return samples.reshape(*lead, size, supersample, size, supersample).mean(axis=(-3, -1))


def render_background(spec: ClipSpec, size: int = 32) -> np.ndarray:
    """(H, W, 3) float64 background in [0, 255] (before rounding)."""
    axis = sample_grid(size)
    x, y = axis[None, :], axis[:, None]
    shade = _pool(_texture_shade(spec.texture, x, y, np), size, SUPERSAMPLE)[..., None]
    base, second = background_shades(spec.background)
    return base * (1 - shade) + second * shade


def frame_times(frames: int, frame_rate_factor: int = 1) -> list[float]:
    """The time (in frames of the spec's clip) that each of `frames` frames shows, at `frame_rate_factor`
    times the spec's frame rate: frame j shows time j / frame_rate_factor.

    The clip at factor k, (F - 1) * k + 1 frames long, is the clip's F frames (at indices i * k) with the
    motion's true in-betweens: the ground truth of temporal interpolation by k. Its frame i * k is frame i
    of the clip bit for bit, because (i * k) / k is exactly i. Slowing the spec instead (speed / k) is
    not exact: (speed / k) * (i * k) differs from speed * i in the last bit for about half the drawn
    specs at k = 3, and an edge lying on a sample point then moves by a whole sample (a test has one).
    """
    if isinstance(frame_rate_factor, bool) or not isinstance(frame_rate_factor, int) or frame_rate_factor < 1:
        raise ValueError(f"frame_rate_factor must be an integer >= 1, got {frame_rate_factor!r}")
    return [f / frame_rate_factor for f in range(frames)]


def coverage(spec: ClipSpec, size: int = 32, frames: int = 8, frame_rate_factor: int = 1) -> np.ndarray:
    """(F, H, W) fraction of each pixel that the object covers; frame f at time f / frame_rate_factor
    (``frame_times``)."""
    axis = sample_grid(size)
    out = np.empty((frames, size, size))
    for f, time in enumerate(frame_times(frames, frame_rate_factor)):
        cx, cy = spec.centre(time)
        inside = _inside(spec.shape, axis[None, :] - cx, axis[:, None] - cy, spec.size, np)
        out[f] = _pool(inside.astype(np.float64), size, SUPERSAMPLE)
    return out


def render(spec: ClipSpec, size: int = 32, frames: int = 8, frame_rate_factor: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Render a clip: frames uint8 (F, H, W, 3) and masks bool (F, H, W).

    The mask is every pixel the object touches (coverage > 0): outside it the frame equals the
    background render exactly, inside it the object changes the pixel. `frame_rate_factor` k renders
    the same motion at k times the frame rate (``frame_times``): ``render(spec, size, (F - 1) * k + 1,
    k)[0][::k]`` equals ``render(spec, size, F)[0]`` exactly.
    """
    cover = coverage(spec, size, frames, frame_rate_factor)[..., None]
    background = render_background(spec, size)[None]
    colour = np.array(OBJECT_COLOURS[spec.colour], dtype=np.float64)
    pixels = background * (1 - cover) + colour * cover
    return np.round(pixels).astype(np.uint8), cover[..., 0] > 0


def render_background_frames(spec: ClipSpec, size: int = 32, frames: int = 8) -> np.ndarray:
    """(F, H, W, 3) uint8: the clip with the object removed."""
    bg = np.round(render_background(spec, size)).astype(np.uint8)
    return np.repeat(bg[None], frames, axis=0)


# -- batched torch renderer for training --------------------------------------------------------


def specs_to_tensors(specs: list[ClipSpec], device=None, dtype=None) -> dict:
    """Pack specs into per-field tensors for ``render_batch_torch``.

    The tensors are built on the CPU and copied from pinned memory without blocking: a copy from
    pageable memory (``torch.tensor(..., device="cuda")``) first waits for everything queued on the
    GPU, which in a training loop serialises drawing the next batch with the current step."""
    import torch

    dtype = dtype or torch.float32
    shades = [background_shades(s.background) for s in specs]
    fields = {
        "shape": torch.tensor([SHAPES.index(s.shape) for s in specs]),
        "texture": torch.tensor([TEXTURES.index(s.texture) for s in specs]),
        "colour": torch.tensor([OBJECT_COLOURS[s.colour] for s in specs], dtype=dtype),
        "bg": torch.tensor(np.array([a for a, _ in shades]), dtype=dtype),
        "bg2": torch.tensor(np.array([b for _, b in shades]), dtype=dtype),
        "x0": torch.tensor([s.x0 for s in specs], dtype=dtype),
        "y0": torch.tensor([s.y0 for s in specs], dtype=dtype),
        "vx": torch.tensor([s.velocity[0] for s in specs], dtype=dtype),
        "vy": torch.tensor([s.velocity[1] for s in specs], dtype=dtype),
        "size": torch.tensor([s.size for s in specs], dtype=dtype),
    }
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type != "cuda":
        return {name: value.to(device) for name, value in fields.items()}
    return {name: value.pin_memory().to(device, non_blocking=True) for name, value in fields.items()}


def render_batch_torch(params: dict, size: int = 32, frames: int = 8, supersample: int = SUPERSAMPLE):
    """Render a batch on the params' device: frames float (B, F, H, W, 3) in [0, 255] (rounded)
    and masks bool (B, F, H, W). Same scene as ``render``; float64 params reproduce it exactly.
    Optional ``x_offset``/``y_offset`` (B, F) move the object off its path per frame (normalised units)."""
    import torch

    dtype, device = params["x0"].dtype, params["x0"].device
    n = size * supersample
    axis = (torch.arange(n, dtype=dtype, device=device) + 0.5) / n
    t = torch.arange(frames, dtype=dtype, device=device)
    cx = params["x0"][:, None] + params["vx"][:, None] * t  # (B, F)
    cy = params["y0"][:, None] + params["vy"][:, None] * t
    if "x_offset" in params:  # optional per-frame displacement (B, F) of the object off its straight path
        cx, cy = cx + params["x_offset"], cy + params["y_offset"]
    cx, cy = cx[:, :, None, None], cy[:, :, None, None]  # (B, F, 1, 1)
    dx, dy = axis[None, None, None, :] - cx, axis[None, None, :, None] - cy
    radius = params["size"][:, None, None, None]
    # Every shape is evaluated for every clip and the clip's own is picked with torch.where:
    # boolean-mask indexing (and `.any()`) would wait for the GPU, see specs_to_tensors.
    inside = torch.zeros(dx.shape[0], frames, n, n, dtype=torch.bool, device=device)
    for index, shape in enumerate(SHAPES):
        chosen = (params["shape"] == index)[:, None, None, None]
        inside = torch.where(chosen, _inside(shape, dx, dy, radius, torch), inside)
    cover = inside.to(dtype).reshape(-1, frames, size, supersample, size, supersample).mean(dim=(3, 5))

    shade = torch.zeros(dx.shape[0], size, size, dtype=dtype, device=device)
    for index, texture in enumerate(TEXTURES):
        if texture != "plain":
            samples = _texture_shade(texture, axis[None, :], axis[:, None], torch)
            pooled = samples.reshape(size, supersample, size, supersample).mean(dim=(1, 3))
            shade = torch.where((params["texture"] == index)[:, None, None], pooled, shade)
    shade = shade[..., None]
    background = params["bg"][:, None, None, :] * (1 - shade) + params["bg2"][:, None, None, :] * shade
    cover4 = cover[..., None]
    pixels = background[:, None] * (1 - cover4) + params["colour"][:, None, None, None, :] * cover4
    return torch.round(pixels), cover > 0
