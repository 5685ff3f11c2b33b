"""Render config/README.md from the config schema and the EditConfig field comments.

The documentation of every setting is generated from the two places that define it, and a test
checks that the committed README matches, so it cannot drift.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
from pathlib import Path

import yaml

HEADER = """# Configuration

`config/config.yaml` holds the workflow settings; `config/manifest.csv` lists the edits. This file is
generated from `workflow/schemas/config.schema.yaml` and `dreammotion/edit/config.py` by
`python -m dreammotion.configdoc > config/README.md` (a test checks it is current).
"""


def _rows(props: dict, prefix: str = "") -> list[str]:
    rows = []
    for key, spec in props.items():
        name = f"{prefix}{key}"
        default = json.dumps(spec.get("default")) if "default" in spec else "(required)"
        description = " ".join(str(spec.get("description", "")).split())
        if "enum" in spec:
            description += f" One of: {', '.join(map(str, spec['enum']))}."
        rows.append(f"| `{name}` | `{default}` | {description} |")
        if spec.get("type") == "object" and "properties" in spec:
            rows += _rows(spec["properties"], name + ".")
    return rows


def edit_settings_rows(workflow_defaults: dict | None = None) -> list[str]:
    """One row per EditConfig field; `workflow_defaults` (the schema's `edit` properties) name the fields whose
    workflow default differs from the library's (window, window_overlap: auto, read from the model)."""
    from dreammotion.edit.config import EditConfig

    source = inspect.getsource(EditConfig)
    comments = dict(re.findall(r"^\s{4}(\w+):[^#\n]*#\s*(.+)$", source, flags=re.M))
    rows = []
    for f in dataclasses.fields(EditConfig):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if isinstance(default, tuple):
            default = list(default)
        shown = f"`{json.dumps(default)}`"
        meaning = comments.get(f.name, "")
        workflow = (workflow_defaults or {}).get(f.name)
        if workflow is not None and "default" in workflow:
            shown = f"`{json.dumps(workflow['default'])}` (library: {shown})"
            meaning += f" (workflow default: see `edit.{f.name}` above)"
        rows.append(f"| `edit.{f.name}` | {shown} | {meaning} |")
    return rows


def render(schema_path: str | Path, manifest_schema_path: str | Path) -> str:
    schema = yaml.safe_load(Path(schema_path).read_text())
    manifest = yaml.safe_load(Path(manifest_schema_path).read_text())
    table = ["| key | default | meaning |", "|---|---|---|"]
    out = [HEADER, "## Workflow settings (`config/config.yaml`)", "", *table, *_rows(schema["properties"]), ""]
    out += [
        "## Edit settings (`edit:`, variants, manifest overrides)",
        "",
        "Sources: [DM] DreamMotion paper, [DDS] Delta Denoising Score code, [CDS] Contrastive Denoising",
        "Score code, [ours] chosen here where the paper is silent (docs/method.md).",
        "",
        *table,
        *edit_settings_rows(schema["properties"]["edit"].get("properties")),
        "",
        "## Manifest columns (`config/manifest.csv`)",
        "",
        " ".join(str(manifest.get("description", "")).split()),
        "",
        "| column | required | meaning |",
        "|---|---|---|",
    ]
    required = set(manifest.get("required", []))
    for key, spec in manifest["properties"].items():
        description = " ".join(str(spec.get("description", "")).split())
        out.append(f"| `{key}` | {'yes' if key in required else 'no'} | {description} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1]
    print(render(root / "workflow/schemas/config.schema.yaml", root / "workflow/schemas/manifest.schema.yaml"), end="")
