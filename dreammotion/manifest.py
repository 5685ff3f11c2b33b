"""The edit manifest: a CSV with one row per edit, validated before any job runs.

Every error names the manifest file, the row (its line in the file) and the field. The manifest is
UTF-8 text (a byte-order mark and CRLF line ends, as spreadsheet programs write them, are fine); rows
whose cells are all empty (spreadsheet exports) are skipped.

Paths the workflow uses (``ManifestRow.video_path``, ``ground_truth_path``, ``file:`` masks) are relative
to the working directory when the manifest wrote them relatively and they lie inside it, so that a project
copied to another folder names the same inputs and nothing is recomputed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from dreammotion.errors import InputError

INTEGER_FIELDS = {"seed", "iterations", "ground_truth_interpolation_factor"}
NUMBER_FIELDS = {"lr", "guidance_scale", "lambda_s", "lambda_t"}
OVERRIDE_FIELDS = ("iterations", "lr", "guidance_scale", "lambda_s", "lambda_t")
MASK_UNITS = ("frames", "source")
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
    mask_units: str = "frames"  # "source": the box/points are pixels of the source video (converted at start-up)
    video_path: str = ""  # the video as the workflow's inputs name it (see workflow_path)
    ground_truth_path: str | None = None
    ground_truth_masks_path: str | None = None  # the ground truth's object masks, as the workflow names them
    ground_truth_upsampled_path: str | None = None  # the ground truth at the cascade's resolution, likewise
    # the ground truth of interpolate+sr: the cascade's resolution at k times the frame rate, and its k
    ground_truth_interpolated_path: str | None = None
    ground_truth_interpolation_factor: int | None = None
    edit_kind: str | None = None  # label: colour, texture, background, shape (synthetic suite)
    suite: str | None = None  # label of the suite the row belongs to (e.g. seed0)
    file: str = ""  # the manifest, for messages

    @property
    def where(self) -> str:
        """"manifest.csv line 3 (id 'dog')", the start of every message about this row."""
        return f"{self.file} line {self.line} (id {self.id!r})"


def slug(text: str, max_len: int = 40) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    return (s or "x")[:max_len]


def short_hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def mask_key(spec: str) -> str:
    """Folder name of one mask spec's masks: "none", or the spec's kind and a hash of its text."""
    return "none" if spec == "none" else f"{slug(spec.split('=')[0].split(':')[0])}-{short_hash(spec)}"


def workflow_path(written: str, base: str | Path, workdir: str | Path | None = None) -> str:
    """A manifest path as the workflow's rules name it.

    Written relative to the manifest's folder `base` and inside the working directory: relative to the
    working directory (stable when the project folder is copied or moved). Otherwise: absolute.
    """
    workdir = os.path.abspath(workdir or os.getcwd())
    absolute = os.path.normpath(os.path.join(os.path.abspath(base), os.path.expanduser(written)))
    if os.path.isabs(os.path.expanduser(written)):
        return absolute
    relative = os.path.relpath(absolute, workdir)
    return absolute if relative == ".." or relative.startswith(".." + os.sep) else relative


class _NotFinite(str):
    """A cell that parses as inf or nan (the schema cannot reject it; load_manifest does)."""


def _coerce(value: str, name: str):
    """CSV cells are text; numbers are converted so the schema can check their range."""
    if name in INTEGER_FIELDS:
        try:
            return int(value)
        except ValueError:
            return value  # the schema reports "not an integer" with the field name
    if name in NUMBER_FIELDS:
        try:
            number = float(value)
        except ValueError:
            return value
        return number if math.isfinite(number) else _NotFinite(value)
    return value


def read_text(path: Path, what: str = "manifest") -> str:
    """The file's text as UTF-8 (a byte-order mark is dropped); an InputError names the line of a bad byte."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise InputError(
            f"{path} line {line}: the {what} is not UTF-8 text (byte 0x{data[err.start]:02x} at byte {err.start}); "
            "save it with the UTF-8 encoding (spreadsheets: 'CSV UTF-8')"
        ) from None


def _video_or_folder(path: Path, where: str) -> Path:
    """The resolved `path` of a clip cell: an existing, non-empty video file or an image folder."""
    path = path.resolve()
    if not path.exists():
        raise InputError(f"{where}: {path} does not exist")
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(f"{where}: {path} is an empty file")
    if path.is_file() and path.suffix.lower() not in VIDEO_SUFFIXES:
        raise InputError(f"{where}: {path.name} is not a video ({', '.join(sorted(VIDEO_SUFFIXES))}) or image folder")
    return path


def load_manifest(
    path: str | Path,
    schema_path: str | Path,
    *,
    default_mask: str = "none",
    default_mask_units: str = "frames",
    workdir: str | Path | None = None,
) -> list[ManifestRow]:
    """Read and validate the manifest. Raises InputError naming file, line and field.

    `workdir` is the folder the workflow runs in (default: the current one); see `workflow_path`.
    """
    import jsonschema

    path = Path(path)
    if not path.is_file():
        raise InputError(f"manifest {path} does not exist" if not path.exists() else f"manifest {path} is not a file")
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    base = path.parent
    text = read_text(path)
    if not text.strip():
        raise InputError(f"{path}: the manifest is empty; it needs a header line ({', '.join(schema['required'])}) and rows")

    with io.StringIO(text, newline="") as f:
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
        raw_rows = [(reader.line_num, row) for row in reader if not _blank(row)]
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
        for name, value in record.items():
            if isinstance(value, _NotFinite):
                raise InputError(f"{where}, field {name!r}: must be a finite number, got {value!r}")
        errors = sorted(validator.iter_errors(record), key=lambda e: list(e.path))
        if errors:
            err = errors[0]
            fld = err.path[0] if err.path else (err.message.split("'")[1] if "'" in err.message else "?")
            raise InputError(f"{where}, field {fld!r}: {_explain(err, schema)}")
        if rid in seen:
            raise InputError(f"{where}, field 'id': duplicate id {rid!r} (first used on line {seen[rid]})")
        seen[rid] = line

        video = _video_or_folder(base / record["video"], f"{where}, field 'video'")
        ground_truth = None
        if "ground_truth" in record:
            ground_truth = (base / record["ground_truth"]).resolve()
            if not ground_truth.exists():
                raise InputError(f"{where}, field 'ground_truth': {ground_truth} does not exist")
        ground_truth_masks_path = None
        if "ground_truth_masks" in record:
            if ground_truth is None:
                raise InputError(f"{where}, field 'ground_truth_masks': given without a ground_truth (the masks are its object's)")
            gt_masks = (base / record["ground_truth_masks"]).resolve()
            if not gt_masks.is_dir():
                raise InputError(f"{where}, field 'ground_truth_masks': {gt_masks} is not a folder of PNG masks")
            ground_truth_masks_path = workflow_path(record["ground_truth_masks"], base, workdir)
        ground_truth_upsampled_path = None
        if "ground_truth_upsampled" in record:
            if ground_truth is None:
                raise InputError(f"{where}, field 'ground_truth_upsampled': given without a ground_truth")
            _video_or_folder(base / record["ground_truth_upsampled"], f"{where}, field 'ground_truth_upsampled'")
            ground_truth_upsampled_path = workflow_path(record["ground_truth_upsampled"], base, workdir)
        ground_truth_interpolated_path, interpolation_factor = None, record.get("ground_truth_interpolation_factor")
        if "ground_truth_interpolated" in record:
            if ground_truth is None:
                raise InputError(f"{where}, field 'ground_truth_interpolated': given without a ground_truth")
            if interpolation_factor is None:
                raise InputError(f"{where}, field 'ground_truth_interpolation_factor': empty, but ground_truth_interpolated "
                                 "needs the factor k it was made at (its frame i * k is the true frame i)")
            _video_or_folder(base / record["ground_truth_interpolated"], f"{where}, field 'ground_truth_interpolated'")
            ground_truth_interpolated_path = workflow_path(record["ground_truth_interpolated"], base, workdir)
        elif interpolation_factor is not None:
            raise InputError(f"{where}, field 'ground_truth_interpolation_factor': given without a ground_truth_interpolated")

        mask = record.get("mask", default_mask)
        # Keys hash the paths as written (relative to the manifest), so that outputs keep their
        # names when the project folder moves or runs elsewhere (a cluster's scratch space).
        key = mask_key(mask)
        default_note = "" if "mask" in record else " (empty: masks.default_spec applies)"
        _check_mask(mask, f"{where}, field 'mask'{default_note}", base)
        if mask.startswith("file:"):
            mask = "file:" + workflow_path(mask[5:].strip(), base, workdir)
        units = record.get("mask_units", default_mask_units)
        rows.append(
            ManifestRow(
                id=rid,
                line=line,
                video=video,
                video_key=f"{slug(video.stem if video.is_file() else video.name)}-{short_hash(os.path.normpath(record['video']))}",
                source_prompt=record["source_prompt"],
                target_prompt=record["target_prompt"],
                mask=mask,
                mask_key=key,
                seed=int(record.get("seed", 0)),
                ground_truth=ground_truth,
                overrides={k: record[k] for k in OVERRIDE_FIELDS if k in record},
                mask_units=units,
                video_path=workflow_path(record["video"], base, workdir),
                ground_truth_path=workflow_path(record["ground_truth"], base, workdir) if ground_truth else None,
                ground_truth_masks_path=ground_truth_masks_path,
                ground_truth_upsampled_path=ground_truth_upsampled_path,
                ground_truth_interpolated_path=ground_truth_interpolated_path,
                ground_truth_interpolation_factor=interpolation_factor,
                edit_kind=record.get("edit_kind"),
                suite=record.get("suite"),
                file=str(path),
            )
        )
    return rows


def _blank(raw: dict) -> bool:
    """A row whose cells are all empty: spreadsheet programs export these below the data."""
    cells = [v for k, v in raw.items() if k is not None] + list(raw.get(None) or [])
    return all((v or "").strip() == "" for v in cells)


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
