"""The upsample stage's settings: one dataclass with the only set of defaults, read from a JSON object.

The workflow passes its whole ``upsample`` config section as that object (``dreammotion upsample
--config JSON``); a user on the command line may give the same keys as flags, which override it.
``CONFIG_SCHEMA`` is what the stage accepts; a test checks that the workflow schema's ``upsample``
section accepts exactly the same (keys, types, bounds) and that its defaults are ``UpsampleConfig()``'s,
so ``config/README.md`` (generated from the workflow schema) documents these defaults.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from dreammotion.errors import InputError
from dreammotion.upsample.interpolate import SUBSTITUTES
from dreammotion.upsample.pipeline import UPSAMPLE_METHODS
from dreammotion.upsample.v2v import V2VSettings

_NULLABLE_STRING = {"type": ["string", "null"]}

CONFIG_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "method": {"type": "string", "enum": list(UPSAMPLE_METHODS)},
        "scale": {"type": "integer", "minimum": 1},
        "pretrained": _NULLABLE_STRING,
        "strength": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "steps": {"type": ["integer", "null"], "minimum": 1},
        "guidance_scale": {"type": ["number", "null"], "minimum": 0},
        "interpolation_factor": {"type": "integer", "minimum": 1},
        "height": {"type": ["integer", "null"]},
        "width": {"type": ["integer", "null"]},
        "cpu_offload": {"type": "boolean"},
        "vae_chunk": {"type": "integer", "minimum": 1},
        "interpolation_model": _NULLABLE_STRING,
        "interpolation_substitute": {"type": "string", "enum": sorted(SUBSTITUTES)},
        "revision": _NULLABLE_STRING,
        "variant": _NULLABLE_STRING,
    },
}


@dataclass
class UpsampleConfig:
    method: str = "none"  # none | resize | v2v | interpolate+sr (dreammotion.upsample.pipeline)
    scale: int = 2  # integer spatial factor, unless height and width are given
    pretrained: str | None = None  # the second-stage model: hub id or folder (v2v needs one)
    # v2v pass; None: the second stage's own recommendation (dreammotion.upsample.v2v.recommended_settings)
    strength: float | None = None
    steps: int | None = None
    guidance_scale: float | None = None
    interpolation_factor: int = 2  # k of interpolate+sr: F frames -> (F - 1) k + 1
    height: int | None = None  # explicit target size (both or neither), e.g. 576 x 1024 for zeroscope_v2_XL
    width: int | None = None
    cpu_offload: bool = False  # text encoder and VAE stay on the CPU; the UNet visits the GPU to denoise
    vae_chunk: int = V2VSettings.vae_chunk  # frames per VAE call of the second stage
    interpolation_model: str | None = None  # TorchScript interpolator; None: the named substitute below
    interpolation_substitute: str = "farneback"  # farneback | linear (named as a substitute in upsample.json)
    revision: str | None = None  # hub revision of the second-stage model
    variant: str | None = None  # weight variant of the second-stage model

    def to_dict(self) -> dict:
        return asdict(self)

    def model_settings(self) -> dict | None:
        """The second stage's loading settings from this config (pretrained, revision, variant), or None."""
        if not self.pretrained:
            return None
        return {"pretrained": self.pretrained,
                **{key: value for key in ("revision", "variant") if (value := getattr(self, key))}}


def config_from_dict(data: dict, source: str = "<config>", overrides: dict | None = None) -> UpsampleConfig:
    """`data` checked against CONFIG_SCHEMA (errors name `source` and the field), over UpsampleConfig's
    defaults; `overrides` (e.g. command-line flags) replace its keys where they are not None."""
    from dreammotion.records import check_schema

    merged = {**data, **{key: value for key, value in (overrides or {}).items() if value is not None}}
    check_schema(merged, CONFIG_SCHEMA, f"upsample config {source}")
    return UpsampleConfig(**merged)


def load_config(text_or_path: str | None, overrides: dict | None = None) -> UpsampleConfig:
    """From a JSON file path or inline JSON text starting with '{' (None: the defaults), then `overrides`."""
    from dreammotion.records import read_json_option

    if text_or_path is None:
        return config_from_dict({}, "(defaults)", overrides)
    source, data = read_json_option(text_or_path, "upsample config")
    if not isinstance(data, dict):
        raise InputError(f"upsample config {source} must be a JSON object, not {type(data).__name__}")
    return config_from_dict(data, source, overrides)

