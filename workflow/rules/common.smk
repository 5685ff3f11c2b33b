# The one place that reads and validates the config and the manifest.

import json
import os
import shlex
import sys

from snakemake.utils import validate

from dreammotion.manifest import load_manifest
from dreammotion.tables.run_summary import Job, summarise_run


validate(config, workflow.source_path("../schemas/config.schema.yaml"), set_default=True)

PYTHON = shlex.quote(sys.executable)  # the interpreter running Snakemake has the dreammotion package
DM = f"{PYTHON} -m dreammotion"
RESULTS = config["results"]
MANIFEST = load_manifest(
    config["manifest"],
    workflow.source_path("../schemas/manifest.schema.yaml"),
    default_mask=config["masks"]["default_spec"],
)
ROWS = {row.id: row for row in MANIFEST}
VIDEOS = {row.video_key: row.video for row in MANIFEST}
TABLE_FILES = ["summary.csv", "summary.md", "edits.csv", "edits.md", "edits.tex", "variants.csv", "variants.md", "variants.tex"]
REPORTED_TABLES = ("summary.csv", "summary.md", "variants.csv")
MASKS = {(row.video_key, row.mask_key): row.mask for row in MANIFEST}
for _name in config["run_variants"]:
    if _name not in config["variants"]:
        raise ValueError(f"run_variants names {_name!r}, which is not in variants ({', '.join(config['variants'])})")


wildcard_constraints:
    video=r"[A-Za-z0-9._-]+",
    object=r"[A-Za-z0-9._-]+",
    variant=r"[A-Za-z0-9._-]+",
    id=r"[A-Za-z0-9._-]+",


def as_arg(obj):
    """A JSON value as one shell word."""
    return shlex.quote(json.dumps(obj))


def model_arg():
    return as_arg(config["model"])


def edit_settings(variant, row_id):
    """Library defaults <- config `edit` <- the variant's overrides <- the manifest row's overrides."""
    row = ROWS[row_id]
    settings = dict(config["edit"])
    settings.update({k: v for k, v in config["variants"][variant].items() if k not in ("method", "strength", "steps")})
    settings.update(row.overrides)
    settings["seed"] = row.seed
    return settings


def variant_method(variant):
    return config["variants"][variant].get("method", "dreammotion")


def edit_dir(variant, row_id):
    return f"{RESULTS}/edits/{variant}/{row_id}"


def final_video(variant, row_id):
    if config["upsample"]["method"] == "none":
        return f"{edit_dir(variant, row_id)}/video.mp4"
    return f"{RESULTS}/upsampled/{variant}/{row_id}/video.mp4"


def all_targets(variants=None):
    variants = variants or config["run_variants"]
    targets = []
    for variant in variants:
        for row in MANIFEST:
            targets += [
                f"{edit_dir(variant, row.id)}/compare.mp4",
                final_video(variant, row.id),
                f"{RESULTS}/metrics/{variant}/{row.id}.json",
            ]
    targets += [f"{RESULTS}/tables/summary.csv"]
    targets += report_targets(variants)  # panels and tables page for `snakemake --report` (report.smk)
    return targets


def mask_method(spec):
    if spec == "none":
        return "none"
    if spec.startswith("file:"):
        return "file"
    return config["masks"]["method"]


def row_inputs(wc):
    row = ROWS[wc.id]
    return {
        "latents": f"{RESULTS}/latents/{row.video_key}.safetensors",
        "masks": f"{RESULTS}/masks/{row.video_key}/{row.mask_key}",
        "frames": f"{RESULTS}/frames/{row.video_key}",
    }


def metrics_inputs(wc):
    row = ROWS[wc.id]
    inputs = {
        "input_frames": f"{RESULTS}/frames/{row.video_key}",
        "edit_frames": f"{RESULTS}/edits/{wc.variant}/{wc.id}/frames",
        "masks": f"{RESULTS}/masks/{row.video_key}/{row.mask_key}",
        "info": f"{RESULTS}/edits/{wc.variant}/{wc.id}/edit.json",
    }
    if row.ground_truth is not None:
        inputs["ground_truth"] = f"{RESULTS}/ground_truth/{row.id}"
    return inputs


def upsample_model_option():
    """--model with the second-stage settings, or nothing (interpolate+sr then resizes with Lanczos)."""
    settings = config["upsample"]
    if not settings["pretrained"]:
        return ""
    model = {key: config["model"][key] for key in ("backend", "device", "dtype")}
    model.update({key: settings[key] for key in ("revision", "variant") if settings.get(key)})
    model["pretrained"] = settings["pretrained"]
    return f"--model {as_arg(model)}"


def upsample_options():
    """Optional settings (proposed schema keys; absent keys keep the CLI defaults)."""
    settings = config["upsample"]
    options = []
    if settings.get("height") and settings.get("width"):
        options.append(f"--height {int(settings['height'])} --width {int(settings['width'])}")
    if settings.get("cpu_offload"):
        options.append("--cpu-offload")
    if settings.get("vae_chunk"):
        options.append(f"--vae-chunk {int(settings['vae_chunk'])}")
    if settings.get("interpolation_model"):
        options.append(f"--interpolation-model {shlex.quote(str(settings['interpolation_model']))}")
    if settings.get("interpolation_substitute"):
        options.append(f"--interpolation-substitute {shlex.quote(settings['interpolation_substitute'])}")
    return " ".join(options)


def table_inputs(variants):
    return [f"{RESULTS}/metrics/{v}/{row.id}.json" for v in variants for row in MANIFEST]


def run_jobs(variants):
    return [
        Job(row.id, v, row.video_key, row.mask_key, row.source_prompt, row.target_prompt)
        for v in variants
        for row in MANIFEST
    ]


def table_output(name):
    path = f"{RESULTS}/tables/{name}"
    if name not in REPORTED_TABLES:
        return path
    return report(path, caption="../report/table_file.rst", category="3. Tables", subcategory="files", labels={"file": name})


def write_partial_summary():
    """After a run with failed jobs: list every row, failed ones with the reason."""
    written = summarise_run(RESULTS, run_jobs(config["run_variants"]), f"{RESULTS}/tables")
    print(f"dreammotion: some jobs failed; {RESULTS}/tables/summary.md lists every row and why it failed")
    return written


def report_dir(variant, row_id):
    return f"{RESULTS}/report/{variant}/{row_id}"


def report_targets(variants=None):
    """What the report shows beyond the workflow's own outputs: panels per edit and the tables page."""
    variants = variants or config["run_variants"]
    targets = [f"{report_dir(v, row.id)}/panel.html" for v in variants for row in MANIFEST]
    return targets + [f"{RESULTS}/report/tables.html"]


def panel_inputs(wc):
    row = ROWS[wc.id]
    inputs = {
        "input_frames": f"{RESULTS}/frames/{row.video_key}",
        "masks": f"{RESULTS}/masks/{row.video_key}/{row.mask_key}",
        "edit_frames": f"{edit_dir(wc.variant, wc.id)}/frames",
        "log_csv": f"{edit_dir(wc.variant, wc.id)}/log.csv",
        "edit_json": f"{edit_dir(wc.variant, wc.id)}/edit.json",
    }
    if config["upsample"]["method"] != "none":
        inputs["upsampled_frames"] = f"{RESULTS}/upsampled/{wc.variant}/{wc.id}/frames"
        inputs["upsample_json"] = f"{RESULTS}/upsampled/{wc.variant}/{wc.id}/upsample.json"
    return inputs


def upsampled_options(wc, input):
    if "upsampled_frames" not in input.keys():
        return ""
    return f"--upsampled-frames {shlex.quote(input.upsampled_frames)} --upsample-json {shlex.quote(input.upsample_json)}"
