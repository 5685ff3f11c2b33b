"""``dreammotion edit``: one edit of one manifest row, by DreamMotion or the SDEdit baseline (``dreammotion.edit.methods``).

The pieces that ``dreammotion edit-batch`` shares live here too: what an edit is asked to do
(``edit_request``), how its result is written (``write_edit``), and how a result that a batch job
staged is taken over by the row's own job (``adopt_staged``).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
from pathlib import Path

import torch

from dreammotion.edit.config import EditConfig
from dreammotion.edit.io import load_latents, save_latents
from dreammotion.edit.methods import EDIT_METHODS, edit_latents
from dreammotion.edit.prompts import PromptCache
from dreammotion.errors import InputError, NumericalError
from dreammotion.io.frames import read_masks
from dreammotion.layout import GPU_LOCKS
from dreammotion.models.registry import load_model
from dreammotion.records import (
    DEFAULT_METHOD,
    EDIT_LATENTS,
    EDIT_LOG,
    EDIT_RECORD,
    edit_record,
    log_csv_text,
    read_json_object,
)
from dreammotion.utils.atomic import atomic_path, write_json, write_text
from dreammotion.utils.devices import select_gpu_for_job


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", choices=tuple(EDIT_METHODS), default=DEFAULT_METHOD,
                   help="dreammotion (the method) or sdedit (baseline: noise to --sdedit strength, denoise)")
    p.add_argument("--sdedit", default="{}", help='SDEdit baseline settings as JSON: {"strength": 0.6, "steps": 50}')
    p.add_argument("--latents", required=True, help="source latents (from `dreammotion encode`)")
    p.add_argument("--masks", required=True, help="mask folder (from `dreammotion masks`), or 'none'")
    p.add_argument("--source-prompt", required=True)
    p.add_argument("--target-prompt", required=True)
    p.add_argument("--model", required=True, help="model settings as JSON")
    p.add_argument("--settings", default="{}", help="edit settings as JSON (dreammotion.edit.EditConfig fields)")
    p.add_argument("--out-dir", required=True, help="writes latents.safetensors, log.csv, edit.json")
    p.add_argument("--checkpoint", help="checkpoint file: resumed from if present, kept until the edit finishes")
    p.add_argument("--prompt-cache", help="folder caching text embeddings per prompt")
    p.add_argument("--id", default="", help="manifest row id (recorded in edit.json)")
    p.add_argument("--variant", default="", help="method variant name (recorded in edit.json)")
    add_run_arguments(p)
    p.add_argument("--staged", help="folder where a batch job (`dreammotion edit-batch`) left this edit's "
                   "result: taken over when it was made for the same request, else the edit runs here")
    p.add_argument("--staged-only", action="store_true",
                   help="with --staged: an error instead of editing here when the batch job left no result")


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """How an optimisation job reports progress and claims a GPU (`edit` and `edit-batch`)."""
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--progress-every", type=int, default=0, metavar="N",
                   help="print one progress line every N iterations instead of the progress bar (for logs)")
    p.add_argument("--local-gpus", type=int, default=0,
                   help="GPUs of this machine to share between concurrent jobs (0: leave CUDA_VISIBLE_DEVICES alone)")
    p.add_argument("--gpu-lock-dir", default=f"results/{GPU_LOCKS}", help="lock files for --local-gpus")


STAGED_REQUEST = "request.json"  # written last by a batch job: its presence means the staged result is whole
STAGED_FAILURE = "failed.json"
EDIT_OUTPUTS = (EDIT_LATENTS, EDIT_LOG, EDIT_RECORD)  # moved in this order: edit.json last


def edit_request(*, edit_id: str, variant: str, latents: str, masks: str, source_prompt: str, target_prompt: str,
                 model: dict, settings: dict) -> dict:
    """What one DreamMotion edit job is asked to do, as the row's job and a batch job both see it."""
    return {"id": edit_id, "variant": variant, "latents": str(latents), "masks": str(masks),
            "source_prompt": source_prompt, "target_prompt": target_prompt, "model": model, "settings": settings}


def load_edit_inputs(latents_path: str, masks_arg: str, what: str = "") -> tuple[torch.Tensor, dict, torch.Tensor | None]:
    """(source latents, their metadata, masks or None) of one edit; InputError names the files."""
    source_latents, meta = load_latents(latents_path)
    masks = None
    if masks_arg != "none":
        masks = torch.from_numpy(read_masks(masks_arg))
        if masks.shape[0] != source_latents.shape[2]:
            raise InputError(
                f"{what}{masks_arg} holds {masks.shape[0]} masks but the video has {source_latents.shape[2]} frames"
            )
    return source_latents, meta, masks


def write_edit(out: Path, result, *, model, latents_path: str, edit_id: str, variant: str, source_prompt: str,
               target_prompt: str, method: str, method_settings: dict, config: EditConfig) -> None:
    """latents.safetensors, log.csv and, last (its presence means the edit is complete), edit.json."""
    save_latents(out / EDIT_LATENTS, result.latents, model=model.source, source=str(latents_path))
    write_text(out / EDIT_LOG, log_csv_text(result.log))
    write_json(
        out / EDIT_RECORD,
        edit_record(
            edit_id=edit_id,
            variant=variant,
            source_prompt=source_prompt,
            target_prompt=target_prompt,
            method=method,
            method_settings=method_settings,
            settings=config.to_dict(),
            model=model.source,
            device=str(model.device),
            dtype=str(model.dtype).removeprefix("torch."),
            runtime_s=result.runtime_s,
            peak_memory_mib=result.peak_memory_mib,
            peak_memory_kind=result.peak_memory_kind,
            resumed_from_iteration=result.resumed_from,
            final_losses=result.final,
            torch_version=torch.__version__,
            python_version=platform.python_version(),
            batch_size=result.batch_size,
        ),
    )


def staged_result(staged: Path, request: dict) -> str | None:
    """"done" or "failed" when `staged` holds a batch job's whole result for this very request, else None."""
    path = staged / STAGED_REQUEST
    if not path.is_file():
        return None
    if read_json_object(path, "staged edit request") != request:
        print(f"[dreammotion] ignoring the staged result in {staged}: it was made for another request")
        return None
    if (staged / STAGED_FAILURE).is_file():
        return "failed"
    return "done" if all((staged / name).is_file() for name in EDIT_OUTPUTS) else None


def adopt_staged(staged: Path, out: Path, request: dict) -> bool:
    """Copy a batch job's result for `request` from `staged` into `out` (True), or False when there is
    none; a failure that the batch job recorded for it is raised here, as the edit's own. The staged
    copy stays: it is the batch job's output, and a row whose edit is deleted takes it over again."""
    status = staged_result(staged, request)
    if status is None:
        return False
    if status == "failed":
        error = read_json_object(staged / STAGED_FAILURE, "staged edit failure", ("error",))["error"]
        raise NumericalError(f"{error} (in the batch job that staged {staged})")
    out.mkdir(parents=True, exist_ok=True)
    for name in EDIT_OUTPUTS:  # edit.json last: its presence means the edit is complete
        with atomic_path(out / name) as tmp:
            shutil.copyfile(staged / name, tmp)
    return True


def stage_result(staged: Path, request: dict, result, **write_options) -> None:
    """A batch job's result of one edit (its outputs or its failure), then its request, last."""
    staged.mkdir(parents=True, exist_ok=True)
    (staged / STAGED_REQUEST).unlink(missing_ok=True)
    if isinstance(result, Exception):
        for name in EDIT_OUTPUTS:
            (staged / name).unlink(missing_ok=True)
        write_json(staged / STAGED_FAILURE, {"error": f"{type(result).__name__}: {result}"})
    else:
        (staged / STAGED_FAILURE).unlink(missing_ok=True)
        write_edit(staged, result, **write_options)
    with atomic_path(staged / STAGED_REQUEST) as tmp:
        Path(tmp).write_text(json.dumps(request, indent=2, sort_keys=True))


def run(args: argparse.Namespace) -> int:
    # Claim a GPU before anything initialises CUDA; the claim is held until the process exits.
    gpu_claim = select_gpu_for_job(args.gpu_lock_dir, args.local_gpus)  # noqa: F841
    settings = json.loads(args.settings)
    config = EditConfig.from_dict(settings)
    out = Path(args.out_dir)
    if args.staged:
        request = edit_request(edit_id=args.id, variant=args.variant, latents=args.latents, masks=args.masks,
                               source_prompt=args.source_prompt, target_prompt=args.target_prompt,
                               model=json.loads(args.model), settings=settings)
        if adopt_staged(Path(args.staged), out, request):
            if args.checkpoint:
                Path(args.checkpoint).unlink(missing_ok=True)
            print(f"edited {args.id or args.latents}: taken over from the batch job's result in {args.staged}")
            return 0
        if args.staged_only:
            raise InputError(f"{args.staged} holds no result of this edit for these settings and inputs; "
                             "rerun the batch job that makes it (delete its folder)")
    source_latents, _, masks = load_edit_inputs(args.latents, args.masks)
    model = load_model(json.loads(args.model))
    embeddings = None
    if args.prompt_cache:
        cache = PromptCache(args.prompt_cache, model)
        embeddings = cache.embeddings([args.source_prompt, args.target_prompt, ""])
    try:
        edit = edit_latents(
            model, source_latents, args.source_prompt, args.target_prompt, masks, config,
            method=args.method,
            # every variant's job gets --sdedit; it holds settings of the SDEdit method only
            method_settings=json.loads(args.sdedit) if args.method == "sdedit" else None,
            checkpoint_path=args.checkpoint,
            text_embeddings=embeddings,
            progress=not args.no_progress,
            progress_every=args.progress_every,
        )
    except ValueError as err:  # bad prompt length, mask shape, layer pattern, SDEdit strength...
        raise InputError(str(err)) from err
    result = edit.result
    write_edit(out, result, model=model, latents_path=args.latents, edit_id=args.id, variant=args.variant,
               source_prompt=args.source_prompt, target_prompt=args.target_prompt, method=edit.method,
               method_settings=edit.method_settings, config=config)
    if args.checkpoint:
        Path(args.checkpoint).unlink(missing_ok=True)  # bounded disk: no checkpoint once the edit is done
    print(f"edited {args.id or args.latents}: {config.iterations} iterations in {result.runtime_s:.1f} s")
    return 0
