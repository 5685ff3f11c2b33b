"""The metrics stage's settings: a JSON object (file or inline text), checked against a schema.

    {
      "device": "cpu",
      "clip": {"pretrained": "data/models/dreammotion-shapes-clip"},   # hub id or local folder; null: skip (missing)
      "perceptual": "auto",                                             # auto | lpips | clip-features
      "lpips": {"net": "alex", "backbone_weights": null, "outside_mask": true},
      "motion": {"tracker": "auto", "use_mask": true, "min_displacement_px": 0.1,
                 "max_points": 400, "window_px": 15, "pyramid_levels": 3, "forward_backward_px": 1.0},
      "cotracker": {"checkpoint": null, "grid_size": 55},
      "groundtruth": {"object_colour": null}                             # [r, g, b] or null (from the ground truth)
    }

Every key is optional (the defaults are shown); unknown keys are errors, so a typo is not ignored.

``perceptual`` picks the perceptual frame distance: ``lpips`` (the LPIPS package with torchvision's
backbone from ``lpips.backbone_weights`` or the torch hub cache; missing with the reason if neither
has it), ``clip-features`` (``clip_feature_distance``, the LPIPS substitute on the CLIP model's image
tower, ``dreammotion.metrics.clip_features``), or ``auto``: LPIPS when ``lpips.backbone_weights`` is
configured, else the substitute. ``motion.tracker: auto`` is CoTracker when ``cotracker.checkpoint`` is
configured, else the Lucas-Kanade substitute. A configured model that cannot be loaded is reported
missing (or failed) with the reason; nothing else is computed in its place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dreammotion.errors import InputError
from dreammotion.metrics.motion import TRACKERS, MotionSettings

PERCEPTUAL_AUTO, PERCEPTUAL_LPIPS, PERCEPTUAL_CLIP = "auto", "lpips", "clip-features"
PERCEPTUAL_CHOICES = (PERCEPTUAL_AUTO, PERCEPTUAL_LPIPS, PERCEPTUAL_CLIP)

_NULLABLE_STRING = {"type": ["string", "null"]}

CONFIG_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "device": {"type": "string"},
        "clip": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"pretrained": _NULLABLE_STRING},
        },
        "perceptual": {"enum": list(PERCEPTUAL_CHOICES)},
        "lpips": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "net": {"enum": ["alex", "vgg"]},
                "backbone_weights": _NULLABLE_STRING,
                "outside_mask": {"type": "boolean"},
            },
        },
        "motion": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "tracker": {"enum": list(TRACKERS)},
                "use_mask": {"type": "boolean"},
                "min_displacement_px": {"type": "number", "minimum": 0},
                "max_points": {"type": "integer", "minimum": 1},
                "window_px": {"type": "integer", "minimum": 3},
                "pyramid_levels": {"type": "integer", "minimum": 0},
                "forward_backward_px": {"type": "number", "exclusiveMinimum": 0},
            },
        },
        "cotracker": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"checkpoint": _NULLABLE_STRING, "grid_size": {"type": "integer", "minimum": 1}},
        },
        "groundtruth": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "object_colour": {
                    "type": ["array", "null"],
                    "items": {"type": "number", "minimum": 0, "maximum": 255},
                    "minItems": 3,
                    "maxItems": 3,
                }
            },
        },
    },
}


@dataclass
class MetricsConfig:
    device: str = "cpu"
    # The domain CLIP of the embedded model's world (relative: the working directory's; the workflow
    # finds it in its own folder too). For real videos: e.g. openai/clip-vit-base-patch32.
    clip_pretrained: str | None = "data/models/dreammotion-shapes-clip"
    perceptual: str = PERCEPTUAL_AUTO
    lpips_net: str = "alex"
    lpips_backbone_weights: str | None = None
    lpips_outside_mask: bool = True
    motion: MotionSettings = field(default_factory=MotionSettings)
    object_colour: list[float] | None = None

    def uses_lpips(self) -> bool:
        """Whether the perceptual distance is LPIPS (else the CLIP-feature substitute): see the module docstring."""
        if self.perceptual == PERCEPTUAL_AUTO:
            return self.lpips_backbone_weights is not None
        return self.perceptual == PERCEPTUAL_LPIPS

    def to_dict(self) -> dict:
        """The settings as used, written into each metrics JSON."""
        m = self.motion
        return {
            "device": self.device,
            "clip": {"pretrained": self.clip_pretrained},
            "perceptual": self.perceptual,
            "lpips": {"net": self.lpips_net, "backbone_weights": self.lpips_backbone_weights, "outside_mask": self.lpips_outside_mask},
            "motion": {
                "tracker": m.tracker,
                "use_mask": m.use_mask,
                "min_displacement_px": m.min_displacement_px,
                "max_points": m.max_points,
                "window_px": m.window_px,
                "pyramid_levels": m.pyramid_levels,
                "forward_backward_px": m.forward_backward_px,
            },
            "cotracker": {"checkpoint": m.cotracker_checkpoint, "grid_size": m.cotracker_grid_size},
            "groundtruth": {"object_colour": self.object_colour},
        }


def config_from_dict(data: dict, source: str = "<config>") -> MetricsConfig:
    import jsonschema

    try:
        jsonschema.validate(data, CONFIG_SCHEMA)
    except jsonschema.ValidationError as err:
        where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise InputError(f"metrics config {source}: field {where}: {err.message}") from None
    clip, lpips, motion = data.get("clip", {}), data.get("lpips", {}), data.get("motion", {})
    cotracker = data.get("cotracker", {})
    defaults = MotionSettings()
    return MetricsConfig(
        device=data.get("device", "cpu"),
        clip_pretrained=clip.get("pretrained", MetricsConfig.clip_pretrained),
        perceptual=data.get("perceptual", PERCEPTUAL_AUTO),
        lpips_net=lpips.get("net", "alex"),
        lpips_backbone_weights=lpips.get("backbone_weights"),
        lpips_outside_mask=lpips.get("outside_mask", True),
        motion=MotionSettings(
            tracker=motion.get("tracker", defaults.tracker),
            use_mask=motion.get("use_mask", defaults.use_mask),
            min_displacement_px=float(motion.get("min_displacement_px", defaults.min_displacement_px)),
            max_points=motion.get("max_points", defaults.max_points),
            window_px=motion.get("window_px", defaults.window_px),
            pyramid_levels=motion.get("pyramid_levels", defaults.pyramid_levels),
            forward_backward_px=float(motion.get("forward_backward_px", defaults.forward_backward_px)),
            cotracker_checkpoint=cotracker.get("checkpoint"),
            cotracker_grid_size=cotracker.get("grid_size", defaults.cotracker_grid_size),
        ),
        object_colour=data.get("groundtruth", {}).get("object_colour"),
    )


def load_config(text_or_path: str | None) -> MetricsConfig:
    """From a JSON file path, or inline JSON text starting with '{'; None gives the defaults."""
    from dreammotion.records import read_json_option

    if text_or_path is None:
        return MetricsConfig()
    source, data = read_json_option(text_or_path, "metrics config")
    return config_from_dict(data, source)
