"""The job records the stages write and read: one definition each, and one JSON reader.

* ``edit.json``: what one edit job did (prompts, method, settings, model, costs, final losses). The
  edit stage writes it last, so its presence means the edit is complete; the metrics, the panel and
  the tables read it.
* ``log.csv``: the per-iteration losses of one edit (``LOG_COLUMNS``); an edit without iterations
  (the SDEdit baseline) writes the header only.
* failure records (``results/failures/...``): the stage, the error and the argv of a job that failed;
  the run summary reads them (``dreammotion.tables.run_summary``).

Torch-free, so that the tables and the report read records without importing torch.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from dreammotion.errors import InputError

# -- one JSON reader ----------------------------------------------------------------------------------


def read_json_object(path: str | Path, what: str, required: tuple[str, ...] = ()) -> dict:
    """The JSON object in `path`; InputError names `what` the file is, the file and what is wrong.

    what: the kind of record, for the message ("edit record", "metrics record", ...).
    required: keys the object must have.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} {path} does not exist")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"{what} {path} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise InputError(f"{what} {path} must hold a JSON object, not {type(data).__name__}")
    missing = [key for key in required if key not in data]
    if missing:
        raise InputError(f"{what} {path} lacks the key(s) {', '.join(missing)}")
    return data


def check_schema(data: object, schema: dict, what: str) -> None:
    """Validate `data` against a JSON schema; InputError "<what>: field <a.b>: <problem>" otherwise.
    what: the value and where it came from ("metrics config config.json", "metrics record x.json")."""
    import jsonschema

    try:
        jsonschema.validate(data, schema)
    except jsonschema.ValidationError as err:
        where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise InputError(f"{what}: field {where}: {err.message}") from None


def read_json_option(text_or_path: str, what: str) -> tuple[str, object]:
    """(source, value) of an option given as inline JSON (text starting with '{') or as the path of
    a JSON file; source is "(inline JSON)" or the path, for messages. InputError names `what` the
    option is ("metrics config", "--paper-tables") and what is wrong."""
    if text_or_path.lstrip().startswith("{"):
        source, text = "(inline JSON)", text_or_path
    else:
        path = Path(text_or_path)
        if not path.is_file():
            raise InputError(f"{what} {path} does not exist")
        source, text = str(path), path.read_text()
    try:
        return source, json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{what} {source} is not valid JSON: {err}") from None


# -- edit.json ----------------------------------------------------------------------------------------

EDIT_RECORD = "edit.json"
EDIT_LATENTS = "latents.safetensors"  # the edited latents, beside edit.json and log.csv
DEFAULT_METHOD = "dreammotion"

# The keys every edit record has, in the order the edit stage writes them.
EDIT_RECORD_KEYS = (
    "id", "variant", "source_prompt", "target_prompt", "method", "method_settings", "settings", "model",
    "device", "dtype", "runtime_s", "peak_memory_mib", "peak_memory_kind", "resumed_from_iteration",
    "final_losses", "batch_size", "torch", "python",
)


def edit_record(
    *,
    edit_id: str,
    variant: str,
    source_prompt: str,
    target_prompt: str,
    method: str,
    method_settings: dict,
    settings: dict,
    model: str,
    device: str,
    dtype: str,
    runtime_s: float,
    peak_memory_mib: float,
    peak_memory_kind: str,
    resumed_from_iteration: int | None,
    final_losses: dict,
    torch_version: str,
    python_version: str,
    batch_size: int = 1,
) -> dict:
    """The content of one ``edit.json``.

    method: the edit method that ran ("dreammotion" or "sdedit"); method_settings: that method's own
    settings beyond the EditConfig ``settings`` (SDEdit: strength and steps; DreamMotion: none).
    batch_size: edits optimised together in one job (``dreammotion edit-batch``); runtime_s and the
    peak memory are then the batch's, so an edit's share of the time is runtime_s / batch_size.
    """
    return {
        "id": edit_id,
        "variant": variant,
        "source_prompt": source_prompt,
        "target_prompt": target_prompt,
        "method": method,
        "method_settings": dict(method_settings),
        "settings": settings,
        "model": model,
        "device": device,
        "dtype": dtype,
        "runtime_s": round(runtime_s, 3),
        "peak_memory_mib": round(peak_memory_mib, 1),
        "peak_memory_kind": peak_memory_kind,
        "resumed_from_iteration": resumed_from_iteration,
        "final_losses": final_losses,
        "batch_size": batch_size,
        "torch": torch_version,
        "python": python_version,
    }


def read_edit_record(path: str | Path, required: tuple[str, ...] = ()) -> dict:
    """An ``edit.json``; InputError when it is missing, not JSON, not an object or lacks `required` keys."""
    return read_json_object(path, "edit record", required)


def edit_method(record: dict) -> tuple[str, dict]:
    """(method, method settings) of an edit record.

    Records written before the method became a field of its own carried SDEdit's in
    ``settings.extra`` ({"method": "sdedit", "strength": .., "steps": ..}); those are read too.
    """
    if "method" in record:
        return str(record["method"]), dict(record.get("method_settings") or {})
    extra = dict((record.get("settings") or {}).get("extra") or {})
    method = extra.pop("method", DEFAULT_METHOD)
    return str(method), (extra if method != DEFAULT_METHOD else {})


# -- the clip folders: what decode and upsample write (their CLIs and the rules use these names) -------

CLIP_FRAMES = "frames"  # the clip as PNG frames 00000.png...
CLIP_VIDEO = "video.mp4"
EDIT_COMPARE = "compare.mp4"  # decode: input | edit side by side
UPSAMPLE_RECORD = "upsample.json"  # upsample: settings, every step and whether it is a substitute, runtime


# -- log.csv ------------------------------------------------------------------------------------------

EDIT_LOG = "log.csv"

# The columns of log.csv, one row per logged iteration (dreammotion.edit.optimizer fills them).
LOG_COLUMNS = (
    "iteration",
    "t",
    "vdds_grad_norm",
    "loss_s",
    "loss_t",
    "ssm_grad_norm",
    "update_norm",
    "latent_change",
)


def log_csv_text(rows: list[dict]) -> str:
    """log.csv's text: the header, then one line per row (a row's keys are LOG_COLUMNS)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=LOG_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def read_log_csv(path: str | Path) -> dict[str, np.ndarray]:
    """Columns of an edit's log.csv as float arrays (empty arrays for an edit without iterations, e.g. SDEdit)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"loss log {path} does not exist")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [name for name in LOG_COLUMNS if name not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"loss log {path}: missing column(s) {', '.join(missing)} (header: {reader.fieldnames})")
        rows = list(reader)
    columns: dict[str, np.ndarray] = {}
    for name in LOG_COLUMNS:
        values = []
        for line, row in enumerate(rows, start=2):
            try:
                values.append(float(row[name]))
            except (TypeError, ValueError):
                raise InputError(f"loss log {path} line {line}, column {name!r}: not a number ({row[name]!r})") from None
        columns[name] = np.asarray(values, dtype=np.float64)
    return columns


# -- failure records ----------------------------------------------------------------------------------


def failure_record(stage: str, err: BaseException, argv: list[str]) -> dict:
    """What a failed stage writes to its ``--failure-record``: the stage, the error and the command line."""
    return {"stage": stage, "error": f"{type(err).__name__}: {err}", "argv": list(argv)}


def read_failure_record(path: str | Path) -> dict:
    """A failure record; InputError when it is unreadable or lacks ``stage`` or ``error``."""
    return read_json_object(path, "failure record", ("stage", "error"))
