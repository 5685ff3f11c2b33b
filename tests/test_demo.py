"""The bundled demo, as `make demo` runs it: every demo edit must visibly succeed with the shipped prior."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from dreammotion.io.frames import read_frames

REPO = Path(__file__).parents[1]
MODEL = REPO / "data/models/dreammotion-shapes-t2v"
# Each edit must come at least this much closer (PSNR, dB) to its ground truth than the source is.
MIN_GAIN_DB = 5.0
pytestmark = pytest.mark.slow


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


@pytest.mark.skipif(not (MODEL / "unet").is_dir(), reason=f"{MODEL} is not in this checkout")
def test_demo_edits_come_closer_to_their_ground_truth(tmp_path):
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["manifest"] = str(REPO / "config/manifest.csv")
    config["model"]["pretrained"] = str(MODEL)
    config["model"]["device"] = "cpu"
    config["results"] = str(tmp_path / "results")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    results = tmp_path / "results"
    rows = [line.split(",")[0] for line in (REPO / "config/manifest.csv").read_text().splitlines()[1:] if line]
    assert len(rows) == 3
    # every row's upsampled clip (edit -> decode -> the cascade's refiner) and its ground truth
    # and the metrics record, which measures the upsampled clip against the true 64x64 edit
    targets = [str(results / sub) for row in rows
               for sub in (f"upsampled/dreammotion/{row}/upsample.json", f"ground_truth/{row}", f"metrics/dreammotion/{row}.json")]
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(tmp_path / "config.yaml"), "--cores", "2", *targets]
    result = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=1500)
    assert result.returncode == 0, result.stderr[-5000:]
    for row in rows:
        (source_dir,) = (results / "frames").glob(f"{row}-*")
        source = read_frames(source_dir)
        edit = read_frames(results / "edits/dreammotion" / row / "frames")
        truth = read_frames(results / "ground_truth" / row)
        gain = psnr(edit, truth) - psnr(source, truth)
        assert gain >= MIN_GAIN_DB, f"{row}: the edit is only {gain:.2f} dB closer to the ground truth than the source"
        # the cascade of the default config: the shipped refiner doubles the edit, at its own settings
        upsampled = read_frames(results / "upsampled/dreammotion" / row / "frames")
        assert upsampled.shape == (8, 64, 64, 3)
        record = json.loads((results / "upsampled/dreammotion" / row / "upsample.json").read_text())
        v2v = next(step for step in record["steps"] if step.get("step") == "v2v")
        assert "dreammotion-shapes-refiner-64" in json.dumps(record) and v2v["steps"] == 1, v2v
        metrics = json.loads((results / "metrics/dreammotion" / f"{row}.json").read_text())["metrics"]
        truth_64 = read_frames(results / "ground_truth_upsampled" / row)
        expected = np.mean([psnr(upsampled[f], truth_64[f]) for f in range(len(truth_64))])
        assert metrics["upsampled_gt_psnr"]["value"] == pytest.approx(expected, abs=1e-6)
        assert metrics["lanczos_gt_psnr"]["status"] == "ok" and metrics["upsampled_clip_text_alignment"]["status"] == "ok"
