"""Typed settings of one DreamMotion edit, with where each default comes from.

Sources: [DM] DreamMotion (Jeong et al., ECCV 2024), [DDS] Delta Denoising Score (Hertz et al., ICCV
2023, official code), [CDS] Contrastive Denoising Score (Nam et al., CVPR 2024, official code),
[ours] chosen here where the paper is silent (see docs/method.md for the reasoning and measurements).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields

from dreammotion.edit.hooks import DEFAULT_LAYERS


@dataclass
class EditConfig:
    # Optimisation -------------------------------------------------------------------------------
    iterations: int = 200  # [DM] 200 optimisation steps (DDS uses 200 too)
    optimizer: str = "sgd"  # [DM][DDS] plain SGD on the latents; "adam" also available
    lr: float = 0.4  # [DM] 0.4 (our gradients are unnormalised eps differences; see docs/method.md)
    # Score distillation --------------------------------------------------------------------------
    guidance_scale: float = 7.5  # [DDS] classifier-free guidance of both branches
    t_min: int = 50  # [DDS] timesteps drawn uniformly from [t_min, t_max] (of 1000 training steps)
    t_max: int = 950  # [DDS] 950 (DDS code: 949)
    score: str = "dds"  # "dds" (V-DDS, [DM]) or "sds" (ablation: eps_w(x_t, y) - noise)
    # Mask ----------------------------------------------------------------------------------------
    use_mask: bool = True  # [DM] V-DDS gradient multiplied by the per-frame object mask
    mask_applies_to: str = "vdds"  # [DM] "vdds": mask only the V-DDS term; "all": mask the whole update
    # Self-similarity matching ----------------------------------------------------------------------
    lambda_s: float = 0.1  # [ours] S-SSM weight, not stated in the paper; 1 ruined the background (docs/quality.md)
    lambda_t: float = 0.1  # [ours] T-SSM weight, not stated in the paper; chosen with lambda_s (docs/quality.md)
    key_layers: tuple[str, ...] = DEFAULT_LAYERS  # [CDS] decoder spatial self-attention (attn1 of up_blocks)
    truncate_forward: bool = True  # stop the with-grad forward after the last key layer (same keys, less work)
    # Bookkeeping ---------------------------------------------------------------------------------
    seed: int = 0  # seed of the per-iteration timestep and noise draws (the manifest's seed column)
    checkpoint_every: int = 50  # iterations between checkpoints (resume after a kill)
    divergence_factor: float = 20.0  # stop when the std of (x - x_hat) passes this many times the source's std
    extra: dict = field(default_factory=dict)  # free-form notes carried into edit.json

    VALID_OPTIMIZERS = ("sgd", "adam")
    VALID_SCORES = ("dds", "sds")
    VALID_MASK_TARGETS = ("vdds", "all")

    def __post_init__(self) -> None:
        self.key_layers = tuple(self.key_layers)
        problems = []
        if self.iterations < 0:
            problems.append(f"iterations must be >= 0, got {self.iterations}")
        if self.optimizer not in self.VALID_OPTIMIZERS:
            problems.append(f"optimizer must be one of {self.VALID_OPTIMIZERS}, got {self.optimizer!r}")
        if self.score not in self.VALID_SCORES:
            problems.append(f"score must be one of {self.VALID_SCORES}, got {self.score!r}")
        if self.mask_applies_to not in self.VALID_MASK_TARGETS:
            problems.append(f"mask_applies_to must be one of {self.VALID_MASK_TARGETS}, got {self.mask_applies_to!r}")
        if not 0 <= self.t_min <= self.t_max:
            problems.append(f"need 0 <= t_min <= t_max, got t_min={self.t_min}, t_max={self.t_max}")
        if self.lr <= 0:
            problems.append(f"lr must be > 0, got {self.lr}")
        if self.checkpoint_every < 1:
            problems.append(f"checkpoint_every must be >= 1, got {self.checkpoint_every}")
        if problems:
            raise ValueError("invalid edit settings: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, d: dict | None) -> "EditConfig":
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown edit setting(s) {unknown}; known: {sorted(known)}")
        return cls(**d)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["key_layers"] = list(self.key_layers)
        return d

    def fingerprint(self) -> str:
        """Hash of everything that changes the trajectory (a checkpoint from other settings is not resumed).

        The iteration count is left out: a finished prefix of a longer run is the same trajectory.
        """
        d = self.to_dict()
        for k in ("iterations", "checkpoint_every", "extra"):
            d.pop(k)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]
