"""The one spread convention of the tables and reports: the sample standard deviation."""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np


def sample_std(values: Iterable[float]) -> float | None:
    """Standard deviation with Bessel's correction (ddof = 1); None for fewer than two values, or when
    the spread is undefined (an infinite value)."""
    values = [float(v) for v in values]
    if len(values) < 2 or not all(math.isfinite(v) for v in values):
        return None
    return float(np.std(values, ddof=1))
