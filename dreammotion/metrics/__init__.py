"""Metrics of one edit: CLIP text alignment and frame consistency, framewise LPIPS, the motion
fidelity score, ground-truth PSNR/SSIM and centroid error (synthetic rows), runtime and peak memory.

Each metric is a function in its own module; each result carries a status ("ok", "missing" with
the reason, or "failed"), see ``dreammotion.metrics.results``. Heavy imports (torch, transformers,
lpips, OpenCV) happen inside the modules that need them.
"""

from dreammotion.metrics.names import METRICS, MetricInfo, metric_order
from dreammotion.metrics.results import MetricUnavailable, failed, missing, ok

__all__ = ["METRICS", "MetricInfo", "metric_order", "MetricUnavailable", "ok", "missing", "failed"]
