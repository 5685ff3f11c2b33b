"""``dreammotion edit``: one edit of one manifest row, by DreamMotion or the SDEdit baseline (``dreammotion.edit.methods``)."""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from dreammotion.edit.config import EditConfig
from dreammotion.edit.io import load_latents, save_latents
from dreammotion.edit.methods import METHODS, edit_latents
from dreammotion.edit.prompts import PromptCache
from dreammotion.errors import InputError
from dreammotion.io.frames import read_masks
from dreammotion.models.registry import load_model
from dreammotion.records import EDIT_LOG, EDIT_RECORD, edit_record, log_csv_text
from dreammotion.utils.atomic import write_json, write_text
from dreammotion.utils.devices import select_gpu_for_job


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", choices=tuple(METHODS), default="dreammotion",
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
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--progress-every", type=int, default=0, metavar="N",
                   help="print one progress line every N iterations instead of the progress bar (for logs)")
    p.add_argument("--local-gpus", type=int, default=0,
                   help="GPUs of this machine to share between concurrent jobs (0: leave CUDA_VISIBLE_DEVICES alone)")
    p.add_argument("--gpu-lock-dir", default="results/.gpu-locks", help="lock files for --local-gpus")


def run(args: argparse.Namespace) -> int:
    # Claim a GPU before anything initialises CUDA; the claim is held until the process exits.
    gpu_claim = select_gpu_for_job(args.gpu_lock_dir, args.local_gpus)  # noqa: F841
    config = EditConfig.from_dict(json.loads(args.settings))
    source_latents, meta = load_latents(args.latents)
    masks = None
    if args.masks != "none":
        masks = torch.from_numpy(read_masks(args.masks))
        if masks.shape[0] != source_latents.shape[2]:
            raise InputError(
                f"{args.masks} holds {masks.shape[0]} masks but the video has {source_latents.shape[2]} frames"
            )
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

    out = Path(args.out_dir)
    save_latents(out / "latents.safetensors", result.latents, model=model.source, source=str(args.latents))
    write_text(out / EDIT_LOG, log_csv_text(result.log))
    write_json(
        out / EDIT_RECORD,  # written last: its presence means the edit is complete
        edit_record(
            edit_id=args.id,
            variant=args.variant,
            source_prompt=args.source_prompt,
            target_prompt=args.target_prompt,
            method=edit.method,
            method_settings=edit.method_settings,
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
        ),
    )
    if args.checkpoint:
        Path(args.checkpoint).unlink(missing_ok=True)  # bounded disk: no checkpoint once the edit is done
    print(f"edited {args.id or args.latents}: {config.iterations} iterations in {result.runtime_s:.1f} s")
    return 0
