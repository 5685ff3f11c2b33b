"""End to end: `snakemake` on a 2-row manifest of generated clips with a tiny random model."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

REPO = Path(__file__).parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
pytestmark = pytest.mark.slow


def write_clip(folder: Path, colour, frames=4, size=16):
    folder.mkdir(parents=True)
    for i in range(frames):
        a = np.full((size, size, 3), 90, np.uint8)
        a[4:10, 2 + i : 8 + i] = colour
        Image.fromarray(a).save(folder / f"{i:05d}.png")


def make_project(tmp_path: Path, model_dir: Path, *, extra_config: dict | None = None, rows: str | None = None):
    write_clip(tmp_path / "clips" / "red square", (220, 30, 30))
    write_clip(tmp_path / "clips" / "green", (30, 200, 30))
    (tmp_path / "manifest.csv").write_text(
        rows
        or "id,video,source_prompt,target_prompt,mask,seed\n"
        'red2blue,clips/red square,a red square,a blue square,"box=1,3,11,11@0",1\n'
        "green2red,clips/green,a green square,a red square,none,2\n"
    )
    config = {
        "manifest": "manifest.csv",
        "model": {"pretrained": str(model_dir), "device": "cpu"},
        "frames": {"num_frames": 4, "height": 16, "width": 16},
        "edit": {"iterations": 2, "checkpoint_every": 1},
        "metrics": {"clip": {"pretrained": None}, "motion": {"tracker": "lucas-kanade"}},
    }
    for key, value in (extra_config or {}).items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


def snakemake(workdir: Path, *args, check=True):
    cmd = [*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml"), "--cores", "2", *args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, env=env, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed ({result.returncode}):\n{result.stderr[-5000:]}")
    return result


def test_workflow_runs_every_stage_and_a_second_run_does_nothing(tmp_path, tiny_model_dir):
    work = make_project(tmp_path, tiny_model_dir)
    dry = snakemake(work, "-n")
    shown = dry.stdout + dry.stderr
    for rule in ("frames", "masks", "encode", "edit", "decode", "metrics", "summary"):
        # a rule with a message: is shown by its message ("Job 3: edit dreammotion/red2blue: ...")
        assert f"rule {rule}:" in shown or re.search(rf"Job \d+: {rule}\b", shown), rule

    snakemake(work)
    results = work / "results"
    for row in ("red2blue", "green2red"):
        edit = results / "edits" / "dreammotion" / row
        for name in ("latents.safetensors", "log.csv", "edit.json", "video.mp4", "compare.mp4"):
            assert (edit / name).stat().st_size > 0, name
        assert len(list((edit / "frames").glob("*.png"))) == 4
        info = json.loads((edit / "edit.json").read_text())
        assert info["settings"]["iterations"] == 2 and info["runtime_s"] > 0
        record = json.loads((results / "metrics" / "dreammotion" / f"{row}.json").read_text())
        assert record["metrics"]["clip_text_alignment"]["status"] == "missing"  # no CLIP configured: said so
        assert record["metrics"]["motion_fidelity_lucas_kanade"]["status"] == "ok"
    # frames and latents once per video; the red clip's box mask and the green clip's "none" mask
    assert len(list((results / "latents").glob("*.safetensors"))) == 2
    assert sorted(p.name for p in (results / "masks").glob("*/*")) == sorted(["none", next((results / "masks").glob("red-square*/box*")).name])
    summary = (results / "tables" / "summary.csv").read_text()
    assert "red2blue" in summary and "green2red" in summary
    assert not list(results.glob("checkpoints/*/*.pt"))  # removed once each edit finished

    again = snakemake(work, "-n")
    assert "Nothing to be done" in again.stdout + again.stderr


def test_bad_manifest_stops_before_any_job(tmp_path, tiny_model_dir):
    work = make_project(tmp_path, tiny_model_dir, rows="id,video,source_prompt,target_prompt\nok,clips/green,a,b\n../x,clips/green,a,b\n")
    result = snakemake(work, "-n", check=False)
    assert result.returncode != 0
    assert "manifest.csv line 3 (id '../x'), field 'id'" in result.stderr + result.stdout
    assert not (work / "results").exists()


def test_failed_row_is_listed_and_the_others_finish(tmp_path, tiny_model_dir):
    # an empty box on a plain background: grabcut finds nothing, the masks stage fails for this row only
    rows = ("id,video,source_prompt,target_prompt,mask\n"
            "good,clips/green,a green square,a red square,none\n"
            'bad,clips/red square,a red square,a blue square,"box=12,12,16,16@0"\n')
    work = make_project(tmp_path, tiny_model_dir, rows=rows, extra_config={"edit": {"iterations": 1}})
    result = snakemake(work, "--keep-going", check=False)
    assert result.returncode != 0
    results = work / "results"
    assert (results / "metrics" / "dreammotion" / "good.json").exists()
    summary = (results / "tables" / "summary.md").read_text()
    assert "bad" in summary and "masks failed" in summary


def test_lint_passes():
    result = subprocess.run([*SNAKEMAKE, "--lint", "--snakefile", str(REPO / "Snakefile")], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
