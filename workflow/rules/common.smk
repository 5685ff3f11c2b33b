# The one place that reads and validates the config and the manifest.

import json
import shlex
import sys

from snakemake.utils import validate

from dreammotion.manifest import load_manifest


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
