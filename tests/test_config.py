"""The shipped config validates, and config/README.md documents every key as generated."""

from pathlib import Path

import jsonschema
import yaml

from dreammotion import configdoc
from dreammotion.edit import EditConfig
from dreammotion.edit.config import SDEDIT_KEYS

ROOT = Path(__file__).parents[1]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
MANIFEST_SCHEMA = ROOT / "workflow/schemas/manifest.schema.yaml"


def test_config_yaml_validates_against_schema():
    schema = yaml.safe_load(SCHEMA.read_text())
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    jsonschema.Draft202012Validator(schema).validate(config)
    for name, overrides in config["variants"].items():
        settings = {k: v for k, v in overrides.items() if k not in SDEDIT_KEYS}
        EditConfig.from_dict({**config.get("edit", {}), **settings})  # every variant is a valid EditConfig


def test_every_schema_key_has_a_description_and_default():
    schema = yaml.safe_load(SCHEMA.read_text())

    def walk(props, prefix=""):
        for key, spec in props.items():
            assert spec.get("description"), f"{prefix}{key} has no description"
            assert "default" in spec, f"{prefix}{key} has no default"
            walk(spec.get("properties", {}), f"{prefix}{key}.")

    walk(schema["properties"])


def test_config_readme_is_current():
    expected = configdoc.render(SCHEMA, MANIFEST_SCHEMA)
    assert (ROOT / "config/README.md").read_text() == expected, "run: python -m dreammotion.configdoc > config/README.md"


def test_every_edit_setting_states_its_source():
    rows = configdoc.edit_settings_rows()
    assert len(rows) == len(EditConfig.__dataclass_fields__)
    for row in rows:
        cells = row.split("|")
        assert len(cells) == 5, f"a '|' inside a comment breaks the table: {row}"
        assert cells[3].strip(), f"no comment (meaning and source) for {cells[1]}"


def test_workflow_metrics_defaults_match_the_library():
    """The workflow schema documents the metrics settings; its defaults must be the library's."""
    from dreammotion.metrics.config import MetricsConfig

    schema = yaml.safe_load(SCHEMA.read_text())["properties"]["metrics"]["properties"]

    def defaults(props):
        return {k: (defaults(v["properties"]) if "properties" in v else v["default"]) for k, v in props.items()}

    assert defaults(schema) == MetricsConfig().to_dict()
