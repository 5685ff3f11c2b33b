"""One metric's outcome, as it is written to the per-edit metrics JSON.

Every metric is reported with a status, so that a table can tell a real number from a metric that
could not be computed:

- ``{"value": 0.81, "status": "ok", "reason": None, ...details}``
- ``{"value": None, "status": "missing", "reason": "CLIP folder /x does not exist"}``: the model,
  tool or input the metric needs is not there (nothing was computed).
- ``{"value": None, "status": "failed", "reason": "RuntimeError: ..."}``: it was attempted and broke.

Missing and failed metrics are never written as 0 and never silently left out.
"""

from __future__ import annotations

import math
from typing import Any

STATUSES = ("ok", "missing", "failed")


class MetricUnavailable(Exception):
    """The model, tool or input a metric needs is not available; the message says what and where."""


def ok(value: float, **details: Any) -> dict:
    value = float(value)
    if math.isnan(value):
        raise ValueError("a metric value of NaN is not a result; report it as failed with a reason")
    return {"value": value, "status": "ok", "reason": None, **details}


def missing(reason: str, **details: Any) -> dict:
    return {"value": None, "status": "missing", "reason": reason, **details}


def failed(reason: str, **details: Any) -> dict:
    return {"value": None, "status": "failed", "reason": reason, **details}


def from_exception(error: BaseException) -> dict:
    """A metric that raised: MetricUnavailable -> missing, anything else -> failed (with its type)."""
    if isinstance(error, MetricUnavailable):
        return missing(str(error))
    return failed(f"{type(error).__name__}: {error}")
