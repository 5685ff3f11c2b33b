"""End to end: `snakemake` on a 2-row manifest of generated clips with a tiny random model."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import REPO, SNAKEMAKE, make_project, snakemake

pytestmark = pytest.mark.slow


def test_workflow_runs_every_stage_and_a_second_run_does_nothing(tmp_path, tiny_model_dir):
    work = make_project(tmp_path, tiny_model_dir)
    dry = snakemake(work, "-n")
    shown = dry.stdout + dry.stderr
    for rule in ("frames", "masks", "encode", "edit", "decode", "metrics", "run_tables"):
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
        if row == "red2blue":
            assert info["target_prompt"] == 'a "blue" square; $(id) & `x`'  # shell metacharacters reach the edit
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
    check_finished_rows_are_never_recomputed(work)


def planned(result) -> list[tuple[str, str]]:
    """(rule, wildcards) of every job a dry run plans. Rules with a `message:` (edit, metrics,
    upsample: "<rule> <variant>/<id>: ...") are shown by it instead of "rule <name>:"."""
    text = result.stdout + result.stderr
    shown = re.findall(r"^rule (\w+):\n(?:    .*\n)*?    wildcards: (.*)$", text, flags=re.M)
    by_message = re.findall(r"^Job \d+: (edit|metrics|upsample) ([^/\s]+)/([^:\s]+):", text, flags=re.M)
    return shown + [(rule, f"variant={variant}, id={row}") for rule, variant, row in by_message]


def outputs_state(results: Path) -> dict:
    return {str(p): p.stat().st_mtime_ns for p in results.rglob("*") if p.is_file() and ".snakemake" not in p.parts}


def check_finished_rows_are_never_recomputed(work: Path):
    """After a finished run: renaming the manifest, reordering rows, inserting a row above the others and
    copying the project elsewhere plan no job for a finished row; bad config stops before touching anything."""
    results = work / "results"
    before = outputs_state(results)
    config = yaml.safe_load((work / "config.yaml").read_text())
    lines = (work / "manifest.csv").read_text().splitlines(keepends=True)

    (work / "manifest.csv").rename(work / "edits.csv")
    (work / "edits.csv").write_text(lines[0] + "".join(reversed(lines[1:])))  # renamed and reordered
    edit_reversed = dict(reversed(list(config["edit"].items())))  # keys in another order: the same settings
    (work / "config.yaml").write_text(yaml.safe_dump({**config, "manifest": "edits.csv", "edit": edit_reversed}, sort_keys=False))
    dry = snakemake(work, "-n")
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-3000:]

    inserted = "blue1,clips/green,a green square,a blue square,none,5\n"
    (work / "edits.csv").write_text(lines[0] + inserted + "".join(reversed(lines[1:])))
    jobs = planned(snakemake(work, "-n"))
    assert {rule for rule, _ in jobs} == {"edit", "decode", "metrics", "panel"}, jobs
    assert all("id=blue1" in wildcards for _, wildcards in jobs), jobs

    (work / "edits.csv").write_text(lines[0] + "".join(reversed(lines[1:])))
    copy = work.parent / "copied project"
    shutil.copytree(work, copy, symlinks=True)
    dry = snakemake(copy, "-n")
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-3000:]

    # a typo in the edit settings stops a real run at start-up, naming the file and key; nothing is touched
    (work / "config.yaml").write_text(yaml.safe_dump({**config, "manifest": "edits.csv", "edit": {"iteratons": 2}}))
    failed = snakemake(work, check=False)
    assert failed.returncode != 0
    out = failed.stdout + failed.stderr
    assert f"{work / 'config.yaml'} line " in out and "key edit.iteratons: unknown edit setting 'iteratons' (did you mean 'iterations'?)" in out
    assert outputs_state(results) == before


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


STARTUP_ERRORS = {
    "overlong prompt": (
        {}, "id,video,source_prompt,target_prompt\nok,clips/green,a green square,a red square\n"
            f"long,clips/green,a green square,{' '.join(['red'] * 20)}\n",
        "manifest.csv line 3 (id 'long'), field 'target_prompt': prompt needs 22 tokens; the text encoder of {model} reads at most 16",
    ),
    "unknown words": (
        {"validation": {"unknown_words": "error"}},
        "id,video,source_prompt,target_prompt\nc,clips/green,a green square,a crimson hatch\n",
        "manifest.csv line 2 (id 'c'), field 'target_prompt': 'crimson', 'hatch' are not in the vocabulary of {model}",
    ),
    "frame size": ({"frames": {"height": 15}}, None, "key frames.height: 15 is not a multiple of 2"),
    "edit setting type": ({"edit": {"lr": "fast"}}, None, "key edit.lr: lr must be a number, got 'fast'"),
    "config type": ({"frames": {"num_frames": "eight"}}, None, "key frames.num_frames: 'eight' is not of type 'integer'"),
    "missing model": ({"model": {"pretrained": "models/sub/none"}}, None, "key model.pretrained: model folder models/sub/none does not exist"),
    "mask outside": (
        {}, 'id,video,source_prompt,target_prompt,mask\nm,clips/green,a green square,a red square,"box=2,2,20,9@0"\n',
        "manifest.csv line 2 (id 'm'), field 'mask': mask spec 'box=2,2,20,9@0': box lies outside the 16x16 (WxH) frame",
    ),
    "mask frame": (
        {}, 'id,video,source_prompt,target_prompt,mask\nm,clips/green,a green square,a red square,"points=2,2@4"\n',
        "frame 4 does not exist (the clip has 4 frames, 0..3)",
    ),
}


@pytest.mark.parametrize("case", list(STARTUP_ERRORS))
def test_bad_input_is_named_at_start_up(tmp_path, tiny_model_dir, case):
    extra, rows, words = STARTUP_ERRORS[case]
    work = make_project(tmp_path, tiny_model_dir, extra_config=extra, rows=rows)
    result = snakemake(work, "-n", check=False)
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert words.format(model=tiny_model_dir) in out, out[-3000:]
    assert "Traceback" not in out and not (work / "results").exists()


def test_config_errors_name_the_config_file(tmp_path, tiny_model_dir):
    work = make_project(tmp_path, tiny_model_dir)
    (work / "config").mkdir()
    text = (work / "config.yaml").read_text()
    (work / "config" / "config.yaml").write_text(text.replace("  height: 16\n", "  height: [16\n"))
    result = snakemake(work, "-n", check=False, configfile=False)  # the Snakefile's own config/config.yaml
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert re.search(r"config/config.yaml line \d+, column \d+: not valid YAML", out), out[-3000:]
    (work / "config" / "config.yaml").write_text(text.replace("  height: 16\n", "  height: sixteen\n"))
    result = snakemake(work, "-n", check=False, configfile=False)
    out = result.stdout + result.stderr
    assert re.search(r"config/config.yaml line \d+, key frames.height: 'sixteen' is not of type 'integer'", out), out[-3000:]


def test_non_utf8_manifest_is_named_at_start_up(tmp_path, tiny_model_dir):
    work = make_project(tmp_path, tiny_model_dir)
    (work / "manifest.csv").write_bytes(b"id,video,source_prompt,target_prompt\nc,clips/green,a gr\xfcn square,a red square\n")
    result = snakemake(work, "-n", check=False)
    out = result.stdout + result.stderr
    assert result.returncode != 0 and "manifest.csv line 2: the manifest is not UTF-8 text (byte 0xfc" in out, out[-3000:]


def test_default_model_is_found_from_any_working_directory(tmp_path):
    """`snakemake -s path/to/Snakefile` elsewhere: the embedded model's relative default resolves to the workflow."""
    work = make_project(tmp_path, Path("unused"))
    config = yaml.safe_load((work / "config.yaml").read_text())
    del config["model"]["pretrained"]
    config["frames"].update(height=32, width=32)
    config["validation"]["unknown_words"] = "error"
    (work / "manifest.csv").write_text("id,video,source_prompt,target_prompt\nr,clips/green,a green square,a red square\n")
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(work, "-n", "-p")
    assert str((REPO / "data/models/dreammotion-shapes-t2v").resolve()) in result.stdout


def test_long_clip_is_edited_in_windows_of_the_model_end_to_end(tmp_path):
    """`frames.num_frames: all` on a 32-frame synthetic clip with the embedded prior (8-frame window): every
    stage sees 32 frames, the edit runs in windows of the model's 8 frames (window and overlap left at auto),
    and the metrics and the report's per-frame plot come out."""
    from dreammotion.synthetic.suite import build_suite

    suite = tmp_path / "suite"
    row = build_suite(suite, n=1, seed=3, frames=32)[0]
    (suite / "manifest.csv").write_text(  # the source as a video file (lossless mp4), the truth as PNG frames
        "id,video,source_prompt,target_prompt,mask,seed,ground_truth\n"
        f"{row['id']},{row['id']}/source.mp4,{row['source_prompt']},{row['target_prompt']},{row['mask']},0,"
        f"{row['ground_truth']}\n")
    config = {
        "manifest": "suite/manifest.csv",
        "model": {"device": "cpu"},  # the embedded prior, found in the workflow's folder
        "frames": {"num_frames": "all", "height": 32, "width": 32},
        "edit": {"iterations": 2, "guidance_scale": 2},
        "metrics": {"clip": {"pretrained": None}, "motion": {"tracker": "lucas-kanade"}},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    snakemake(tmp_path)

    results = tmp_path / "results"
    frame_folders = [results / "frames" / next(p.name for p in (results / "frames").iterdir()),
                     results / "ground_truth" / row["id"], results / "edits" / "dreammotion" / row["id"] / "frames"]
    for folder in frame_folders:
        assert len(list(folder.glob("*.png"))) == 32, folder
    info = json.loads((results / "edits" / "dreammotion" / row["id"] / "edit.json").read_text())
    assert (info["settings"]["window"], info["settings"]["window_overlap"]) == (8, 4)  # from the model's training.json
    metrics = json.loads((results / "metrics" / "dreammotion" / f"{row['id']}.json").read_text())["metrics"]
    for name in ("gt_psnr", "gt_psnr_inside_mask", "gt_ssim", "runtime_s"):
        assert metrics[name]["status"] == "ok", (name, metrics[name])
    for name, entry in metrics.items():  # every metric is there: a finite value, or missing/failed with why
        assert entry["status"] in ("ok", "missing", "failed"), name
        assert np.isfinite(entry["value"]) if entry["status"] == "ok" else entry["reason"], (name, entry)
    assert len(metrics["gt_psnr"]["per_frame"]) == 32 and all(np.isfinite(metrics["gt_psnr"]["per_frame"]))
    panel = results / "report" / "dreammotion" / row["id"]
    assert Image.open(panel / "frames.png").size[0] > 0
    assert 'id="per-frame"' in (panel / "panel.html").read_text()


def test_tables_target_plans_the_benchmark_report(tmp_path, tiny_model_dir):
    """`snakemake tables` builds the benchmark tables and their report page (charts), not only the tables."""
    work = make_project(tmp_path, tiny_model_dir)
    dry = snakemake(work, "-n", "tables")
    shown = dry.stdout + dry.stderr
    for rule in ("benchmark_tables", "report_benchmark"):
        assert re.search(rf"^(local)?rule {rule}:", shown, flags=re.M), rule
    assert "results/report/benchmark/benchmark.html" in shown and "results/report/benchmark/plots" in shown


# Rules declare no conda environment on purpose: every job runs `python -m dreammotion` with the
# interpreter that runs Snakemake (the project's venv or conda env), see docs/cluster.md. That is the
# one lint Snakemake reports, once per rule; any other lint fails the test.
ACCEPTED_LINT = "Specify a conda environment or container for each rule.:"


def test_lint_passes():
    result = subprocess.run([*SNAKEMAKE, "--lint", "--snakefile", str(REPO / "Snakefile")], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    lints = re.findall(r"^    \* (.+)$", output, re.M)  # "    * <lint>:" under "Lints for rule ..."
    assert lints, f"snakemake --lint printed no lint at all (its format changed?):\n{output[-4000:]}"
    assert set(lints) == {ACCEPTED_LINT}, output[-4000:]
    assert "conda:" not in "".join(p.read_text() for p in (REPO / "workflow/rules").glob("*.smk"))
