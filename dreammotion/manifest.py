"""The edit manifest: a CSV with one row per edit, validated before any job runs.

Every error names the manifest file, the row (its line in the file) and the field.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from dreammotion.errors import InputError

INTEGER_FIELDS = {"seed", "iterations"}
NUMBER_FIELDS = {"lr", "guidance_scale", "lambda_s", "lambda_t"}
OVERRIDE_FIELDS = ("iterations", "lr", "guidance_scale", "lambda_s", "lambda_t")
VIDEO_SUFFIXES = {".mp4", ".mov", ".webm", ".gif", ".avi", ".mkv", ".m4v"}


@dataclass(frozen=True)
class ManifestRow:
    id: str
    line: int
    video: Path
    video_key: str
    source_prompt: str
    target_prompt: str
    mask: str
    mask_key: str
    seed: int
    ground_truth: Path | None
    overrides: dict = field(default_factory=dict)


def slug(text: str, max_len: int = 40) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    return (s or "x")[:max_len]


def short_hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def _coerce(value: str, name: str):
    """CSV cells are text; numbers are converted so the schema can check their range."""
    if name in INTEGER_FIELDS:
        try:
            return int(value)
        except ValueError:
            return value  # the schema reports "not an integer" with the field name
    if name in NUMBER_FIELDS:
        try:
            return float(value)
        except ValueError:
            return value
    return value


def load_manifest(path: str | Path, schema_path: str | Path, *, default_mask: str = "none") -> list[ManifestRow]:
    """Read and validate the manifest. Raises InputError naming file, line and field."""
    import jsonschema

    path = Path(path)
    if not path.is_file():
        raise InputError(f"manifest {path} does not exist")
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    base = path.parent

    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [c for c in schema["required"] if c not in header]
        if missing:
            raise InputError(f"{path}: missing required column(s) {', '.join(missing)} (header: {', '.join(header)})")
        unknown = [c for c in header if c not in schema["properties"]]
        if unknown:
            raise InputError(
                f"{path}: unknown column(s) {', '.join(unknown)}; allowed: {', '.join(schema['properties'])}"
            )
        raw_rows = [(reader.line_num, row) for row in reader]
    if not raw_rows:
        raise InputError(f"{path}: the manifest has no rows")

    rows: list[ManifestRow] = []
    seen: dict[str, int] = {}
    for line, raw in raw_rows:
        cells = {k: v.strip() for k, v in raw.items() if k is not None and v is not None and v.strip() != ""}
        rid = cells.get("id", "")
        where = f"{path} line {line}" + (f" (id {rid!r})" if rid else "")
        if None in raw:
            raise InputError(f"{where}: more cells than columns (quote cells that contain commas, e.g. \"box=1,2,30,40@0\")")
        record = {k: _coerce(v, k) for k, v in cells.items()}
        errors = sorted(validator.iter_errors(record), key=lambda e: list(e.path))
        if errors:
            err = errors[0]
            fld = err.path[0] if err.path else (err.message.split("'")[1] if "'" in err.message else "?")
            raise InputError(f"{where}, field {fld!r}: {_explain(err, schema)}")
        if rid in seen:
            raise InputError(f"{where}, field 'id': duplicate id {rid!r} (first used on line {seen[rid]})")
        seen[rid] = line

        video = (base / record["video"]).resolve()
        if not video.exists():
            raise InputError(f"{where}, field 'video': {video} does not exist")
        if video.is_file() and video.stat().st_size == 0:
            raise InputError(f"{where}, field 'video': {video} is an empty file")
        if video.is_file() and video.suffix.lower() not in VIDEO_SUFFIXES:
            raise InputError(
                f"{where}, field 'video': {video.name} is not a video ({', '.join(sorted(VIDEO_SUFFIXES))}) or image folder"
            )
        ground_truth = None
        if "ground_truth" in record:
            ground_truth = (base / record["ground_truth"]).resolve()
            if not ground_truth.exists():
                raise InputError(f"{where}, field 'ground_truth': {ground_truth} does not exist")

        mask = record.get("mask", default_mask)
        # Keys hash the paths as written (relative to the manifest), so that outputs keep their
        # names when the project folder moves or runs elsewhere (a cluster's scratch space).
        mask_key = "none" if mask == "none" else f"{slug(mask.split('=')[0].split(':')[0])}-{short_hash(mask)}"
        _check_mask(mask, f"{where}, field 'mask'", base)
        if mask.startswith("file:"):
            mask = "file:" + str((base / mask[5:]).resolve())
        rows.append(
            ManifestRow(
                id=rid,
                line=line,
                video=video,
                video_key=f"{slug(video.stem if video.is_file() else video.name)}-{short_hash(os.path.normpath(record['video']))}",
                source_prompt=record["source_prompt"],
                target_prompt=record["target_prompt"],
                mask=mask,
                mask_key=mask_key,
                seed=int(record.get("seed", 0)),
                ground_truth=ground_truth,
                overrides={k: record[k] for k in OVERRIDE_FIELDS if k in record},
            )
        )
    return rows


def _check_mask(text: str, context: str, base: Path) -> None:
    from dreammotion.masks.spec import parse_mask_spec

    spec = parse_mask_spec(text, context=context, base_dir=base)
    path = getattr(spec, "path", None)
    if path is not None and not Path(path).exists():
        raise InputError(f"{context}: mask file or folder {path} does not exist")


def _explain(err, schema) -> str:
    if err.validator == "pattern" and err.path and err.path[0] == "id":
        return f"{err.instance!r} is not a safe id: use letters, digits, '.', '_' and '-' (no '/', '..' or spaces)"
    if err.validator == "minLength":
        return "must not be empty"
    if err.validator == "maxLength":
        return f"is longer than {err.validator_value} characters"
    if err.validator == "required":
        return err.message
    return err.message
