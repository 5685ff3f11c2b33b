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


def test_metrics_settings_have_one_set_of_defaults():
    """An empty object, a partial one and a full round trip all read against MetricsConfig's own defaults."""
    from dreammotion.metrics.config import MetricsConfig, config_from_dict

    assert config_from_dict({}) == MetricsConfig()
    partial = config_from_dict({"motion": {"window_px": 21}, "lpips": {"net": "vgg"}})
    assert partial.motion.window_px == 21 and partial.lpips_net == "vgg"
    assert partial.motion.max_points == MetricsConfig().motion.max_points and partial.lpips_outside_mask is True
    changed = partial.to_dict()
    changed["cotracker"]["checkpoint"] = "ct.pth"
    changed["groundtruth"]["object_colour"] = [1, 2, 3]
    assert config_from_dict(changed).to_dict() == changed


def test_workflow_metrics_schema_is_the_librarys():
    """The workflow schema's metrics section (validated when the workflow is read) accepts exactly what the
    metrics stage accepts: same keys, types and bounds; only its descriptions and defaults are extra."""
    from dreammotion.metrics.config import CONFIG_SCHEMA

    workflow = yaml.safe_load(SCHEMA.read_text())["properties"]["metrics"]
    assert schema_shape(workflow) == schema_shape(CONFIG_SCHEMA)


def test_workflow_upsample_section_is_the_librarys():
    """The workflow schema's upsample section accepts what the upsample stage accepts, and its defaults are
    UpsampleConfig's: the rule passes the section as one settings object (dreammotion.upsample.config)."""
    from dreammotion.upsample.config import CONFIG_SCHEMA, UpsampleConfig

    workflow = yaml.safe_load(SCHEMA.read_text())["properties"]["upsample"]

    assert schema_shape(workflow) == schema_shape(CONFIG_SCHEMA)
    assert {k: v["default"] for k, v in workflow["properties"].items()} == UpsampleConfig().to_dict()


def schema_shape(spec):
    """A JSON schema without its descriptions and defaults: what it accepts."""
    if isinstance(spec, dict):
        return {k: schema_shape(v) for k, v in spec.items() if k not in ("description", "default")}
    return spec


def test_workflow_paper_tables_defaults_are_the_librarys():
    from dreammotion.tables.paper import DEFAULT_TABLES

    tables = yaml.safe_load(SCHEMA.read_text())["properties"]["tables"]["properties"]
    assert {key: spec["default"] for key, spec in tables.items()} == DEFAULT_TABLES
