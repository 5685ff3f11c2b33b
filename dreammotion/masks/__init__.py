"""Masks stage: one binary (optionally dilated and feathered) mask per frame from a manifest mask spec.

Methods: ``sam`` (segment-anything, prompt propagated through the clip), ``grabcut`` (weight-free
OpenCV GrabCut, tracked the same way), ``file`` (user-provided masks) and ``none`` (all ones).
"""

from dreammotion.masks.make import MASK_METHODS, MaskDriftWarning, make_masks, resolve_method
from dreammotion.masks.spec import BoxPrompt, FileMasks, MaskSpec, NoMask, PointsPrompt, parse_mask_spec

__all__ = [
    "MASK_METHODS",
    "BoxPrompt",
    "FileMasks",
    "MaskDriftWarning",
    "MaskSpec",
    "NoMask",
    "PointsPrompt",
    "make_masks",
    "parse_mask_spec",
    "resolve_method",
]
