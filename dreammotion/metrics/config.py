"""The metrics stage's settings: a JSON object (file or inline text), checked against a schema.

    {"device": ..., "clip": {"pretrained": ...}, "perceptual": "auto | lpips | clip-features",
     "lpips": {"net", "backbone_weights", "outside_mask"},
     "motion": {"tracker", "use_mask", "min_displacement_px", "max_points", "window_px", "pyramid_levels",
                "forward_backward_px"},
     "cotracker": {"checkpoint", "grid_size"}, "groundtruth": {"object_colour": [r, g, b] or null}}

Every key is optional; the defaults are ``MetricsConfig``'s, and only its (``MetricsConfig().to_dict()``
is the whole default object; config/README.md lists it, and a test checks the workflow schema's
defaults equal it). Unknown keys are errors, so a typo is not ignored.

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
        "perceptual": {"type": "string", "enum": list(PERCEPTUAL_CHOICES)},
        "lpips": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "net": {"type": "string", "enum": ["alex", "vgg"]},
                "backbone_weights": _NULLABLE_STRING,
                "outside_mask": {"type": "boolean"},
            },
        },
        "motion": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "tracker": {"type": "string", "enum": list(TRACKERS)},
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
    from dreammotion.records import check_schema

    check_schema(data, CONFIG_SCHEMA, f"metrics config {source}")
    # The defaults are MetricsConfig's alone: the given keys are laid over its own nested form.
    given = MetricsConfig().to_dict()
    for key, value in data.items():
        given[key] = {**given[key], **value} if isinstance(given[key], dict) else value
    motion, cotracker = given["motion"], given["cotracker"]
    return MetricsConfig(
        device=given["device"],
        clip_pretrained=given["clip"]["pretrained"],
        perceptual=given["perceptual"],
        lpips_net=given["lpips"]["net"],
        lpips_backbone_weights=given["lpips"]["backbone_weights"],
        lpips_outside_mask=given["lpips"]["outside_mask"],
        motion=MotionSettings(
            tracker=motion["tracker"],
            use_mask=motion["use_mask"],
            min_displacement_px=float(motion["min_displacement_px"]),
            max_points=motion["max_points"],
            window_px=motion["window_px"],
            pyramid_levels=motion["pyramid_levels"],
            forward_backward_px=float(motion["forward_backward_px"]),
            cotracker_checkpoint=cotracker["checkpoint"],
            cotracker_grid_size=cotracker["grid_size"],
        ),
        object_colour=given["groundtruth"]["object_colour"],
    )


def load_config(text_or_path: str | None) -> MetricsConfig:
    """From a JSON file path, or inline JSON text starting with '{'; None gives the defaults."""
    from dreammotion.records import read_json_option

    if text_or_path is None:
        return MetricsConfig()
    source, data = read_json_option(text_or_path, "metrics config")
    return config_from_dict(data, source)
