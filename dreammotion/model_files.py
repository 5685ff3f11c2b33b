"""What a text-to-video model folder holds, read from its files without loading the model (no torch).

Both ``dreammotion.models.load_t2v`` and the workflow's start-up checks (``dreammotion.validate``) use
these, so a missing or incomplete model is reported the same way before any job runs and inside a job.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from dreammotion.errors import DreamMotionError

COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
TRAINING_RECORD = "training.json"  # what our trainers write beside the weights (steps, clips, args, runs)


def read_training_record(folder: str | Path) -> dict:
    """The model folder's training.json as a dict; {} when the folder has none (a hub model, say).
    A training.json that is not a JSON object is an InputError naming the file."""
    from dreammotion.records import read_json_object

    path = Path(folder) / TRAINING_RECORD
    return read_json_object(path, "training record") if path.is_file() else {}


def write_card_section(card: Path, section: str, markers: tuple[str, str], *, new_card: str | None = None,
                       append_heading: str | None = None) -> None:
    """Replace the part of the model card `card` between the `markers` (begin, end) by `section` (which
    holds them), atomically. A card without them: the section is added at its end under `append_heading`
    when one is given, else it is an error naming the card. A missing card starts as `new_card` (or empty)."""
    import re

    from dreammotion.utils.atomic import atomic_path

    begin, end = markers
    text = card.read_text(encoding="utf-8") if card.exists() else (new_card or "")
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    elif append_heading is not None:
        text = text.rstrip() + f"\n\n## {append_heading}\n\n" + section + "\n"
    else:
        raise ValueError(f"{card} has no {begin} ... {end} section to rewrite")
    with atomic_path(card) as tmp:
        tmp.write_text(text, encoding="utf-8")


def card_from_report(card: Path | None, report: Path, write) -> int:
    """The ``--from-report`` mode of the evaluation commands: rewrite `card` from a report measured earlier
    (e.g. on a GPU) with ``write(card, report_dict)``, without loading a model."""
    from dreammotion.records import read_json_object

    if not card:
        raise SystemExit("--from-report rewrites a model card: give --card")
    write(card, read_json_object(report, "evaluation report"))
    return 0


class ModelLoadError(DreamMotionError):
    """The model path or hub id cannot be loaded as a text-to-video model."""


def looks_like_path(pretrained: str) -> bool:
    """Hub ids of text-to-video models are "owner/name"; anything else is meant as a folder."""
    return pretrained.startswith((".", "/", "~")) or pretrained.count("/") != 1


def check_local_folder(folder: Path) -> None:
    """Raise ModelLoadError unless `folder` is a text-to-video model in diffusers layout."""
    if not folder.exists():
        raise ModelLoadError(f"model folder {folder} does not exist")
    if not folder.is_dir():
        raise ModelLoadError(f"model path {folder} is a file; expected a folder with {', '.join(COMPONENTS)}/")
    missing = [c for c in COMPONENTS if not (folder / c).is_dir()]
    if missing:
        raise ModelLoadError(
            f"{folder} is not a text-to-video model in diffusers layout: missing component folder(s) "
            f"{', '.join(m + '/' for m in missing)} (expected {', '.join(c + '/' for c in COMPONENTS)})"
        )
    unet_cfg = _read_config(folder / "unet")
    if unet_cfg.get("_class_name") != "UNet3DConditionModel":
        raise ModelLoadError(
            f"{folder}/unet is a {unet_cfg.get('_class_name')!r}, not a UNet3DConditionModel: "
            "dreammotion edits with text-to-video UNets (ZeroScope, ModelScope, the embedded prior)"
        )


def _read_config(component: Path) -> dict:
    path = component / "config.json"
    if not path.is_file():
        raise ModelLoadError(f"{component} holds no config.json")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise ModelLoadError(f"{path} is not valid JSON: {err}") from err


def hub_offline() -> bool:
    """True when huggingface_hub may not use the network (HF_HUB_OFFLINE=1)."""
    value = os.environ.get("HF_HUB_OFFLINE", "")
    return value.strip().upper() in ("1", "ON", "YES", "TRUE")


def cached_snapshot(repo_id: str, revision: str | None = None, cache_dir: str | Path | None = None) -> Path | None:
    """The local snapshot folder of a hub model if the cache holds one, else None (never downloads)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, revision=revision, cache_dir=cache_dir, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, ValueError, OSError):
        return None


def spatial_factor(folder: Path) -> int | None:
    """Pixels per latent pixel of the model's autoencoder (frame sizes must be multiples), None if unknown."""
    cfg = _read_config(folder / "vae")
    name = cfg.get("_class_name")
    if name == "PixelShuffleAutoencoder":
        return int(cfg.get("factor", 2))
    if name == "AutoencoderKL":
        return 2 ** (len(cfg.get("block_out_channels", [0])) - 1)
    return None


def vae_class(folder: Path) -> str | None:
    return _read_config(folder / "vae").get("_class_name")
