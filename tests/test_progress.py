"""Progress of long jobs (issue 18): a rule message naming the log, one line per N edit iterations."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from dreammotion.edit import EditConfig, dreammotion_edit
from dreammotion.edit.io import save_latents
from conftest import make_project, snakemake

REPO = Path(__file__).resolve().parents[1]
LINE = re.compile(r"^\[dreammotion\] iteration (\d+)/(\d+): \d+ s, ~\d+ s left, loss_s=\S+ loss_t=\S+ change=\S+$")


def test_progress_every_prints_one_line_per_n_iterations_and_no_bar(tiny_model, source, capsys):
    dreammotion_edit(tiny_model, source, "a red circle", "a blue circle", None, EditConfig(iterations=5),
                     progress_every=2)
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert all(LINE.match(line) for line in lines), lines
    assert [LINE.match(line).group(1, 2) for line in lines] == [("2", "5"), ("4", "5"), ("5", "5")]
    assert "dreammotion edit" not in err and "\r" not in out + err  # no tqdm bar


def test_edit_cli_progress_lines_in_the_log(tmp_path, tiny_model, tiny_model_dir, source):
    save_latents(tmp_path / "source.safetensors", source)
    cmd = [sys.executable, "-m", "dreammotion", "edit", "--latents", str(tmp_path / "source.safetensors"),
           "--masks", "none", "--source-prompt", "a red circle", "--target-prompt", "a blue circle",
           "--model", json.dumps({"pretrained": str(tiny_model_dir), "device": "cpu"}),
           "--settings", json.dumps({"iterations": 4}), "--out-dir", str(tmp_path / "out"),
           "--progress-every", "2"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    progress = [line for line in run.stdout.splitlines() if line.startswith("[dreammotion] iteration")]
    assert [LINE.match(line).group(1) for line in progress] == ["2", "4"]
    assert "dreammotion edit:" not in run.stderr  # the bar is off


def test_long_rules_announce_their_log(tmp_path, tiny_model_dir):
    """The dry run shows, per edit/upsample/metrics job, the row and a `tail -f` of its log."""
    work = make_project(tmp_path, tiny_model_dir, extra_config={"upsample": {"method": "resize"}})
    dry = snakemake(work, "-n", "-p")
    text = dry.stdout + dry.stderr
    for rule, row in (("edit", "red2blue"), ("edit", "green2red"), ("metrics", "red2blue"),
                      ("upsample", "red2blue")):
        log = f"results/logs/{rule}/dreammotion/{row}.log"
        assert re.search(rf"{rule}( of)? dreammotion/{row}\b.*tail -f {re.escape(log)}", text), (rule, row)
    assert "--progress-every 10 >" in text
