"""The results layout is defined once: the rules' failure records are the ones the run summary reads."""

import re
import shlex
from pathlib import Path

import pytest

from dreammotion.layout import FAILURE_RECORDS, LOGS, ROW_JOBS, Layout
from dreammotion.tables.run_summary import Job, failure_paths
from conftest import make_project, snakemake

REPO = Path(__file__).parents[1]


def test_every_job_has_a_log_and_a_failure_record():
    assert set(FAILURE_RECORDS) == set(LOGS)
    assert set(ROW_JOBS) <= set(FAILURE_RECORDS)
    layout = Layout("out")
    assert layout.failure_record("masks", video="v", object="o") == "out/failures/videos/v.o.masks.json"
    assert layout.edit_file("{variant}", "{id}", "edit.json") == "out/edits/{variant}/{id}/edit.json"  # a rule's pattern


def test_an_edit_jobs_outputs_are_the_files_the_edit_cli_writes():
    from dreammotion.edit.cli_edit import EDIT_OUTPUTS

    outputs = Layout("out").edit_outputs("v", "r")
    assert list(outputs) == ["latents", "log_csv", "info"]  # the rules' output names
    assert [path.removeprefix("out/edits/v/r/") for path in outputs.values()] == list(EDIT_OUTPUTS)
    assert outputs["info"] == Layout("out").edit_record("v", "r") and outputs["log_csv"] == Layout("out").edit_log("v", "r")


def test_every_rule_builds_its_command_with_the_failure_record_helper():
    """A rule that runs `python -m dreammotion` has its params from dm_params and its shell from dm_shell."""
    for smk in sorted(set((REPO / "workflow" / "rules").glob("*.smk")) - {REPO / "workflow" / "rules" / "common.smk"}):
        text = smk.read_text()
        shells = len(re.findall(r"^\s+shell:$", text, re.M))  # rules inside an `if` are indented more
        assert text.count("dm_shell(") == shells, f"{smk.name}: a rule's shell does not come from dm_shell"
        assert text.count("**dm_params(") == shells, f"{smk.name}: a rule's params do not come from dm_params"


@pytest.mark.parametrize("method,batch_size", [("resize", 1), ("resize", 2), ("interpolate+sr", 1)])
def test_rules_and_run_summary_agree_on_every_failure_path(tmp_path, tiny_model_dir, method, batch_size):
    """Dry-run the workflow (upsampling on, a row with ground truth at both sizes and at the interpolated rate;
    edits one job per row, or both rows in one batch job): every failure record a row's jobs write is one the
    run summary looks for, and each it looks for is written by a job of the row, but for the ground truths the
    row lacks or the method does not use. (A batch job that fails writes its rows' edit records.)"""
    rows = ("id,video,source_prompt,target_prompt,mask,seed,ground_truth,ground_truth_upsampled,"
            "ground_truth_interpolated,ground_truth_interpolation_factor\n"
            'red2blue,clips/red square,a red square,a blue square,"box=1,3,11,11@0",1,clips/green,clips/green,clips/green,2\n'
            "green2red,clips/green,a green square,a red square,none,2,,,,\n")
    work = make_project(tmp_path, tiny_model_dir, rows=rows,
                        extra_config={"upsample": {"method": method}, "edit_batch_size": batch_size})
    dry = snakemake(work, "-n", "-p", "--forceall")
    written = set()
    for line in (dry.stdout + dry.stderr).splitlines():
        if "-m dreammotion" in line:
            words = shlex.split(line)
            assert "--failure-record" in words, f"a job without a failure record: {line}"
            written.add(Path(words[words.index("--failure-record") + 1]))
    from dreammotion.manifest import load_manifest

    rows = load_manifest(work / "manifest.csv", REPO / "workflow" / "schemas" / "manifest.schema.yaml", workdir=work)
    jobs = [Job(row.id, "dreammotion", row.video_key, row.mask_key, "", "") for row in rows]
    looked_for = {path for job in jobs for path in failure_paths(Path("results"), job)}
    row_jobs = {path for path in written
                if not re.search(r"\.(panel|edit_batch)\.json$|failures/(tables|report)/", str(path))}
    assert any(str(path).endswith(".edit_batch.json") for path in written) == (batch_size > 1)
    missing = looked_for - written
    # green2red has no ground truth, and each method uses one of red2blue's two upsampled ones: the summary
    # may look for records no job of that row writes
    unused = "ground_truth_upsampled" if method == "interpolate+sr" else "ground_truth_interpolated"
    assert missing == {Path("results/failures/ground_truth/green2red.json"),
                       Path("results/failures/ground_truth_upsampled/green2red.json"),
                       Path("results/failures/ground_truth_interpolated/green2red.json"),
                       Path(f"results/failures/{unused}/red2blue.json")}, missing
    assert row_jobs <= looked_for, row_jobs - looked_for
