"""``dreammotion --version`` (issue 18)."""

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

import dreammotion
from dreammotion import cli

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def expected_version():
    try:
        return importlib.metadata.version("dreammotion")
    except importlib.metadata.PackageNotFoundError:
        return dreammotion.__version__


def test_version_flag_prints_the_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"dreammotion {expected_version()}\n"


def test_version_falls_back_to_the_package_when_not_installed(monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    monkeypatch.setattr(dreammotion, "__version__", "9.9.9-test")
    assert cli.version() == "9.9.9-test"


def test_python_m_dreammotion_version():
    out = subprocess.run([sys.executable, "-m", "dreammotion", "--version"], env=ENV,
                         capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == f"dreammotion {expected_version()}"


def test_console_script_version():
    script = Path(sys.executable).parent / "dreammotion"
    if not script.exists():
        pytest.skip("the dreammotion console script is not installed in this environment")
    out = subprocess.run([str(script), "--version"], env=ENV, capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == f"dreammotion {expected_version()}"


def test_check_config_names_the_file_and_line_of_a_yaml_error(tmp_path, capsys):
    """Snakemake's own message for a --configfile YAML error names no file; this command does."""
    from dreammotion.cli import main

    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("frames:\n  num_frames: 8\n")
    bad.write_text("frames:\n  num_frames: 8\n  height: [32\n")
    assert main(["check-config", str(good)]) == 0
    assert main(["check-config", str(good), str(bad)]) == 1
    err = capsys.readouterr().err
    assert "bad.yaml line" in err and "not valid YAML" in err
