"""The summary of a run that did not finish: every row is listed, failed ones with the reason.

Called when a workflow run ends with failed jobs (``--keep-going``): finished rows come from their
metrics records; the others from the failure record their stage wrote (``--failure-record``), or are
listed as not run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dreammotion.layout import ROW_JOBS, Layout
from dreammotion.metrics.record import build_failed_record
from dreammotion.records import DEFAULT_METHOD, read_failure_record
from dreammotion.tables.aggregate import load_record, write_tables


@dataclass(frozen=True)
class Job:
    id: str
    variant: str
    video_key: str
    mask_key: str
    source_prompt: str
    target_prompt: str
    method: str = DEFAULT_METHOD  # the variant's edit method, so a failed row is still labelled by it


def job_keys(job: Job) -> dict[str, str]:
    """The keys that name this row's files in the layout (the workflow's wildcards)."""
    return {"video": job.video_key, "object": job.mask_key, "variant": job.variant, "id": job.id}


def failure_paths(results: str | Path, job: Job) -> list[Path]:
    """Where each job of this row records its failure, downstream jobs first (dreammotion.layout.ROW_JOBS)."""
    layout = Layout(results)
    return [Path(layout.failure_record(name, **job_keys(job))) for name in ROW_JOBS]


def record_for(results: str | Path, job: Job) -> dict:
    layout = Layout(results)
    metrics = Path(layout.metrics(job.variant, job.id))
    if metrics.exists():
        return load_record(metrics)
    info = {"source_prompt": job.source_prompt, "target_prompt": job.target_prompt, "method": job.method}
    for name in ROW_JOBS:
        path = Path(layout.failure_record(name, **job_keys(job)))
        if path.exists():
            failure = read_failure_record(path)
            record = build_failed_record(
                edit_id=job.id, variant=job.variant, edit_info=info,
                error=f"{failure['stage']} failed: {failure['error']} (log: {layout.log(name, **job_keys(job))})",
            )
            return {**record, "_source": str(path)}
    record = build_failed_record(
        edit_id=job.id, variant=job.variant, edit_info=info,
        error="not finished: the run stopped before this row completed (see the Snakemake log)",
    )
    return {**record, "_source": "(no record)"}


def summarise_run(results: str | Path, jobs: list[Job], out_dir: str | Path) -> list[str]:
    return write_tables([record_for(results, job) for job in jobs], out_dir)
