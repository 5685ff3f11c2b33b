"""Typed settings of one DreamMotion edit, with where each default comes from.

Sources: [DM] DreamMotion (Jeong et al., ECCV 2024), [DDS] Delta Denoising Score (Hertz et al., ICCV
2023, official code), [CDS] Contrastive Denoising Score (Nam et al., CVPR 2024, official code),
[ours] chosen here where the paper is silent (see docs/method.md for the reasoning and measurements).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields

from dreammotion.edit.hooks import DEFAULT_LAYERS
from dreammotion.edit.windows import WINDOW_GRIDS, WINDOW_WEIGHTINGS
from dreammotion.records import DEFAULT_METHOD


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
    # Long clips ------------------------------------------------------------------------------------
    window: int = 0  # [ours] frames per window for clips longer than the model's window (0: the whole clip at once)
    window_overlap: int = 4  # [ours] frames consecutive windows share (one variable: no blending afterwards)
    cross_window_tssm: bool = True  # [ours] T-SSM also between a window's frames and the previous window's
    window_weighting: str = "taper"  # [ours] a frame's update over its windows: "taper" (edges count less) or the "uniform" mean; bench/long/README.md
    window_grid: str = "fixed"  # [ours] where windows start: "fixed", or "random" (each iteration the grid moves by a random offset, so no frame sits on a border every iteration); bench/long/README.md
    window_noise: str = "window"  # [ours] an iteration's noise over windows: "window" (one draw of a window's length, the same in every window, as windows edited apart get it; against the naive route it is within 0.3 dB in PSNR and flickers less at the borders of object edits) or "clip" (one draw for the clip: a frame's noise is the same in each of its windows; the default before 2026-12-07); bench/long/README.md
    # Bookkeeping ---------------------------------------------------------------------------------
    seed: int = 0  # seed of the per-iteration timestep and noise draws (the manifest's seed column)
    checkpoint_every: int = 50  # iterations between checkpoints (resume after a kill)
    divergence_factor: float = 20.0  # stop when the std of (x - x_hat) passes this many times the source's std
    extra: dict = field(default_factory=dict)  # free-form notes carried into edit.json

    VALID_OPTIMIZERS = ("sgd", "adam")
    VALID_SCORES = ("dds", "sds")
    VALID_MASK_TARGETS = ("vdds", "all")
    VALID_WINDOW_WEIGHTINGS = WINDOW_WEIGHTINGS
    VALID_WINDOW_GRIDS = WINDOW_GRIDS
    VALID_WINDOW_NOISES = ("clip", "window")

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise EditSettingsError(problems)
        self.key_layers = tuple(self.key_layers)

    def problems(self) -> list[tuple[tuple[str, ...], str]]:
        """What is wrong with these settings: (the fields involved, what is wrong), empty when valid."""
        problems = []
        for f in fields(self):
            message = _type_problem(f.name, _FIELD_TYPES.get(f.name), getattr(self, f.name))
            if message:
                problems.append(((f.name,), message))
        if problems:  # ranges need the right types
            return problems

        def need(ok: bool, names: tuple[str, ...], message: str) -> None:
            if not ok:
                problems.append((names, message))

        need(self.iterations >= 0, ("iterations",), f"iterations must be >= 0, got {self.iterations}")
        need(self.optimizer in self.VALID_OPTIMIZERS, ("optimizer",),
             f"optimizer must be one of {self.VALID_OPTIMIZERS}, got {self.optimizer!r}")
        need(self.score in self.VALID_SCORES, ("score",), f"score must be one of {self.VALID_SCORES}, got {self.score!r}")
        need(self.mask_applies_to in self.VALID_MASK_TARGETS, ("mask_applies_to",),
             f"mask_applies_to must be one of {self.VALID_MASK_TARGETS}, got {self.mask_applies_to!r}")
        need(self.window_weighting in self.VALID_WINDOW_WEIGHTINGS, ("window_weighting",),
             f"window_weighting must be one of {self.VALID_WINDOW_WEIGHTINGS}, got {self.window_weighting!r}")
        need(self.window_grid in self.VALID_WINDOW_GRIDS, ("window_grid",),
             f"window_grid must be one of {self.VALID_WINDOW_GRIDS}, got {self.window_grid!r}")
        need(self.window_noise in self.VALID_WINDOW_NOISES, ("window_noise",),
             f"window_noise must be one of {self.VALID_WINDOW_NOISES}, got {self.window_noise!r}")
        need(0 <= self.t_min <= self.t_max, ("t_min", "t_max"),
             f"need 0 <= t_min <= t_max, got t_min={self.t_min}, t_max={self.t_max}")
        need(self.lr > 0, ("lr",), f"lr must be > 0, got {self.lr}")
        for name in ("guidance_scale", "lambda_s", "lambda_t"):
            need(getattr(self, name) >= 0, (name,), f"{name} must be >= 0, got {getattr(self, name)}")
        need(self.window >= 0, ("window",), f"window must be >= 0 (0: the whole clip at once), got {self.window}")
        # The overlap first: it is what a message should point at (the window is often the model's, `auto`).
        need(self.window == 0 or 0 <= self.window_overlap < self.window, ("window_overlap", "window"),
             f"window_overlap must be in [0, window - 1], got {self.window_overlap} for windows of {self.window}")
        need(self.checkpoint_every >= 1, ("checkpoint_every",), f"checkpoint_every must be >= 1, got {self.checkpoint_every}")
        need(self.divergence_factor > 0, ("divergence_factor",),
             f"divergence_factor must be > 0 (inf turns the check off), got {self.divergence_factor}")
        return problems

    @classmethod
    def from_dict(cls, d: dict | None) -> "EditConfig":
        d = dict(d or {})
        unknown = sorted(set(d) - cls.field_names())
        if unknown:
            raise EditSettingsError([((name,), unknown_setting_message(name)) for name in unknown])
        return cls(**d)

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in fields(cls)}

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
        if d["window"] == 0:  # no windows: how noise spreads over windows means nothing
            d.pop("window_noise")
        for k, default in _ADDED_SINCE_CHECKPOINTS_EXIST.items():
            if d.get(k) == default:  # the trajectory every earlier checkpoint followed: keep its fingerprint
                d.pop(k)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


# Settings added after checkpoints were written: at these values (what every earlier checkpoint followed,
# whatever the default is now) they leave the fingerprint as it was.
_ADDED_SINCE_CHECKPOINTS_EXIST = {"window_noise": "clip"}


# Field types, written out (the annotations are strings under `from __future__ import annotations`).
_FIELD_TYPES = {
    "iterations": int, "optimizer": str, "lr": float, "guidance_scale": float, "t_min": int, "t_max": int,
    "score": str, "use_mask": bool, "mask_applies_to": str, "lambda_s": float, "lambda_t": float,
    "key_layers": "layers", "truncate_forward": bool, "window": int, "window_overlap": int,
    "cross_window_tssm": bool, "window_weighting": str, "window_grid": str, "window_noise": str, "seed": int, "checkpoint_every": int,
    "divergence_factor": "factor", "extra": dict,
}


def _type_problem(name: str, kind, value) -> str | None:
    if kind is None:
        return None
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{name} must be an integer, got {value!r}"
    elif kind in (float, "factor"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{name} must be a number, got {value!r}"
        if math.isnan(value) or (math.isinf(value) and not (kind == "factor" and value > 0)):
            return f"{name} must be a finite number, got {value!r}"
    elif kind is bool:
        if not isinstance(value, bool):
            return f"{name} must be true or false, got {value!r}"
    elif kind is str:
        if not isinstance(value, str):
            return f"{name} must be text, got {value!r}"
    elif kind == "layers":
        if isinstance(value, str) or not all(isinstance(v, str) for v in value):
            return f"{name} must be a list of layer names or patterns, got {value!r}"
    elif kind is dict and not isinstance(value, dict):
        return f"{name} must be a mapping, got {value!r}"
    return None


def unknown_setting_message(name: str) -> str:
    known = sorted(EditConfig.field_names())
    close = difflib.get_close_matches(str(name), known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown edit setting {name!r}{hint}; known: {', '.join(known)}"


class EditSettingsError(ValueError):
    """Invalid edit settings; ``problems`` lists (fields involved, message) so callers can say where each was set."""

    def __init__(self, problems: list[tuple[tuple[str, ...], str]]):
        self.problems = problems
        super().__init__("invalid edit settings: " + "; ".join(message for _, message in problems))


@dataclass(frozen=True)
class SDEditSettings:
    """The SDEdit baseline's own settings (a variant's keys beside ``method: sdedit``); its guidance
    scale and seed come from the EditConfig as DreamMotion's do."""

    strength: float = 0.6  # fraction of the noise schedule the source is noised to
    steps: int = 50  # DDIM steps over the whole schedule (about strength * steps of them run)

    @classmethod
    def problems(cls, d: dict) -> list[tuple[str, str]]:
        """(key, message) for each unknown key or bad value of `d` (missing keys take the defaults)."""
        known = [f.name for f in fields(cls)]
        problems = [(key, f"unknown SDEdit setting {key!r}; known: {known}") for key in sorted(set(d) - set(known))]
        strength, steps = d.get("strength", cls.strength), d.get("steps", cls.steps)
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 < strength <= 1:
            problems.append(("strength", f"strength must be a number in (0, 1], got {strength!r}"))
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            problems.append(("steps", f"steps must be an integer >= 1, got {steps!r}"))
        return problems

    @classmethod
    def from_dict(cls, d: dict | None) -> "SDEditSettings":
        d = dict(d or {})
        problems = cls.problems(d)
        if problems:
            raise ValueError("; ".join(message for _, message in problems))
        return cls(strength=float(d.get("strength", cls.strength)), steps=int(d.get("steps", cls.steps)))

    def to_dict(self) -> dict:
        return asdict(self)


# Keys of a variant that select the SDEdit baseline instead of being edit settings.
SDEDIT_KEYS = ("method",) + tuple(f.name for f in fields(SDEditSettings))
# The methods a variant can name (``method:``); dreammotion.edit.methods.EDIT_METHODS implements them.
METHOD_NAMES = (DEFAULT_METHOD, "sdedit")


def sdedit_settings(variant: dict | None) -> dict:
    """The SDEdit settings a variant gives (its `strength` and `steps`, where given)."""
    return {key: value for key, value in (variant or {}).items() if key in SDEDIT_KEYS and key != "method"}


def merged_settings(edit: dict | None, variant: dict | None, row_overrides: dict | None, seed: int, *,
                    model_window: int | None = None, clip_frames: int | None = None) -> dict:
    """The settings of one edit: library defaults <- config `edit` <- the variant's overrides <- the row's,
    then `window: auto` / `window_overlap: auto` resolved (``resolve_windows``).

    The workflow's edit jobs and its start-up checks both build the settings with this function.
    """
    settings = dict(edit or {})
    settings.update({k: v for k, v in (variant or {}).items() if k not in SDEDIT_KEYS})
    settings.update(row_overrides or {})
    settings["seed"] = seed
    return resolve_windows(settings, model_window, clip_frames)


AUTO = "auto"


def resolve_windows(settings: dict, model_window: int | None, clip_frames: int | None) -> dict:
    """`window: auto` and `window_overlap: auto` (the workflow's defaults) as numbers for ``EditConfig``.

    window auto is the model's window (`model_window`, frames it was trained on), or the whole clip when
    that is unknown. overlap auto is half the window: then every frame past the first half-window lies in
    two windows, and each window's border frames are the middle of the next window (measured against an
    overlap of 2 in bench/long/README.md). When the clip is known to fit in one window (`clip_frames`
    <= the window) the auto keys are dropped: one window over the whole clip is what the library's
    defaults compute, and the settings (and so Snakemake's params record and the checkpoint fingerprint)
    stay those of a clip without windows.
    """
    settings = dict(settings)
    window = settings.get("window")
    if window == AUTO:
        fits = model_window is None or (clip_frames is not None and clip_frames <= model_window)
        if fits:
            del settings["window"]
        else:
            settings["window"] = model_window
    if settings.get("window_overlap") == AUTO:
        window = settings.get("window", 0)
        if isinstance(window, int) and not isinstance(window, bool) and window > 0:
            settings["window_overlap"] = window // 2
        else:  # no windows: the overlap means nothing (and a wrong-typed window is reported by EditConfig)
            del settings["window_overlap"]
    return settings
