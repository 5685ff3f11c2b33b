"""Temporal interpolation: `factor - 1` new frames between each pair of consecutive keyframes.

Frame count: F keyframes become ``(F - 1) * factor + 1`` frames. Keyframe i lands at index ``i * factor``
and is copied there unchanged (never passed through an interpolator), so keyframes are preserved
exactly; no frames are extrapolated after the last keyframe. Play the result at ``fps * factor`` to keep
the clip's motion speed.

Interpolators:

- a learned model, given as a TorchScript file (``torch.jit.load``) with the FILM-style call
  ``model(img0, img1, dt) -> img``: images float (B, 3, H, W) in [0, 1], ``dt`` float (B, 1) in (0, 1);
- without a model, a classical SUBSTITUTE, named as one in ``upsample.json``:
  ``farneback`` (OpenCV Farneback optical flow in both directions, each keyframe backward-warped to
  time t, blended by 1-t and t) or ``linear`` (cross-fade of the two keyframes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from dreammotion.errors import InputError

# (img0 uint8 (H, W, 3), img1 uint8 (H, W, 3), times (n,) in (0, 1)) -> (n, H, W, 3) uint8
PairInterpolator = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]

SUBSTITUTES = {
    "farneback": "OpenCV Farneback optical flow (both directions), keyframes backward-warped to t and blended",
    "linear": "linear cross-fade of the two neighbouring keyframes",
}
# Farneback parameters (OpenCV's documented example values; pyramid levels capped for tiny frames).
FARNEBACK = dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)


def output_frame_count(num_frames: int, factor: int) -> int:
    """(F - 1) * factor + 1: keyframes at both ends, `factor - 1` new frames in each gap."""
    return (num_frames - 1) * factor + 1


def keyframe_indices(num_frames: int, factor: int) -> list[int]:
    return [i * factor for i in range(num_frames)]


def interpolate_linear(img0: np.ndarray, img1: np.ndarray, times: np.ndarray) -> np.ndarray:
    t = times.reshape(-1, 1, 1, 1)
    blended = (1.0 - t) * img0.astype(np.float64)[None] + t * img1.astype(np.float64)[None]
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def _farneback_flow(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Flow (H, W, 2) with src(p) ~ dst(p + flow(p))."""
    import cv2

    params = dict(FARNEBACK)
    # Each pyramid level halves the frame; stop before the coarsest level gets smaller than 8 pixels.
    params["levels"] = max(0, min(params["levels"], int(math.log2(max(1, min(src.shape[:2]) // 8)))))
    gray_src = cv2.cvtColor(src, cv2.COLOR_RGB2GRAY)
    gray_dst = cv2.cvtColor(dst, cv2.COLOR_RGB2GRAY)
    return cv2.calcOpticalFlowFarneback(gray_src, gray_dst, None, **params)


def _backward_warp(image: np.ndarray, flow: np.ndarray, amount: float) -> np.ndarray:
    """Sample `image` at p - amount * flow(p) (bilinear, edges replicated), float32."""
    import cv2

    height, width = image.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    map_x = grid_x - amount * flow[..., 0]
    map_y = grid_y - amount * flow[..., 1]
    return cv2.remap(image.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def interpolate_farneback(img0: np.ndarray, img1: np.ndarray, times: np.ndarray) -> np.ndarray:
    """A point at q in img0 moves to q + v in img1, so at time t it sits at p = q + t v and
    I_t(p) = img0(p - t v) = img1(p + (1 - t) v). The flows taken at p approximate v (flow_01(p) ~ v,
    flow_10(p) ~ -v)."""
    flow_01 = _farneback_flow(img0, img1)
    flow_10 = _farneback_flow(img1, img0)
    out = []
    for t in times:
        from_0 = _backward_warp(img0, flow_01, float(t))
        from_1 = _backward_warp(img1, flow_10, 1.0 - float(t))
        out.append((1.0 - t) * from_0 + t * from_1)
    return np.clip(np.rint(np.stack(out)), 0, 255).astype(np.uint8)


class TorchScriptInterpolator:
    """A learned frame interpolator saved with TorchScript (e.g. a FILM export): model(img0, img1, dt)."""

    def __init__(self, path: str | Path, device: str = "cpu"):
        import torch

        path = Path(path)
        if not path.is_file():
            raise InputError(f"interpolation model {path} does not exist (expected a TorchScript .pt file)")
        try:
            self.module = torch.jit.load(str(path), map_location=device).eval()
        except RuntimeError as err:
            raise InputError(f"interpolation model {path} is not a loadable TorchScript file: {err}") from err
        self.path = path
        self.device = device

    def __call__(self, img0: np.ndarray, img1: np.ndarray, times: np.ndarray) -> np.ndarray:
        import torch

        def batch(image: np.ndarray) -> torch.Tensor:
            x = torch.from_numpy(image).permute(2, 0, 1).float().div(255.0)
            return x.unsqueeze(0).expand(len(times), -1, -1, -1).to(self.device)

        dt = torch.tensor(times, dtype=torch.float32).reshape(-1, 1).to(self.device)
        with torch.no_grad():
            out = self.module(batch(img0), batch(img1), dt)
        expected = (len(times), 3, *img0.shape[:2])
        if tuple(out.shape) != expected:
            raise InputError(f"interpolation model {self.path} returned shape {tuple(out.shape)}, expected {expected}")
        return (out.clamp(0, 1) * 255.0).round().byte().permute(0, 2, 3, 1).cpu().numpy()


@dataclass
class Interpolator:
    """A pair interpolator and how it is described in upsample.json."""

    interpolate_pair: PairInterpolator
    info: dict = field(default_factory=dict)


def make_interpolator(model_path: str | Path | None = None, substitute: str = "farneback",
                      device: str = "cpu") -> Interpolator:
    """The learned model at `model_path` when given, otherwise the named classical substitute."""
    if model_path:
        model = TorchScriptInterpolator(model_path, device)
        return Interpolator(model, {"method": "torchscript-model", "model": str(model_path), "substitute": False})
    functions = {"farneback": interpolate_farneback, "linear": interpolate_linear}
    if substitute not in functions:
        raise InputError(f"interpolation substitute {substitute!r}: use one of {', '.join(functions)}")
    info = {
        "method": substitute,
        "substitute": True,
        "substitute_for": "a learned frame-interpolation model (Show-1's interpolation stage); none was given",
        "description": SUBSTITUTES[substitute],
    }
    if substitute == "farneback":
        info["farneback_parameters"] = FARNEBACK
    return Interpolator(functions[substitute], info)


def interpolate_frames(frames: np.ndarray, factor: int, interpolator: Interpolator) -> np.ndarray:
    """(F, H, W, 3) uint8 -> ((F - 1) * factor + 1, H, W, 3) uint8 with keyframes copied unchanged."""
    frames = np.asarray(frames)
    if factor < 1:
        raise InputError(f"interpolation factor must be >= 1, got {factor}")
    if factor == 1 or len(frames) < 2:
        return frames.copy()
    times = np.arange(1, factor, dtype=np.float64) / factor
    out = np.empty((output_frame_count(len(frames), factor), *frames.shape[1:]), dtype=np.uint8)
    for i in range(len(frames) - 1):
        out[i * factor] = frames[i]
        out[i * factor + 1 : (i + 1) * factor] = interpolator.interpolate_pair(frames[i], frames[i + 1], times)
    out[-1] = frames[-1]
    return out
