# The one place that reads and validates the config and the manifest. Everything that the config, the
# manifest and the model's files can tell is checked here (dreammotion.validate), before any job starts
# and before Snakemake looks at a finished file; messages name the file, line, row and field.

import json
import os
import re
import shlex
import sys

from snakemake.utils import validate

from dreammotion.edit.config import merged_settings, sdedit_settings
from dreammotion.layout import Layout
from dreammotion.records import DEFAULT_METHOD
from dreammotion.tables.aggregate import TABLE_FILES
from dreammotion.tables.paper import PAPER_TABLE_FILES
from dreammotion.tables.run_summary import Job, summarise_run
from dreammotion.upsample.config import config_from_dict as upsample_config_from_dict
from dreammotion.upsample.interpolate import output_frame_count
from dreammotion.upsample.resize import target_size
from dreammotion.validate import ConfigSources, check_config, check_run, clip_frames, print_notes

CONFIG_SCHEMA = workflow.source_path("../schemas/config.schema.yaml")
SOURCES = ConfigSources.from_snakemake(
    workflow.configfiles, workflow.config_settings.configfiles, workflow.config_settings.config
)
check_config(config, CONFIG_SCHEMA, SOURCES)  # names the file, line and key of every problem
validate(config, CONFIG_SCHEMA, set_default=True)  # valid now; fills in the schema's defaults
CHECKED = check_run(
    config,
    SOURCES,
    manifest_schema=workflow.source_path("../schemas/manifest.schema.yaml"),
    workflow_dir=workflow.basedir,  # where the embedded model ships: found from any working directory
    tokenizer_checks=workflow.is_main_process,  # cluster jobs re-read the workflow: checked once is enough
)
if workflow.is_main_process:
    print_notes(CHECKED.notes)

PYTHON = shlex.quote(sys.executable)  # the interpreter running Snakemake has the dreammotion package
DM = f"{PYTHON} -m dreammotion"
RESULTS = config["results"]
LAYOUT = Layout(RESULTS)  # every path under results/ (dreammotion.layout)
MANIFEST = CHECKED.rows
UPSAMPLE = upsample_config_from_dict(config["upsample"], "(the config's upsample section)")
ROWS = {row.id: row for row in MANIFEST}
VIDEOS = {row.video_key: row.video_path for row in MANIFEST}
REPORTED_TABLES = ("summary.csv", "summary.md", "variants.csv")
MASKS = {(row.video_key, row.mask_key): row.mask for row in MANIFEST}


def untracked(value):
    """A param that Snakemake's `params` rerun trigger does not record.

    For values that say where things are on this machine (the interpreter, a model folder found in the
    workflow's folder, which rows share a mask), not what a job computes: a project copied to another
    folder, or a manifest renamed or reordered, reruns nothing. Snakemake leaves out of its record the
    params computed by functions that take `threads` (or input/output/resources); it calls them derived.
    """

    def param(wildcards, threads):
        return value(wildcards) if callable(value) else value

    return param


wildcard_constraints:
    video=r"[A-Za-z0-9._-]+",
    object=r"[A-Za-z0-9._-]+",
    variant=r"[A-Za-z0-9._-]+",
    id=r"[A-Za-z0-9._-]+",


def as_arg(obj):
    """A JSON value as one shell word; keys sorted, so that reordering keys in the config reruns nothing."""
    return shlex.quote(json.dumps(obj, sort_keys=True))


def model_arg():
    """The model as the config writes it: what the params trigger compares."""
    return as_arg(config["model"])


def model_job_arg():
    """The model as the jobs load it (a relative folder found in the workflow's folder becomes absolute)."""
    return as_arg({**config["model"], "pretrained": CHECKED.model.pretrained})


def metrics_job_arg():
    """The metrics settings as the jobs use them: the CLIP folder as found (see model_job_arg)."""
    return as_arg({**config["metrics"], "clip": {**config["metrics"]["clip"], "pretrained": CHECKED.metrics_clip}})


def edit_settings(variant, row_id):
    """Library defaults <- config `edit` <- the variant's overrides <- the manifest row's overrides, with
    `window: auto` resolved from the model (dreammotion.edit.config.resolve_windows).

    The start-up checks built an EditConfig from these very settings (dreammotion.validate).
    """
    row = ROWS[row_id]
    return merged_settings(config["edit"], config["variants"][variant], row.overrides, row.seed,
                           model_window=CHECKED.model_window, clip_frames=clip_frames(config["frames"]))


def variant_method(variant):
    return config["variants"][variant].get("method", DEFAULT_METHOD)


def edit_batches():
    """{variant: {batch: [row ids]}}: with `edit_batch_size` > 1, the rows of each DreamMotion variant in
    manifest order, that many to a batch job (`dreammotion edit-batch`, rule edit_batch); {} otherwise."""
    size = config["edit_batch_size"]
    if size <= 1:
        return {}
    ids = [row.id for row in MANIFEST]
    chunks = {f"b{start // size:04d}": ids[start : start + size] for start in range(0, len(ids), size)}
    return {variant: chunks for variant in config["variants"] if variant_method(variant) == "dreammotion"}


EDIT_BATCHES = edit_batches()
ROW_BATCH = {(variant, row_id): batch for variant, chunks in EDIT_BATCHES.items()
             for batch, ids in chunks.items() for row_id in ids}


def batched_variants_pattern():
    """The wildcard constraint of the batched rules: exactly the variants that have batches."""
    return "|".join(re.escape(variant) for variant in EDIT_BATCHES) or "(?!)"


def batch_inputs(wc):
    paths = [row_paths(i) for i in EDIT_BATCHES[wc.variant][wc.batch]]
    return {key: list(dict.fromkeys(p[key] for p in paths)) for key in ("latents", "masks")}


def batch_jobs(wc):
    """The --jobs of one batch job: per row what its own edit job would be asked (the same request, so
    that the row's job recognises the staged result as its own)."""
    jobs = []
    for row_id in EDIT_BATCHES[wc.variant][wc.batch]:
        row, paths = ROWS[row_id], row_paths(row_id)
        jobs.append({
            "id": row_id,
            "latents": paths["latents"],
            "masks": paths["masks"],
            "source_prompt": row.source_prompt,
            "target_prompt": row.target_prompt,
            "settings": edit_settings(wc.variant, row_id),
            "staged": f"{LAYOUT.edit_batch_dir(wc.variant, wc.batch)}/{row_id}",
            "checkpoint": LAYOUT.checkpoint(wc.variant, row_id),
            "failure_record": LAYOUT.failure_record("edit", variant=wc.variant, id=row_id),
        })
    return as_arg(jobs)


def dm_params(job):
    """The params of every dreammotion job (spread into the rule's params: `**dm_params("edit")`): the
    interpreter (untracked) and where the job records its failure (dreammotion.layout, which the run
    summary reads)."""
    return {
        "dm": untracked(DM),
        "failure": lambda wc: LAYOUT.failure_record(job, **dict(wc.items())),
    }


def dm_shell(stage, arguments):
    """The shell command of a dreammotion job, with its failure record and its log.

    Every rule builds its command here, so that no rule can leave out `--failure-record` (the rule's
    params come from dm_params).
    """
    return f"{{params.dm}} --failure-record {{params.failure:q}} {stage} {arguments} > {{log:q}} 2>&1"


def edit_dir(variant, row_id):
    return LAYOUT.edit_dir(variant, row_id)


def final_video(variant, row_id):
    if UPSAMPLE.method == "none":
        return LAYOUT.edit_video(variant, row_id)
    return LAYOUT.upsampled_video(variant, row_id)


def all_targets(variants=None):
    variants = variants or config["run_variants"]
    targets = []
    for variant in variants:
        for row in MANIFEST:
            targets += [
                LAYOUT.edit_compare(variant, row.id),
                final_video(variant, row.id),
                LAYOUT.metrics(variant, row.id),
            ]
    targets += [LAYOUT.table("summary.csv")]
    targets += report_targets(variants)  # panels and tables page for `snakemake --report` (report.smk)
    return targets


def mask_method(spec):
    if spec == "none":
        return "none"
    if spec.startswith("file:"):
        return "file"
    return config["masks"]["method"]


def row_paths(row_id):
    """The latents, masks and frames a row's edit reads (one place for the edit and batch rules)."""
    row = ROWS[row_id]
    return {
        "latents": LAYOUT.latents(row.video_key),
        "masks": LAYOUT.masks(row.video_key, row.mask_key),
        "frames": LAYOUT.frames(row.video_key),
    }


def row_inputs(wc):
    return row_paths(wc.id)


def metrics_inputs(wc):
    row = ROWS[wc.id]
    inputs = {
        "input_frames": LAYOUT.frames(row.video_key),
        "edit_frames": LAYOUT.edit_frames(wc.variant, wc.id),
        "masks": LAYOUT.masks(row.video_key, row.mask_key),
        "info": LAYOUT.edit_record(wc.variant, wc.id),
    }
    if row.ground_truth is not None:
        inputs["ground_truth"] = LAYOUT.ground_truth(row.id)
    if row.ground_truth_masks_path is not None:
        inputs["gt_masks"] = row.ground_truth_masks_path
    if UPSAMPLE.method != "none":
        # The cascade's clip is measured in the same record (dreammotion.metrics.upsampled).
        inputs["upsampled_frames"] = LAYOUT.upsampled_frames(wc.variant, wc.id)
        truth = upsampled_ground_truth(row)
        if truth is not None:
            inputs["gt_upsampled"] = truth
    if UPSAMPLE.method == "interpolate+sr":
        # its k and interpolated clip: the Lanczos baseline of the keyframe route is that clip, resized
        inputs["upsample_json"] = LAYOUT.upsample_record(wc.variant, wc.id)
    return inputs


def upsampled_ground_truth(row):
    """The row's ground truth at the upsampled clip's size and frame rate, or None.

    interpolate+sr makes (F - 1) * k + 1 frames: its truth is the row's ground_truth_interpolated (decoded
    at the row's own k; another k than the config's reads missing with the frame counts). A row without
    one gets its ground_truth_upsampled, right for k = 1 and otherwise missing with the reason, so that
    the record says why (a metric is never silently left out)."""
    if UPSAMPLE.method == "interpolate+sr" and row.ground_truth_interpolated_path is not None:
        return LAYOUT.ground_truth_interpolated(row.id)
    if row.ground_truth_upsampled_path is not None:
        return LAYOUT.ground_truth_upsampled(row.id)
    return None


def metrics_upsampled_options(wc, input):
    """--upsampled-frames, --upsampled-ground-truth and --upsample-json, where metrics_inputs has them."""
    options = []
    if "upsampled_frames" in input.keys():
        options += ["--upsampled-frames", input.upsampled_frames]
    if "gt_upsampled" in input.keys():
        options += ["--upsampled-ground-truth", input.gt_upsampled]
    if "upsample_json" in input.keys():
        options += ["--upsample-json", input.upsample_json]
    return " ".join(shlex.quote(option) for option in options)


def frames_settings(height=None, width=None, frame_rate_factor=1):
    """The frames stage's options from config["frames"]; at another size where given (the ground
    truth at the cascade's size), and at `frame_rate_factor` k times the frame rate (the ground truth of
    interpolate+sr): (num_frames - 1) * k + 1 frames, at fps * k when the config resamples, from the same
    start time, so that frame i * k is the input's frame i."""
    frames = config["frames"]
    count = frames["num_frames"]
    if count != "all":
        count = output_frame_count(count, frame_rate_factor)
    options = [
        f"--num-frames {count}",
        f"--height {height or frames['height']}",
        f"--width {width or frames['width']}",
        f"--resize {frames['resize']}",
        f"--start {frames['start']}",
    ]
    return " ".join(options + ([f"--fps {frames['fps'] * frame_rate_factor}"] if frames["fps"] else []))


def upsampled_size():
    """(height, width) of the cascade's output, as the upsample stage computes it."""
    return target_size(config["frames"]["height"], config["frames"]["width"], UPSAMPLE.scale,
                       target_height=UPSAMPLE.height, target_width=UPSAMPLE.width)


def upsample_model_option(for_jobs=False):
    """--model with the second-stage settings, or nothing (interpolate+sr then resizes with Lanczos).

    for_jobs: the folder as found (see model_job_arg); otherwise as the config writes it.
    """
    model = UPSAMPLE.model_settings()
    if model is None:
        return ""
    model.update({key: config["model"][key] for key in ("backend", "device", "dtype")})
    found = CHECKED.upsample_model
    if for_jobs and found:
        model["pretrained"] = found.pretrained
    return f"--model {as_arg(model)}"


def table_inputs(variants):
    return [LAYOUT.metrics(v, row.id) for v in variants for row in MANIFEST]


def run_jobs(variants):
    return [
        Job(row.id, v, row.video_key, row.mask_key, row.source_prompt, row.target_prompt, variant_method(v))
        for v in variants
        for row in MANIFEST
    ]


def table_output(name):
    path = LAYOUT.table(name)
    if name not in REPORTED_TABLES:
        return path
    return report(path, caption="../report/table_file.rst", category="3. Tables", subcategory="files", labels={"file": name})


def benchmark_output(name):
    """A file of `snakemake tables` (results/benchmark/); the ones the report offers for download wrapped in report()."""
    path = LAYOUT.benchmark_table(name)
    if name not in REPORTED_TABLES:
        return path
    return report(path, caption="../report/table_file.rst", category="4. Benchmark", subcategory="files", labels={"file": name})


def write_partial_summary():
    """After a run with failed jobs: list every row, failed ones with the reason."""
    written = summarise_run(RESULTS, run_jobs(config["run_variants"]), LAYOUT.tables_dir())
    print(f"dreammotion: some jobs failed; {LAYOUT.table('summary.md')} lists every row and why it failed")
    return written


def report_dir(variant, row_id):
    return LAYOUT.report_dir(variant, row_id)


def report_targets(variants=None):
    """What the report shows beyond the workflow's own outputs: panels per edit and the tables page."""
    variants = variants or config["run_variants"]
    targets = [f"{report_dir(v, row.id)}/panel.html" for v in variants for row in MANIFEST]
    return targets + [LAYOUT.report_file("tables.html")]


def panel_inputs(wc):
    row = ROWS[wc.id]
    inputs = {
        "input_frames": LAYOUT.frames(row.video_key),
        "masks": LAYOUT.masks(row.video_key, row.mask_key),
        "edit_frames": LAYOUT.edit_frames(wc.variant, wc.id),
        "log_csv": LAYOUT.edit_log(wc.variant, wc.id),
        "edit_json": LAYOUT.edit_record(wc.variant, wc.id),
    }
    if UPSAMPLE.method != "none":
        inputs["upsampled_frames"] = LAYOUT.upsampled_frames(wc.variant, wc.id)
        inputs["upsample_json"] = LAYOUT.upsample_record(wc.variant, wc.id)
    inputs["metrics_json"] = LAYOUT.metrics(wc.variant, wc.id)
    if row.ground_truth is not None:
        inputs["ground_truth"] = LAYOUT.ground_truth(row.id)
    return inputs


def panel_options(wc, input):
    """The panel's optional inputs: the upsampled edit and the row's ground truth, where they exist."""
    options = []
    if "upsampled_frames" in input.keys():
        options += ["--upsampled-frames", input.upsampled_frames, "--upsample-json", input.upsample_json]
    if "ground_truth" in input.keys():
        options += ["--ground-truth-frames", input.ground_truth]
    return " ".join(shlex.quote(option) for option in options)
