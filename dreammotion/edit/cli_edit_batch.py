"""``dreammotion edit-batch``: several DreamMotion edits of one variant optimised as one batch.

Each UNet call takes the videos of all the batch's edits (``dreammotion_edit_batch``); prompts,
masks, seeds and checkpoints stay per edit, and so does the result: each edit's outputs are staged in
its own folder, which the row's `dreammotion edit --staged` job then takes over (or, for an edit that
failed, reports the failure of). The workflow keeps one job per row for everything downstream, and
a failed edit loses nothing of the others.

--jobs is a JSON list with one object per edit:
    {"id", "latents", "masks", "source_prompt", "target_prompt", "settings", "staged",
     "checkpoint" (optional), "failure_record" (optional: written if the whole batch job fails)}
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from dreammotion.edit.cli_edit import add_run_arguments, edit_request, load_edit_inputs, stage_result, staged_result
from dreammotion.edit.config import EditConfig
from dreammotion.edit.optimizer import EditJob, batch_groups, dreammotion_edit_batch
from dreammotion.edit.prompts import PromptCache
from dreammotion.errors import InputError
from dreammotion.models.registry import load_model
from dreammotion.records import failure_record
from dreammotion.utils.atomic import write_json
from dreammotion.utils.devices import select_gpu_for_job

JOB_KEYS = ("id", "latents", "masks", "source_prompt", "target_prompt", "settings", "staged")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--jobs", required=True, help="the edits as a JSON list (see the module's help), or @FILE")
    p.add_argument("--model", required=True, help="model settings as JSON")
    p.add_argument("--variant", default="", help="method variant name (recorded in each edit.json)")
    p.add_argument("--record", required=True, help="the batch's record (JSON): per edit its status and cost")
    p.add_argument("--prompt-cache", help="folder caching text embeddings per prompt")
    add_run_arguments(p)


def read_jobs(text: str) -> list[dict]:
    """The --jobs list, each object checked for its keys (the message names the edit and the key)."""
    if text.startswith("@"):
        text = Path(text[1:]).read_text()
    try:
        jobs = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"--jobs is not valid JSON: {err}") from None
    if not isinstance(jobs, list) or not jobs:
        raise InputError("--jobs must be a non-empty JSON list of edits")
    for index, job in enumerate(jobs):
        if not isinstance(job, dict):
            raise InputError(f"--jobs[{index}] must be a JSON object")
        missing = [key for key in JOB_KEYS if key not in job]
        if missing:
            raise InputError(f"--jobs[{index}] (id {job.get('id', '?')!r}) lacks {', '.join(missing)}")
    return jobs


def run(args: argparse.Namespace) -> int:
    gpu_claim = select_gpu_for_job(args.gpu_lock_dir, args.local_gpus)  # noqa: F841
    jobs = read_jobs(args.jobs)
    model_settings = json.loads(args.model)
    requests = [
        edit_request(edit_id=j["id"], variant=args.variant, latents=j["latents"], masks=j["masks"],
                     source_prompt=j["source_prompt"], target_prompt=j["target_prompt"], model=model_settings,
                     settings=j["settings"])
        for j in jobs
    ]
    staged = {}  # edit index -> "done" / "failed", for this record
    try:
        return _run(args, jobs, requests, model_settings, staged)
    except BaseException as err:  # the whole batch failed: each edit not yet staged records why
        argv = ["edit-batch", "--variant", args.variant, "--record", args.record]
        for index, job in enumerate(jobs):
            if index not in staged and job.get("failure_record"):
                write_json(Path(job["failure_record"]), failure_record("edit", err, argv))
        raise


def _run(args, jobs: list[dict], requests: list[dict], model_settings: dict, staged: dict) -> int:
    started = time.perf_counter()
    configs = []
    for index, job in enumerate(jobs):
        try:
            configs.append(EditConfig.from_dict(job["settings"]))
        except (TypeError, ValueError) as err:
            raise InputError(f"--jobs[{index}] (id {job['id']!r}): settings: {err}") from err
    # A rerun after a kill: edits whose whole result is already staged are not edited again.
    todo = []
    for index, job in enumerate(jobs):
        status = staged_result(Path(job["staged"]), requests[index])
        if status is not None:
            staged[index] = status
        else:
            todo.append(index)
    model = load_model(model_settings) if todo else None
    edit_jobs: dict[int, EditJob] = {}
    for index in todo:
        job = jobs[index]
        latents, _, masks = load_edit_inputs(job["latents"], job["masks"], what=f"edit {job['id']!r}: ")
        edit_jobs[index] = EditJob(latents, job["source_prompt"], job["target_prompt"], masks, configs[index],
                                   job.get("checkpoint"), name=str(job["id"]))
    embeddings = None
    if args.prompt_cache and todo:
        cache = PromptCache(args.prompt_cache, model)
        prompts = [p for i in todo for p in (jobs[i]["source_prompt"], jobs[i]["target_prompt"])]
        embeddings = cache.embeddings(prompts + [""])
    groups = [[todo[i] for i in group] for group in batch_groups([edit_jobs[i] for i in todo])]
    costs = {}
    for group in groups:
        print(f"[dreammotion] editing {len(group)} together: {', '.join(str(jobs[i]['id']) for i in group)}", flush=True)
        try:
            results = dreammotion_edit_batch(model, [edit_jobs[i] for i in group], text_embeddings=embeddings,
                                             progress=not args.no_progress, progress_every=args.progress_every)
        except ValueError as err:  # bad prompt length, layer pattern, t range...
            raise InputError(str(err)) from err
        for index, result in zip(group, results):
            job = jobs[index]
            stage_result(Path(job["staged"]), requests[index], result, model=model, latents_path=job["latents"],
                         edit_id=job["id"], variant=args.variant, source_prompt=job["source_prompt"],
                         target_prompt=job["target_prompt"], method="dreammotion", method_settings={},
                         config=configs[index])
            staged[index] = "failed" if isinstance(result, Exception) else "done"
            if not isinstance(result, Exception):
                costs[index] = {"runtime_s": round(result.runtime_s, 3), "peak_memory_mib": round(result.peak_memory_mib, 1),
                                "peak_memory_kind": result.peak_memory_kind, "batch_size": result.batch_size}
            if job.get("checkpoint"):
                Path(job["checkpoint"]).unlink(missing_ok=True)  # the staged result (or failure) holds it all now
    record = {
        "variant": args.variant,
        "edits": [{"id": job["id"], "status": staged[i], **costs.get(i, {})} for i, job in enumerate(jobs)],
        "groups": [[jobs[i]["id"] for i in group] for group in groups],
        "runtime_s": round(time.perf_counter() - started, 3),
        "device": str(model.device) if model is not None else None,
        "torch": torch.__version__,
    }
    write_json(Path(args.record), record)
    failed = [job["id"] for i, job in enumerate(jobs) if staged[i] == "failed"]
    print(f"edited {len(jobs) - len(failed)} of {len(jobs)} in {record['runtime_s']:.1f} s"
          + (f"; failed (their rows' jobs report why): {', '.join(map(str, failed))}" if failed else ""))
    return 0
