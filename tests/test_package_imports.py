"""Stages are peers: the workflow's stage packages do not reach into the synthetic world.

`dreammotion.synthetic` (renderer, captions, ground truth) serves training, gates and benchmarks
(`dreammotion.prior`, bench/); a stage that a user runs on real videos (`upsample`, `edit`, `masks`,
`io`, `metrics`, `report`, `tables`, `models`) must work without it, so none of their modules imports it (issue 17).
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "dreammotion"
STAGES = ("upsample", "edit", "masks", "io", "metrics", "report", "tables", "models")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_stage_packages_do_not_import_the_synthetic_world():
    offenders = []
    for stage in STAGES:
        for path in sorted((PACKAGE / stage).rglob("*.py")):
            bad = sorted(m for m in imported_modules(path) if m == "dreammotion.synthetic" or m.startswith("dreammotion.synthetic."))
            if bad:
                offenders.append(f"{path.relative_to(PACKAGE.parent)}: {', '.join(bad)}")
    assert offenders == []


def test_the_check_sees_an_offending_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import os\nfrom dreammotion.synthetic.render import render\n")
    assert "dreammotion.synthetic.render" in imported_modules(module)
