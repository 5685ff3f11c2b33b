"""Every path under ``results/``, named once.

The workflow's rules (through ``workflow/rules/common.smk``), the run summary after a failed run
(``dreammotion.tables.run_summary``) and the tests all take their paths from here, so that a stage's
output, its log and its failure record cannot be spelled two ways.

Each method takes the keys of one job (video, object, variant, id) and returns a path as a string.
Given the wildcard names themselves (``"{variant}"``), it returns the pattern a Snakemake rule
declares. Torch-free and Snakemake-free.
"""

from __future__ import annotations

from pathlib import Path

from dreammotion.records import CLIP_FRAMES, CLIP_VIDEO, EDIT_COMPARE, EDIT_LATENTS, EDIT_LOG, EDIT_RECORD, UPSAMPLE_RECORD

# Where each job records its failure (``python -m dreammotion --failure-record PATH``), relative to
# the results folder, by job (the workflow's rule names). Per-video jobs under videos/, per-edit jobs
# under the variant's folder, the ground truth of a row under ground_truth/.
FAILURE_RECORDS = {
    "frames": "failures/videos/{video}.frames.json",
    "masks": "failures/videos/{video}.{object}.masks.json",
    "encode": "failures/videos/{video}.encode.json",
    "ground_truth_frames": "failures/ground_truth/{id}.json",
    "ground_truth_upsampled_frames": "failures/ground_truth_upsampled/{id}.json",
    "ground_truth_interpolated_frames": "failures/ground_truth_interpolated/{id}.json",
    "edit": "failures/{variant}/{id}.edit.json",
    "edit_batch": "failures/{variant}/{batch}.edit_batch.json",
    "decode": "failures/{variant}/{id}.decode.json",
    "upsample": "failures/{variant}/{id}.upsample.json",
    "metrics": "failures/{variant}/{id}.metrics.json",
    "panel": "failures/{variant}/{id}.panel.json",
    "run_tables": "failures/tables/run_tables.json",
    "benchmark_tables": "failures/tables/benchmark.json",
    "report_tables": "failures/report/tables.json",
    "report_benchmark": "failures/report/benchmark.json",
}

# The log of each job, relative to the results folder.
LOGS = {
    "frames": "logs/frames/{video}.log",
    "masks": "logs/masks/{video}/{object}.log",
    "encode": "logs/encode/{video}.log",
    "ground_truth_frames": "logs/ground_truth/{id}.log",
    "ground_truth_upsampled_frames": "logs/ground_truth_upsampled/{id}.log",
    "ground_truth_interpolated_frames": "logs/ground_truth_interpolated/{id}.log",
    "edit": "logs/edit/{variant}/{id}.log",
    "edit_batch": "logs/edit_batch/{variant}/{batch}.log",
    "decode": "logs/decode/{variant}/{id}.log",
    "upsample": "logs/upsample/{variant}/{id}.log",
    "metrics": "logs/metrics/{variant}/{id}.log",
    "panel": "logs/report/panel/{variant}/{id}.log",
    "run_tables": "logs/tables/run_tables.log",
    "benchmark_tables": "logs/tables/benchmark.log",
    "report_tables": "logs/report/tables.log",
    "report_benchmark": "logs/report/benchmark.log",
}

# The jobs that a row's edit passes through before its metrics record exists, downstream first: the
# run summary of a failed run looks for their failure records in this order (the first it finds is
# the reason the row has no metrics).
ROW_JOBS = ("metrics", "ground_truth_frames", "ground_truth_upsampled_frames", "ground_truth_interpolated_frames",
            "upsample", "decode", "edit", "masks", "encode", "frames")


GPU_LOCKS = ".gpu-locks"  # under results/: the stages' --gpu-lock-dir default is results/GPU_LOCKS


class Layout:
    """The paths of one results folder (the config's ``results``)."""

    def __init__(self, results: str | Path):
        self.results = str(results)

    def _path(self, relative: str) -> str:
        return f"{self.results}/{relative}"

    # -- per video ----------------------------------------------------------------------------------

    def frames(self, video: str) -> str:
        """Model-sized PNG frames of one video (a folder)."""
        return self._path(f"frames/{video}")

    def masks(self, video: str, mask: str) -> str:
        """The masks of one object of one video (a folder)."""
        return self._path(f"masks/{video}/{mask}")

    def latents(self, video: str) -> str:
        return self._path(f"latents/{video}.safetensors")

    def prompt_cache(self) -> str:
        """Text embeddings per prompt, shared by every edit."""
        return self._path("latents/prompts")

    # -- per edit -----------------------------------------------------------------------------------

    def edit_dir(self, variant: str, edit_id: str) -> str:
        return self._path(f"edits/{variant}/{edit_id}")

    def edit_file(self, variant: str, edit_id: str, name: str) -> str:
        """A file of the edit folder: latents.safetensors, log.csv, edit.json, video.mp4, compare.mp4, frames."""
        return f"{self.edit_dir(variant, edit_id)}/{name}"

    def edit_outputs(self, variant: str, edit_id: str) -> dict[str, str]:
        """What an edit job writes, by the rules' output names: latents, log_csv, info (edit.json)."""
        return {"latents": self.edit_file(variant, edit_id, EDIT_LATENTS),
                "log_csv": self.edit_log(variant, edit_id), "info": self.edit_record(variant, edit_id)}

    def edit_record(self, variant: str, edit_id: str) -> str:
        """The edit's edit.json (dreammotion.records)."""
        return self.edit_file(variant, edit_id, EDIT_RECORD)

    def edit_log(self, variant: str, edit_id: str) -> str:
        """The edit's log.csv, a row per logged iteration (dreammotion.records.LOG_COLUMNS)."""
        return self.edit_file(variant, edit_id, EDIT_LOG)

    def edit_frames(self, variant: str, edit_id: str) -> str:
        """The decoded edit as frames (a folder); beside it edit_video and edit_compare."""
        return self.edit_file(variant, edit_id, CLIP_FRAMES)

    def edit_video(self, variant: str, edit_id: str) -> str:
        return self.edit_file(variant, edit_id, CLIP_VIDEO)

    def edit_compare(self, variant: str, edit_id: str) -> str:
        return self.edit_file(variant, edit_id, EDIT_COMPARE)

    def checkpoint(self, variant: str, edit_id: str) -> str:
        """The edit's checkpoint while it runs (deleted once the edit is done)."""
        return self._path(f"checkpoints/{variant}/{edit_id}.pt")

    def edit_batch_dir(self, variant: str, batch: str) -> str:
        """What one batch job (several rows' edits optimised together) made: a folder per row
        (its staged result or failure, which the row's own edit job takes over) and batch.json."""
        return self._path(f"batches/{variant}/{batch}")

    def upsampled_dir(self, variant: str, edit_id: str) -> str:
        return self._path(f"upsampled/{variant}/{edit_id}")

    def upsampled_file(self, variant: str, edit_id: str, name: str) -> str:
        """A file of the upsampled edit's folder: frames, video.mp4, upsample.json."""
        return f"{self.upsampled_dir(variant, edit_id)}/{name}"

    def upsampled_frames(self, variant: str, edit_id: str) -> str:
        return self.upsampled_file(variant, edit_id, CLIP_FRAMES)

    def upsampled_video(self, variant: str, edit_id: str) -> str:
        return self.upsampled_file(variant, edit_id, CLIP_VIDEO)

    def upsample_record(self, variant: str, edit_id: str) -> str:
        return self.upsampled_file(variant, edit_id, UPSAMPLE_RECORD)

    def metrics(self, variant: str, edit_id: str) -> str:
        """The edit's metrics record (dreammotion.metrics.record)."""
        return self._path(f"metrics/{variant}/{edit_id}.json")

    def ground_truth(self, edit_id: str) -> str:
        """The true edited clip of a synthetic row, as frames (a folder)."""
        return self._path(f"ground_truth/{edit_id}")

    def ground_truth_upsampled(self, edit_id: str) -> str:
        """The true edited clip of a synthetic row at the cascade's output resolution (a folder)."""
        return self._path(f"ground_truth_upsampled/{edit_id}")

    def ground_truth_interpolated(self, edit_id: str) -> str:
        """The true edited clip of a synthetic row at the cascade's output resolution and the frame rate of
        its temporal interpolation (upsample.method interpolate+sr; a folder)."""
        return self._path(f"ground_truth_interpolated/{edit_id}")

    def report_dir(self, variant: str, edit_id: str) -> str:
        """The report's panel of one edit: panel.gif, panel.mp4, panel.html, loss.png."""
        return self._path(f"report/{variant}/{edit_id}")

    # -- tables and report --------------------------------------------------------------------------

    def tables_dir(self) -> str:
        """Tables of the variants the default target builds."""
        return self._path("tables")

    def table(self, name: str) -> str:
        return f"{self.tables_dir()}/{name}"

    def benchmark_dir(self) -> str:
        """Tables of every variant over the whole manifest (`snakemake tables`)."""
        return self._path("benchmark")

    def benchmark_table(self, name: str) -> str:
        return f"{self.benchmark_dir()}/{name}"

    def report_file(self, name: str) -> str:
        """A page of the report: tables.html, benchmark/benchmark.html, benchmark/plots."""
        return self._path(f"report/{name}")

    # -- jobs ---------------------------------------------------------------------------------------

    def gpu_locks(self) -> str:
        """Lock files that share this machine's GPUs between concurrent jobs."""
        return self._path(GPU_LOCKS)

    def log(self, job: str, **keys: str) -> str:
        """The log of one job (LOGS), e.g. ``log("edit", variant="full", id="dog")``."""
        return self._path(_fill(LOGS, job, keys))

    def failure_record(self, job: str, **keys: str) -> str:
        """Where one job records its failure (FAILURE_RECORDS), e.g. ``failure_record("masks", video=.., object=..)``."""
        return self._path(_fill(FAILURE_RECORDS, job, keys))


def _fill(templates: dict[str, str], job: str, keys: dict[str, str]) -> str:
    try:
        template = templates[job]
    except KeyError:
        raise KeyError(f"no path for job {job!r}; known jobs: {', '.join(templates)}") from None
    try:
        return template.format(**keys)
    except KeyError as err:
        raise KeyError(f"the path of job {job!r} ({template}) needs the key {err.args[0]!r}") from None
