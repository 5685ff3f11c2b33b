"""Start-up checks of a workflow run: what the config, the manifest and the model's files can tell, before any job.

The workflow (``workflow/rules/common.smk``) calls these while Snakemake reads it, so that bad input stops
the run before any job starts and before Snakemake touches a finished file. Every message starts with
where the problem was written: ``config.yaml line 12, key frames.height`` or ``manifest.csv line 3 (id
'dog'), field 'target_prompt'``. Problems of the same run are reported together.

What is checked: the config against its schema (naming the file and line), the manifest
(``dreammotion.manifest``), the edit settings of every variant x row (built by the same function as the edit
jobs' settings), the model folder (or the hub cache), the frame size against the model's autoencoder, every
prompt against the model's tokenizer (length and unknown words) and every box/points mask spec against the
frame size and frame count (converting source-video pixels first). Nothing here imports Snakemake.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable

import yaml

from dreammotion.errors import InputError
from dreammotion.manifest import ManifestRow, load_manifest, mask_key, read_text

PROMPT_FIELDS = ("source_prompt", "target_prompt")


# ----------------------------------------------------------------------------------------------------------
# Where a config key was set
# ----------------------------------------------------------------------------------------------------------


def _keys(keypath: str | Iterable[str]) -> tuple[str, ...]:
    return tuple(keypath.split(".")) if isinstance(keypath, str) else tuple(str(k) for k in keypath)


def _has(mapping, keys: tuple[str, ...]) -> bool:
    for key in keys:
        if not isinstance(mapping, dict) or key not in mapping:
            return False
        mapping = mapping[key]
    return True


def key_line(path: str | Path, keypath: str | Iterable[str]) -> int | None:
    """The line (1-based) of a nested key in a YAML file, None if the file does not set it."""
    try:
        node = yaml.compose(read_text(Path(path), "config file"))
    except (yaml.YAMLError, InputError, OSError):
        return None
    line = None
    for key in _keys(keypath):
        if not isinstance(node, yaml.MappingNode):
            return None
        for key_node, value_node in node.value:
            if str(key_node.value) == key:
                line, node = key_node.start_mark.line + 1, value_node
                break
        else:
            return None
    return line


class ConfigSources:
    """Where each config value came from: config files (lowest precedence first) and ``--config`` values."""

    def __init__(self, files: Iterable[str | Path] = (), cli: dict | None = None):
        self.files = [Path(f) for f in files]
        self.cli = dict(cli or {})
        self._loaded: dict[Path, dict] = {}

    @classmethod
    def from_snakemake(cls, directive_and_cli_files: Iterable, cli_files: Iterable, cli_config: dict | None):
        """From Snakemake's workflow.configfiles (every file read) and the --configfile / --config values."""
        cli = [Path(f) for f in cli_files]
        cli_resolved = {p.resolve() for p in cli}
        directive = []
        for f in directive_and_cli_files:
            p = Path(f)
            if p.resolve() not in cli_resolved and p.resolve() not in {d.resolve() for d in directive}:
                directive.append(p)
        return cls(directive + cli, dict(cli_config or {}))

    def _content(self, path: Path) -> dict:
        if path not in self._loaded:
            try:
                data = yaml.safe_load(read_text(path, "config file"))
            except (yaml.YAMLError, InputError, OSError):
                data = None
            self._loaded[path] = data if isinstance(data, dict) else {}
        return self._loaded[path]

    def where(self, keypath: str | Iterable[str]) -> str:
        """"config/config.yaml line 12, key frames.height" (or --config, or the default)."""
        keys = _keys(keypath)
        dotted = ".".join(keys)
        if _has(self.cli, keys):
            return f"--config {dotted}"
        for path in reversed(self.files):
            if _has(self._content(path), keys):
                line = key_line(path, keys)
                return f"{path}{f' line {line}' if line else ''}, key {dotted}"
        files = ", ".join(str(p) for p in self.files) or "no config file"
        return f"key {dotted} (not set in {files}: the default applies)"


def check_config_file(path: str | Path, *, missing_ok: bool = False) -> None:
    """A config file must be UTF-8 YAML holding a mapping; the error names the file and the line."""
    path = Path(path)
    if not path.exists():
        if missing_ok:
            return
        raise InputError(f"config file {path} does not exist")
    text = read_text(path, "config file")
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        at = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = " ".join(p for p in (err.context, err.problem) if p)
        raise InputError(f"{path}{at}: not valid YAML: {what}") from None
    except yaml.YAMLError as err:
        raise InputError(f"{path}: not valid YAML: {err}") from None
    if data is not None and not isinstance(data, dict):
        raise InputError(f"{path}: a config file holds settings (key: value), got a {type(data).__name__}")


def check_config(config: dict, schema_path: str | Path, sources: ConfigSources) -> None:
    """Validate the config against its schema; every problem names the file, line and key."""
    import jsonschema

    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for err in sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path]):
        keys = [str(k) for k in err.absolute_path]
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = list((err.schema or {}).get("properties", {}))
            for extra in sorted(set(err.instance) - set(allowed)):
                close = difflib.get_close_matches(str(extra), allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(f"{sources.where(keys + [str(extra)])}: unknown setting {extra!r}{hint}; "
                                f"allowed: {', '.join(allowed)}")
            continue
        where = sources.where(keys) if keys else "the config"
        problems.append(f"{where}: {_schema_message(err)}")
    variants = config.get("variants", {"dreammotion": {}})
    for name in config.get("run_variants", []) if isinstance(config.get("run_variants"), list) else []:
        if isinstance(variants, dict) and name not in variants:
            problems.append(f"{sources.where('run_variants')}: names {name!r}, which is not in variants "
                            f"({', '.join(variants)})")
    upsample = config.get("upsample", {})
    if isinstance(upsample, dict) and (upsample.get("height") is None) != (upsample.get("width") is None):
        given = "height" if upsample.get("height") is not None else "width"
        problems.append(f"{sources.where(['upsample', given])}: upsample.height and upsample.width go together "
                        "(set both, or neither: then upsample.scale applies)")
    tables = config.get("tables", {})
    for key in ("table1", "table3"):
        names = tables.get(key, []) if isinstance(tables, dict) else []
        for name in names if isinstance(names, list) else []:
            if isinstance(variants, dict) and name not in variants:
                problems.append(f"{sources.where(['tables', key])}: names {name!r}, which is not in variants "
                                f"({', '.join(variants)})")
    _raise(problems)


def _schema_message(err) -> str:
    """jsonschema's message, but for keys that take a number or one word (frames.num_frames: all,
    edit.window: auto) it names both, instead of "does not match '^all$'"."""
    schema = err.schema if isinstance(err.schema, dict) else {}
    word = re.fullmatch(r"\^(\w+)\$", str(schema.get("pattern", ""))) if err.validator == "pattern" else None
    if word and "integer" in (schema.get("type") or []):
        return f"{err.instance!r} is not of type 'integer' nor the word {word.group(1)!r}"
    return err.message


def _raise(problems: list[str]) -> None:
    unique = list(dict.fromkeys(problems))
    if len(unique) == 1:
        raise InputError(unique[0])
    if unique:
        raise InputError(f"{len(unique)} problems, found before any job started:\n" + "\n".join(f"- {p}" for p in unique))


# ----------------------------------------------------------------------------------------------------------
# Edit settings of every variant x row
# ----------------------------------------------------------------------------------------------------------


def clip_frames(frames: dict) -> int | None:
    """The clip length that `frames.num_frames` sets, None for `all` (known only once a video is decoded)."""
    count = frames.get("num_frames", 8)
    return None if count == "all" else count


def check_edit_settings(config: dict, rows: list[ManifestRow], sources: ConfigSources, *,
                        model_window: int | None = None) -> list[str]:
    """Build the EditConfig of every variant x row as the edit jobs will; problems name where each value was set.

    model_window: frames per clip of the model (``dreammotion.edit.windows.model_window``), what
    `window: auto` becomes."""
    from dreammotion.edit.config import SDEDIT_KEYS, EditConfig, EditSettingsError, merged_settings

    edit = config.get("edit") or {}
    frames = clip_frames(config.get("frames") or {})
    problems = []
    for name, variant in (config.get("variants") or {}).items():
        variant = variant or {}
        problems += _check_sdedit(name, variant, sources)
        for row in rows:
            try:
                EditConfig.from_dict(merged_settings(edit, variant, row.overrides, row.seed,
                                                     model_window=model_window, clip_frames=frames))
            except EditSettingsError as err:
                for names, message in err.problems:
                    problems.append(f"{_origin(names, edit, variant, row, sources, name, SDEDIT_KEYS)}: {message}")
    return problems


def _origin(names, edit, variant, row, sources, variant_name, sdedit_keys) -> str:
    for key in names:  # the highest-precedence place that sets one of the fields
        if key in row.overrides:
            return f"{row.where}, field {key!r}"
    for key in names:
        if key in variant and key not in sdedit_keys:
            return sources.where(["variants", variant_name, key])
    for key in names:
        if key in edit:
            return sources.where(["edit", key])
    return sources.where(["edit", names[0]])


def _check_sdedit(name: str, variant: dict, sources: ConfigSources) -> list[str]:
    from dreammotion.edit.config import METHOD_NAMES, SDEditSettings, sdedit_settings
    from dreammotion.records import DEFAULT_METHOD

    problems = []
    method = variant.get("method", DEFAULT_METHOD)
    if method not in METHOD_NAMES:
        problems.append(f"{sources.where(['variants', name, 'method'])}: method must be one of "
                        f"{', '.join(METHOD_NAMES)}, got {method!r}")
    if method == "sdedit":
        for key, message in SDEditSettings.problems(sdedit_settings(variant)):
            problems.append(f"{sources.where(['variants', name, key])}: {message}")
    else:  # a setting of another method would be dropped without a word
        for key in sdedit_settings(variant):
            problems.append(f"{sources.where(['variants', name, key])}: {key!r} is a setting of method sdedit, "
                            f"but this variant's method is {method}: add `method: sdedit` or remove the key")
    return problems


# ----------------------------------------------------------------------------------------------------------
# The model: where its files are, frame size, tokenizer
# ----------------------------------------------------------------------------------------------------------


@dataclass
class ModelFiles:
    """Where a configured model's files are, found without loading it."""

    written: str  # as the config writes it
    pretrained: str  # what the jobs load: the folder as found, or the hub id
    folder: Path | None  # files to read at start-up: the local folder or the cached snapshot; None if not cached
    note: str = ""  # why start-up checks that need the files were skipped


def locate_model(
    pretrained: str,
    *,
    where: str,
    search_dirs: Iterable[str | Path] = (".",),
    revision: str | None = None,
    cache_dir: str | Path | None = None,
) -> ModelFiles:
    """Find a model folder (relative ones in each of `search_dirs` in turn) or a hub id's cached snapshot.

    Raises InputError (starting with `where`) for a folder that does not exist or is not a text-to-video model
    in diffusers layout, and for a hub id that is not in the cache while offline (HF_HUB_OFFLINE=1).
    """
    from dreammotion.model_files import (
        COMPONENTS, ModelLoadError, cached_snapshot, check_local_folder, hub_offline, looks_like_path, vae_class,
    )

    path = Path(pretrained).expanduser()
    search_dirs = [Path(d) for d in search_dirs]
    candidates = [path] if path.is_absolute() else [d / path for d in search_dirs]
    found = next((c for c in candidates if c.exists()), None)
    if found is not None or looks_like_path(pretrained):
        if found is None:
            looked = "" if path.is_absolute() else f" (looked in {', '.join(str(d.resolve()) for d in search_dirs)})"
            raise InputError(f"{where}: model folder {pretrained} does not exist{looked}")
        try:
            check_local_folder(found)
            vae = vae_class(found)
        except ModelLoadError as err:
            raise InputError(f"{where}: {err}") from None
        if vae not in ("AutoencoderKL", "PixelShuffleAutoencoder"):
            raise InputError(f"{where}: {found}/vae is a {vae!r}; supported autoencoders: AutoencoderKL, PixelShuffleAutoencoder")
        # Jobs run in the working directory: a folder found there keeps its name as written.
        jobs_path = pretrained if found == candidates[0] and not path.is_absolute() else str(found.resolve())
        return ModelFiles(pretrained, jobs_path, found)
    snapshot = cached_snapshot(pretrained, revision, cache_dir)
    complete = snapshot is not None and all((snapshot / c).is_dir() for c in COMPONENTS)
    name = f"{pretrained!r}" + (f" (revision {revision})" if revision else "")
    if complete:
        try:
            check_local_folder(snapshot)
        except ModelLoadError as err:
            raise InputError(f"{where}: hub model {name}: {err}") from None
        return ModelFiles(pretrained, pretrained, snapshot)
    looked = f"no folder {pretrained} in {', '.join(str(d.resolve()) for d in search_dirs)}"
    if hub_offline():
        state = "is not in the cache" if snapshot is None else "is only partly in the cache"
        raise InputError(f"{where}: hub model {name} {state} while offline (HF_HUB_OFFLINE=1), and there is "
                         f"{looked}: download it once with network access, or name a local folder")
    return ModelFiles(pretrained, pretrained, None,
                      note=f"hub model {name} is not in the local cache (the first job downloads it): "
                           "frame size and prompt checks against its tokenizer were skipped")


def check_frame_size(model: ModelFiles, frames: dict, sources: ConfigSources) -> list[str]:
    """Frame height and width must be multiples of the autoencoder's spatial factor."""
    from dreammotion.model_files import spatial_factor

    if model.folder is None:
        return []
    factor = spatial_factor(model.folder)
    problems = []
    for key in ("height", "width"):
        value = frames[key]
        if factor and value % factor:
            lower, upper = value // factor * factor, (value // factor + 1) * factor
            suggestion = f"{lower} or {upper}" if lower else f"{upper}"
            problems.append(f"{sources.where(['frames', key])}: {value} is not a multiple of {factor}, the spatial "
                            f"factor of the autoencoder of {model.written} (use {suggestion})")
    return problems


def load_tokenizer(model: ModelFiles):
    """The model's tokenizer only (transformers' AutoTokenizer on <model>/tokenizer/): cheap, no weights."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(model.folder / "tokenizer"))
    except (OSError, ValueError) as err:
        raise InputError(f"the tokenizer of {model.written} ({model.folder / 'tokenizer'}) cannot be loaded: {err}") from None


@dataclass
class PromptReading:
    tokens: int  # special tokens included, as the text encoder reads them
    limit: int | None  # the text encoder's window, None if the tokenizer states none
    unknown: list[str] = field(default_factory=list)  # pieces of the prompt that become the unk token


def read_prompt(tokenizer, prompt: str) -> PromptReading:
    tokens = len(tokenizer(prompt, truncation=False, verbose=False)["input_ids"])
    limit = getattr(tokenizer, "model_max_length", None)
    if not isinstance(limit, int) or limit > 1_000_000:  # transformers' "no limit" is a huge number
        limit = None
    return PromptReading(tokens, limit, unknown_words(tokenizer, prompt))


def unknown_words(tokenizer, prompt: str) -> list[str]:
    """The pieces of `prompt` that the tokenizer maps to its unknown token (none if it has none).

    Special tokens are left out (CLIP's unknown token is also its end token), so only words that the
    vocabulary lacks are reported.
    """
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is None:
        return []
    pieces: list[str] = []
    try:
        encoded = tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True)
        for token, (start, end) in zip(encoded["input_ids"], encoded["offset_mapping"]):
            if token == unk:
                pieces.append(prompt[start:end] or tokenizer.unk_token)
    except (NotImplementedError, TypeError, ValueError):  # slow tokenizers have no offsets: word by word
        for word in prompt.split():
            if unk in tokenizer(word, add_special_tokens=False)["input_ids"]:
                pieces.append(word)
    return list(dict.fromkeys(pieces))


def check_prompts(rows: list[ManifestRow], tokenizer, model_name: str, *, unknown_words: str = "error") -> tuple[list[str], list[str]]:
    """(problems, warnings) of every row's prompts: too long for the text encoder, or words it does not know."""
    problems, warnings = [], []
    for row in rows:
        for fld in PROMPT_FIELDS:
            reading = read_prompt(tokenizer, getattr(row, fld))
            where = f"{row.where}, field {fld!r}"
            if reading.limit is not None and reading.tokens > reading.limit:
                problems.append(f"{where}: prompt needs {reading.tokens} tokens; the text encoder of {model_name} "
                                f"reads at most {reading.limit}")
            if reading.unknown:
                words = ", ".join(repr(w) for w in reading.unknown)
                message = (f"{where}: {words} {'is' if len(reading.unknown) == 1 else 'are'} not in the vocabulary of "
                           f"{model_name} (its tokenizer reads {'it' if len(reading.unknown) == 1 else 'them'} as "
                           f"{tokenizer.unk_token})")
                if unknown_words == "warn":
                    warnings.append(message)
                else:
                    problems.append(message + "; rephrase, or set validation.unknown_words: warn to run anyway")
    return problems, warnings


# ----------------------------------------------------------------------------------------------------------
# Mask specs against the frames
# ----------------------------------------------------------------------------------------------------------


def source_frame_size(row: ManifestRow, frame: int, frames: dict) -> tuple[int, int]:
    """(width, height) of the source video as a player shows it, or of the folder image that becomes `frame`."""
    from dreammotion.io.probe import probe_image_folder, probe_video

    if row.video.is_dir():
        probe = probe_image_folder(row.video)
        first = int(round(frames.get("start", 0) * frames["fps"])) if frames.get("fps") else 0
        width, height = probe["sizes"][min(first + frame, len(probe["sizes"]) - 1)]
        return int(width), int(height)
    probe = probe_video(row.video)
    return int(probe["width"]), int(probe["height"])


def check_masks(
    rows: list[ManifestRow],
    frames: dict,
    *,
    size_of: Callable[[ManifestRow, int, dict], tuple[int, int]] = source_frame_size,
) -> tuple[list[ManifestRow], list[str]]:
    """Check box/points specs against frames.width x frames.height and frames.num_frames.

    Rows with mask_units source get their spec converted to frame pixels (and a mask key of the converted
    spec); the returned rows are what the workflow uses.
    """
    from dreammotion.masks.spec import BoxPrompt, PointsPrompt, frame_mapping, parse_mask_spec, spec_in_frame_pixels, validate_prompt

    checked, problems = [], []
    for row in rows:
        context = f"{row.where}, field 'mask'"
        spec = parse_mask_spec(row.mask, context=context)
        if not isinstance(spec, (BoxPrompt, PointsPrompt)):
            checked.append(row)
            continue
        try:
            if row.mask_units == "source":
                context += " (mask_units source)"
                try:
                    source_w, source_h = size_of(row, spec.frame, frames)
                except InputError as err:
                    raise InputError(f"{row.where}, field 'video': {err} (needed to convert the mask's source pixels)") from None
                mapping = frame_mapping(source_w, source_h, frames["width"], frames["height"], frames["resize"])
                spec = spec_in_frame_pixels(spec, mapping, context)
                row = replace(row, mask=spec.text, mask_key=mask_key(spec.text))
            validate_prompt(spec, clip_frames(frames), frames["height"], frames["width"], context)
        except InputError as err:
            problems.append(str(err))
        checked.append(row)
    return checked, problems


# ----------------------------------------------------------------------------------------------------------
# Everything, in the order the workflow needs it
# ----------------------------------------------------------------------------------------------------------


@dataclass
class CheckedRun:
    rows: list[ManifestRow]
    model: ModelFiles
    upsample_model: ModelFiles | None
    notes: list[str]  # checks skipped and warnings, for the workflow to print
    metrics_clip: str | None = None  # the metrics' CLIP model as the jobs load it (a folder as found, or the hub id)
    model_window: int | None = None  # frames per clip of the model: what `edit.window: auto` becomes


def locate_clip(pretrained: str | None, *, where: str, search_dirs: Iterable[str | Path]) -> str | None:
    """The CLIP model of the metrics as the jobs load it: a relative folder found in `search_dirs` in turn
    (the working directory, then the workflow's folder, where the domain CLIP ships), a hub id as written.

    A folder that exists nowhere stops the run at start-up (InputError starting with `where`): a
    configured model is never replaced by another, and a metrics job would only report it missing."""
    from dreammotion.model_files import looks_like_path

    if not pretrained:
        return None
    path = Path(pretrained).expanduser()
    search_dirs = [Path(d) for d in search_dirs]
    candidates = [path] if path.is_absolute() else [d / path for d in search_dirs]
    found = next((c for c in candidates if c.is_dir()), None)
    if found is None:
        if looks_like_path(pretrained):
            looked = "" if path.is_absolute() else f" (looked in {', '.join(str(d.resolve()) for d in search_dirs)})"
            raise InputError(f"{where}: CLIP folder {pretrained} does not exist{looked}")
        return pretrained  # a hub id: loaded from the cache by the job, or reported missing with the reason
    return pretrained if found == candidates[0] and not path.is_absolute() else str(found.resolve())


def check_run(
    config: dict,
    sources: ConfigSources,
    *,
    manifest_schema: str | Path,
    workflow_dir: str | Path,
    workdir: str | Path | None = None,
    tokenizer_checks: bool = True,
    size_of: Callable[[ManifestRow, int, dict], tuple[int, int]] = source_frame_size,
) -> CheckedRun:
    """Every start-up check of a run whose config has been validated and filled with the schema's defaults."""
    workdir = Path(workdir or os.getcwd())
    rows = load_manifest(
        config["manifest"],
        manifest_schema,
        default_mask=config["masks"]["default_spec"],
        default_mask_units=config["masks"]["units"],
        workdir=workdir,
    )
    from dreammotion.edit.windows import model_window

    notes: list[str] = []
    model_cfg = config["model"]
    model = locate_model(model_cfg["pretrained"], where=sources.where("model.pretrained"),
                         search_dirs=[workdir, workflow_dir], revision=model_cfg.get("revision"))
    window = model_window(model.pretrained, model.folder)
    problems = check_edit_settings(config, rows, sources, model_window=window)
    notes += window_notes(config, model, window)
    notes += interpolated_truth_notes(config, rows)
    upsample_model = None
    if config["upsample"].get("pretrained") and config["upsample"]["method"] != "none":
        upsample_model = locate_model(config["upsample"]["pretrained"], where=sources.where("upsample.pretrained"),
                                      search_dirs=[workdir, workflow_dir], revision=config["upsample"].get("revision"))
    for m in (model, upsample_model):
        if m is not None and m.note:
            notes.append(m.note)
    problems += check_frame_size(model, config["frames"], sources)
    if tokenizer_checks and model.folder is not None:
        prompt_problems, warnings = check_prompts(
            rows, load_tokenizer(model), model.written, unknown_words=config["validation"]["unknown_words"]
        )
        problems += prompt_problems
        notes += [f"warning: {w}" for w in warnings]
    rows, mask_problems = check_masks(rows, config["frames"], size_of=size_of)
    problems += mask_problems
    metrics_clip = locate_clip(config["metrics"]["clip"]["pretrained"], where=sources.where("metrics.clip.pretrained"),
                               search_dirs=[workdir, workflow_dir])
    _raise(problems)
    return CheckedRun(rows, model, upsample_model, notes, metrics_clip=metrics_clip, model_window=window)


def window_notes(config: dict, model: ModelFiles, window: int | None) -> list[str]:
    """A note when `edit.window: auto` cannot be resolved (the model does not say its window) and the clips
    are `all` their frames, however long: they are then edited whole. (A clip of a set length is the
    config's choice; a note on every run with such a model, e.g. the tests' tiny ones, would be noise.)"""
    uses_auto = config["edit"].get("window") == "auto" or any(
        (variant or {}).get("window") == "auto" for variant in config["variants"].values())
    if window is not None or not uses_auto or clip_frames(config["frames"]) is not None:
        return []
    return [f"edit.window is auto but {model.written} states no window (no 'frames' in its training.json, not a "
            "known hub model): each clip is edited whole; set edit.window to the model's frame count for long clips"]


def interpolated_truth_notes(config: dict, rows: list[ManifestRow]) -> list[str]:
    """Warnings for rows whose upsampled ground-truth metrics will read missing under interpolate+sr by k:
    a ground truth at another factor, or only at the edit's frame rate (k > 1). Not errors: the run and the
    other metrics are fine, and each record says why, with the frame counts."""
    upsample = config["upsample"]
    if upsample["method"] != "interpolate+sr":
        return []
    k = upsample["interpolation_factor"]
    other_k = [f"{r.id} (line {r.line}, k = {r.ground_truth_interpolation_factor})" for r in rows
               if r.ground_truth_interpolated_path is not None and r.ground_truth_interpolation_factor != k]
    edit_rate = [f"{r.id} (line {r.line})" for r in rows
                 if k > 1 and r.ground_truth_interpolated_path is None and r.ground_truth_upsampled_path is not None]
    notes = []
    if other_k:
        notes.append(f"warning: upsample.interpolation_factor is {k}, but the ground_truth_interpolation_factor of "
                     f"{', '.join(other_k)} in {rows[0].file} is another: their upsampled_gt_* and lanczos_gt_* "
                     "will read missing (the frame counts differ)")
    if edit_rate:
        notes.append(f"warning: upsample.method is interpolate+sr by {k}, but {', '.join(edit_rate)} in {rows[0].file} "
                     "have no ground_truth_interpolated (only the edit-rate ground_truth_upsampled): their upsampled_gt_* "
                     "and lanczos_gt_* will read missing; the synthetic suite writes it "
                     "(python -m dreammotion.synthetic.suite --interpolation-factor K)")
    return notes


def print_notes(notes: Iterable[str], stream=None) -> None:
    for note in notes:
        print(f"dreammotion: {note}", file=stream or sys.stderr)


# -- `dreammotion check-config FILE...`: Snakemake reads --configfile files before the workflow's own
#    checks run, and its YAML error names no file; this names the file and the line.


def add_arguments(parser) -> None:
    parser.add_argument("files", nargs="+", type=Path, help="config files (YAML) to check")


def run(args) -> int:
    for path in args.files:
        check_config_file(path)
        print(f"{path}: valid YAML with settings at top level")
    return 0
