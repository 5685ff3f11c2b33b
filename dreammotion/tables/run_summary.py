"""The summary of a run that did not finish: every row is listed, failed ones with the reason.

Called when a workflow run ends with failed jobs (``--keep-going``): finished rows come from their
metrics records; the others from the failure record their stage wrote (``--failure-record``), or are
listed as not run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dreammotion.metrics.record import build_failed_record
from dreammotion.records import read_failure_record
from dreammotion.tables.aggregate import load_record, write_tables


@dataclass(frozen=True)
class Job:
    id: str
    variant: str
    video_key: str
    mask_key: str
    source_prompt: str
    target_prompt: str


def failure_paths(results: Path, job: Job) -> list[Path]:
    """Where each stage of this row records its failure, downstream stages first."""
    row = results / "failures" / job.variant
    video = results / "failures" / "videos"
    return [
        row / f"{job.id}.metrics.json",
        row / f"{job.id}.upsample.json",
        row / f"{job.id}.decode.json",
        row / f"{job.id}.edit.json",
        video / f"{job.video_key}.{job.mask_key}.masks.json",
        video / f"{job.video_key}.encode.json",
        video / f"{job.video_key}.frames.json",
    ]


def record_for(results: Path, job: Job) -> dict:
    metrics = results / "metrics" / job.variant / f"{job.id}.json"
    if metrics.exists():
        return load_record(metrics)
    info = {"source_prompt": job.source_prompt, "target_prompt": job.target_prompt}
    for path in failure_paths(results, job):
        if path.exists():
            failure = read_failure_record(path)
            record = build_failed_record(
                edit_id=job.id, variant=job.variant, edit_info=info,
                error=f"{failure['stage']} failed: {failure['error']} (log: {results}/logs/{failure['stage']}/)",
            )
            return {**record, "_source": str(path)}
    record = build_failed_record(
        edit_id=job.id, variant=job.variant, edit_info=info,
        error="not finished: the run stopped before this row completed (see the Snakemake log)",
    )
    return {**record, "_source": "(no record)"}


def summarise_run(results: str | Path, jobs: list[Job], out_dir: str | Path) -> list[str]:
    results = Path(results)
    return write_tables([record_for(results, job) for job in jobs], out_dir)
