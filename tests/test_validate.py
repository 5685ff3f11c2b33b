"""Start-up checks (dreammotion.validate): bad config, settings, model, prompts and masks named before any job."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from dreammotion.edit.config import EditConfig, EditSettingsError, merged_settings
from dreammotion.errors import InputError
from dreammotion.manifest import load_manifest
from dreammotion.validate import (
    ConfigSources, ModelFiles, check_config, check_config_file, check_edit_settings, check_frame_size,
    check_masks, check_prompts, check_run, key_line, load_tokenizer, locate_model, unknown_words,
)

ROOT = Path(__file__).parents[1]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
MANIFEST_SCHEMA = ROOT / "workflow/schemas/manifest.schema.yaml"
EMBEDDED = ROOT / "data/models/dreammotion-shapes-t2v"
HEADER = "id,video,source_prompt,target_prompt"


def write_config(folder: Path, text: str) -> Path:
    path = folder / "config.yaml"
    path.write_text(text)
    return path


def defaults(config: dict) -> dict:
    """The config as the workflow sees it after Snakemake's validate(set_default=True)."""
    from snakemake.utils import validate

    validate(config, str(SCHEMA), set_default=True)
    return config


def project(tmp_path: Path, rows: str, config_text: str = "", header: str = HEADER) -> tuple[dict, ConfigSources]:
    (tmp_path / "clip").mkdir(exist_ok=True)
    for i in range(4):
        Image.new("RGB", (64, 48), (90, 90, 90)).save(tmp_path / "clip" / f"{i:05d}.png")
    (tmp_path / "manifest.csv").write_text(header + "\n" + rows)
    path = write_config(tmp_path, f"manifest: {tmp_path / 'manifest.csv'}\n" + config_text)
    config = yaml.safe_load(path.read_text())
    sources = ConfigSources([path])
    check_config(config, SCHEMA, sources)
    return defaults(config), sources


# ------------------------------------------------------------------------------------------------------
# Config file and keys
# ------------------------------------------------------------------------------------------------------


def test_where_names_file_line_and_key_and_the_command_line(tmp_path):
    base = write_config(tmp_path, "frames:\n  num_frames: 8\n  height: 32\n")
    override = tmp_path / "override.yaml"
    override.write_text("edit:\n  lr: 0.1\nframes:\n  height: 64\n")
    sources = ConfigSources([base, override], cli={"results": "elsewhere"})
    assert sources.where("frames.num_frames") == f"{base} line 2, key frames.num_frames"
    assert sources.where("frames.height") == f"{override} line 4, key frames.height"  # the later file wins
    assert sources.where("results") == "--config results"
    assert "not set in" in sources.where("frames.width") and "default" in sources.where("frames.width")
    assert key_line(override, ["edit", "lr"]) == 2 and key_line(override, ["edit", "nope"]) is None


def test_from_snakemake_puts_command_line_files_last():
    sources = ConfigSources.from_snakemake([Path("/x/cli.yaml").absolute(), "config/config.yaml"], [Path("/x/cli.yaml")], {})
    assert [str(p) for p in sources.files] == ["config/config.yaml", "/x/cli.yaml"]


@pytest.mark.parametrize(
    "text, line",
    [("frames:\n  height: [32\nedit: {}\n", 3), ("a: 1\n\tb: 2\n", 2), ("edit:\n  lr: 0.1\n lambda_s: 2\n", 3)],
)
def test_yaml_syntax_errors_name_file_and_line(tmp_path, text, line):
    path = write_config(tmp_path, text)
    with pytest.raises(InputError) as err:
        check_config_file(path)
    assert str(err.value).startswith(f"{path} line {line}, column ") and "not valid YAML" in str(err.value)


def test_config_file_must_be_utf8_mapping(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes(b"frames:\n  height: 32\n# caf\xe9\n")
    with pytest.raises(InputError, match=r"config.yaml line 3: the config file is not UTF-8"):
        check_config_file(path)
    with pytest.raises(InputError, match="holds settings"):
        check_config_file(write_config(tmp_path, "- a\n- b\n"))
    check_config_file(tmp_path / "absent.yaml", missing_ok=True)
    with pytest.raises(InputError, match="does not exist"):
        check_config_file(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    "text, key, line, words",
    [
        ("frames:\n  num_frames: eight\n", "frames.num_frames", 2, "'eight' is not of type 'integer' nor the word 'all'"),
        ("frames:\n  num_frames: 0\n", "frames.num_frames", 2, "0 is less than the minimum of 1"),
        ("edit:\n  window: whole\n", "edit.window", 2, "'whole' is not of type 'integer' nor the word 'auto'"),
        ("frames:\n  heigth: 32\n", "frames.heigth", 2, "unknown setting 'heigth' (did you mean 'height'?)"),
        ("results: r\nmodel:\n  dtype: float8\n", "model.dtype", 3, "'float8' is not one of"),
        ("run_variants: [dreammotion, nope]\n", "run_variants", 1, "names 'nope', which is not in variants"),
        ("validation:\n  unknown_words: ignore\n", "validation.unknown_words", 2, "'ignore' is not one of ['error', 'warn']"),
        ("upsample:\n  method: resize\n  width: 64\n", "upsample.width", 3, "upsample.height and upsample.width go together"),
    ],
)
def test_config_errors_name_file_line_and_key(tmp_path, text, key, line, words):
    path = write_config(tmp_path, text)
    with pytest.raises(InputError) as err:
        check_config(yaml.safe_load(text), SCHEMA, ConfigSources([path]))
    assert f"{path} line {line}, key {key}: " in str(err.value)
    assert words in str(err.value)


def test_config_problems_are_reported_together(tmp_path):
    text = "frames:\n  num_frames: eight\n  height: tall\n"
    with pytest.raises(InputError) as err:
        check_config(yaml.safe_load(text), SCHEMA, ConfigSources([write_config(tmp_path, text)]))
    assert str(err.value).startswith("2 problems") and "frames.num_frames" in str(err.value) and "frames.height" in str(err.value)


def test_shipped_config_passes(tmp_path):
    path = ROOT / "config/config.yaml"
    check_config_file(path)
    check_config(yaml.safe_load(path.read_text()), SCHEMA, ConfigSources([path]))


# ------------------------------------------------------------------------------------------------------
# Edit settings: every variant x row, as the edit jobs build them
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "edit, key, words",
    [
        ("  iteratons: 5\n", "edit.iteratons", "unknown edit setting 'iteratons' (did you mean 'iterations'?)"),
        ("  lamda_s: 0.5\n", "edit.lamda_s", "unknown edit setting 'lamda_s' (did you mean 'lambda_s'?)"),
        ("  lr: fast\n", "edit.lr", "lr must be a number, got 'fast'"),
        ("  lr: .nan\n", "edit.lr", "lr must be a finite number"),
        ("  guidance_scale: .inf\n", "edit.guidance_scale", "must be a finite number"),
        ("  iterations: 2.5\n", "edit.iterations", "iterations must be an integer"),
        ("  use_mask: maybe\n", "edit.use_mask", "use_mask must be true or false"),
        ("  t_max: 10\n", "edit.t_max", "need 0 <= t_min <= t_max"),
        ("  score: dsd\n", "edit.score", "score must be one of"),
    ],
)
def test_edit_setting_errors_name_config_file_line_and_key(tmp_path, edit, key, words):
    config, sources = project(tmp_path, "a,clip,a red circle,a blue circle\n", "edit:\n" + edit)
    rows = load_manifest(config["manifest"], MANIFEST_SCHEMA)
    problems = check_edit_settings(config, rows, sources)
    assert len(set(problems)) == 1, problems  # one problem, not one per variant x row
    assert problems[0].startswith(f"{tmp_path / 'config.yaml'} line 3, key {key}: "), problems[0]
    assert words in problems[0]


def test_variant_and_row_problems_name_their_own_place(tmp_path):
    config, sources = project(tmp_path, "a,clip,a red circle,a blue circle\n",
                              "variants:\n  fast: {lr: 0, iterations: 3}\n  base: {method: sdedit, strength: 2}\n")
    rows = load_manifest(config["manifest"], MANIFEST_SCHEMA)
    problems = check_edit_settings(config, rows, sources)
    assert f"{tmp_path / 'config.yaml'} line 3, key variants.fast.lr: lr must be > 0, got 0" in problems
    assert any(p.startswith(f"{tmp_path / 'config.yaml'} line 4, key variants.base.strength: ") for p in problems)
    # a row's override is named by its line and field (the manifest schema rejects most bad values first)
    from dataclasses import replace

    bad_row = replace(rows[0], overrides={"lr": -1.0})
    problems = check_edit_settings({"edit": {}, "variants": {"dreammotion": {}}}, [bad_row], sources)
    assert problems == [f"{config['manifest']} line 2 (id 'a'), field 'lr': lr must be > 0, got -1.0"]


def test_a_variant_cannot_carry_another_methods_settings_or_an_unknown_method(tmp_path):
    """strength/steps are SDEdit's: on a DreamMotion variant they would be dropped without a word."""
    from dreammotion.edit.config import METHOD_NAMES
    from dreammotion.edit.methods import EDIT_METHODS

    assert tuple(EDIT_METHODS) == METHOD_NAMES  # what the start-up check accepts is what the edit stage runs
    config, sources = project(tmp_path, "a,clip,a red circle,a blue circle\n",
                              "variants:\n  full: {strength: 0.5}\n  other: {method: sds}\n")
    rows = load_manifest(config["manifest"], MANIFEST_SCHEMA)
    problems = check_edit_settings(config, rows, sources)
    assert (f"{tmp_path / 'config.yaml'} line 3, key variants.full.strength: 'strength' is a setting of method "
            "sdedit, but this variant's method is dreammotion: add `method: sdedit` or remove the key") in problems
    assert any(p.startswith(f"{tmp_path / 'config.yaml'} line 4, key variants.other.method: method must be one of "
                            "dreammotion, sdedit") for p in problems), problems


def test_edit_settings_merge_order_and_errors():
    settings = merged_settings({"lr": 0.1, "iterations": 5}, {"lr": 0.2, "method": "sdedit", "steps": 3}, {"iterations": 7}, 4)
    assert settings == {"lr": 0.2, "iterations": 7, "seed": 4}
    with pytest.raises(EditSettingsError) as err:
        EditConfig.from_dict({"iteratons": 5, "lr": 0.1})
    assert err.value.problems == [(("iteratons",), err.value.problems[0][1])] and "did you mean 'iterations'" in str(err.value)
    assert EditConfig(lambda_s=0, lambda_t=0, divergence_factor=float("inf")).lambda_s == 0  # ints and inf allowed here


# ------------------------------------------------------------------------------------------------------
# The model: folder, hub cache, frame size
# ------------------------------------------------------------------------------------------------------


def test_missing_model_folder_is_reported_with_where_it_looked(tmp_path):
    with pytest.raises(InputError) as err:
        locate_model("data/models/nope", where="config.yaml line 3, key model.pretrained", search_dirs=[tmp_path, ROOT])
    message = str(err.value)
    assert message.startswith("config.yaml line 3, key model.pretrained: model folder data/models/nope does not exist")
    assert str(tmp_path) in message and str(ROOT) in message
    with pytest.raises(InputError, match="does not exist"):
        locate_model(str(tmp_path / "absolute"), where="w", search_dirs=[tmp_path])
    with pytest.raises(InputError, match=f"not in the cache while offline .*and there is no folder models/nope in {tmp_path}"):
        locate_model("models/nope", where="w", search_dirs=[tmp_path], cache_dir=tmp_path)  # owner/name: a hub id


def test_model_folder_without_components_is_reported(tmp_path, tiny_model_dir):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "vae").mkdir()
    with pytest.raises(InputError, match=r"^w: .*missing component folder\(s\) unet/, text_encoder/"):
        locate_model("half", where="w", search_dirs=[tmp_path])
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(InputError, match="is a file"):
        locate_model("file.bin", where="w", search_dirs=[tmp_path])


def test_relative_model_folder_is_found_in_the_workflow_folder(tmp_path):
    found = locate_model("data/models/dreammotion-shapes-t2v", where="w", search_dirs=[tmp_path, ROOT])
    assert found.folder == ROOT / "data/models/dreammotion-shapes-t2v"
    assert found.pretrained == str(EMBEDDED.resolve())  # the jobs run in tmp_path: an absolute path
    here = locate_model("data/models/dreammotion-shapes-t2v", where="w", search_dirs=[ROOT, tmp_path])
    assert here.pretrained == "data/models/dreammotion-shapes-t2v"  # found in the working directory: as written


def test_hub_id_not_in_cache_offline_fails_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(InputError, match="hub model 'someone/t2v' is not in the cache while offline"):
        locate_model("someone/t2v", where="w", cache_dir=tmp_path)
    assert time.perf_counter() - started < 5
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    online = locate_model("someone/t2v", where="w", cache_dir=tmp_path)
    assert online.folder is None and "not in the local cache" in online.note and "skipped" in online.note


def test_hub_id_in_cache_is_read_from_its_snapshot(tmp_path, monkeypatch, tiny_model_dir):
    import shutil

    repo = tmp_path / "models--someone--t2v"
    shutil.copytree(tiny_model_dir, repo / "snapshots" / ("a" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    found = locate_model("someone/t2v", where="w", cache_dir=tmp_path)
    assert found.folder == repo / "snapshots" / ("a" * 40) and found.pretrained == "someone/t2v"


@pytest.mark.parametrize("height, ok", [(32, True), (33, False), (30, True)])
def test_frame_size_must_suit_the_autoencoder(tmp_path, height, ok):
    path = write_config(tmp_path, f"frames:\n  height: {height}\n")
    model = ModelFiles("data/models/dreammotion-shapes-t2v", "x", EMBEDDED)
    problems = check_frame_size(model, {"height": height, "width": 32}, ConfigSources([path]))
    assert (problems == []) == ok
    if not ok:
        assert problems == [f"{path} line 2, key frames.height: 33 is not a multiple of 2, the spatial factor of the "
                            "autoencoder of data/models/dreammotion-shapes-t2v (use 32 or 34)"]


def test_kl_autoencoder_factor(tiny_kl_model_dir):
    from dreammotion.model_files import spatial_factor

    assert spatial_factor(tiny_kl_model_dir) == 2 and spatial_factor(EMBEDDED) == 2


# ------------------------------------------------------------------------------------------------------
# Prompts against the model's tokenizer
# ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def embedded_tokenizer():
    return load_tokenizer(ModelFiles("embedded", "embedded", EMBEDDED))


def test_overlong_prompt_names_row_field_and_lengths(tmp_path, embedded_tokenizer):
    long = " ".join(["red"] * 20)
    config, _ = project(tmp_path, f"a,clip,a red circle,a blue circle\nb,clip,a red circle,{long}\n")
    rows = load_manifest(config["manifest"], MANIFEST_SCHEMA)
    problems, warnings = check_prompts(rows, embedded_tokenizer, "data/models/dreammotion-shapes-t2v")
    assert problems == [f"{config['manifest']} line 3 (id 'b'), field 'target_prompt': prompt needs 22 tokens; "
                        "the text encoder of data/models/dreammotion-shapes-t2v reads at most 16"]
    assert warnings == []


def test_unknown_words_are_errors_or_warnings(tmp_path, embedded_tokenizer):
    config, _ = project(tmp_path, "a,clip,a red circle,a crimson circle with a hatch\n")
    rows = load_manifest(config["manifest"], MANIFEST_SCHEMA)
    problems, warnings = check_prompts(rows, embedded_tokenizer, "embedded")
    assert len(problems) == 1 and warnings == []
    assert problems[0].startswith(f"{config['manifest']} line 2 (id 'a'), field 'target_prompt': 'crimson', 'with', 'hatch' are "
                                  "not in the vocabulary of embedded (its tokenizer reads them as <unk>)")
    assert "validation.unknown_words: warn" in problems[0]
    problems, warnings = check_prompts(rows, embedded_tokenizer, "embedded", unknown_words="warn")
    assert problems == [] and len(warnings) == 1 and "'crimson'" in warnings[0]


def test_unknown_words_only_where_the_unknown_token_occurs():
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    # CLIP's layout: the unknown token is also the end token, added to every prompt
    vocab = {"<bos>": 0, "<eos>": 1, "a": 2, "red": 3, "circle": 4}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<eos>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.post_processor = processors.TemplateProcessing(single="<bos> $A <eos>", special_tokens=[("<bos>", 0), ("<eos>", 1)])
    clip_like = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<bos>", eos_token="<eos>", unk_token="<eos>")
    assert unknown_words(clip_like, "a red circle") == []
    assert unknown_words(clip_like, "a red dog") == ["dog"]
    no_unk = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab=vocab)), bos_token="<bos>")
    assert no_unk.unk_token_id is None and unknown_words(no_unk, "a red dog") == []


def test_tiny_model_tokenizer_checks(tmp_path, tiny_model_dir):
    tokenizer = load_tokenizer(ModelFiles("tiny", "tiny", tiny_model_dir))
    config, _ = project(tmp_path, "a,clip,a red circle,a blue circle\n")
    rows = load_manifest(config["manifest"], MANIFEST_SCHEMA)
    assert check_prompts(rows, tokenizer, "tiny") == ([], [])


# ------------------------------------------------------------------------------------------------------
# Mask specs against the frames
# ------------------------------------------------------------------------------------------------------


FRAMES = {"num_frames": 4, "height": 16, "width": 16, "resize": "crop", "fps": None, "start": 0}


@pytest.mark.parametrize(
    "spec, words",
    [
        ("box=1,2,17,10@0", "box lies outside the 16x16 (WxH) frame"),
        ("box=1,2,10,10@4", "frame 4 does not exist (the clip has 4 frames, 0..3)"),
        ("points=3,3;16,2@0", "point (16, 2) lies outside the 16x16 (WxH) frame"),
    ],
)
def test_mask_specs_are_checked_against_frame_size_and_count(tmp_path, spec, words):
    config, _ = project(tmp_path, f'a,clip,a red circle,a blue circle,"{spec}"\n', header=HEADER + ",mask")
    rows = load_manifest(config["manifest"], MANIFEST_SCHEMA)
    checked, problems = check_masks(rows, FRAMES)
    assert len(problems) == 1 and problems[0].startswith(f"{config['manifest']} line 2 (id 'a'), field 'mask': ")
    assert words in problems[0]


def test_good_mask_specs_pass_unchanged(tmp_path):
    config, _ = project(tmp_path, 'a,clip,x,y,"box=0,0,16,16@3"\nb,clip,x,y,"points=0,0;15,15:0@0"\nc,clip,x,y,none\n',
                        header=HEADER + ",mask")
    rows = load_manifest(config["manifest"], MANIFEST_SCHEMA)
    checked, problems = check_masks(rows, FRAMES)
    assert problems == [] and checked == rows


def test_mask_frame_of_a_clip_of_all_frames_is_checked_by_the_masks_job(tmp_path):
    """frames.num_frames all: the clip's length is known once decoded, so only the box is checked at start-up."""
    config, _ = project(tmp_path, 'a,clip,x,y,"box=0,0,16,16@40"\nb,clip,x,y,"box=0,0,17,16@40"\n', header=HEADER + ",mask")
    rows = load_manifest(config["manifest"], MANIFEST_SCHEMA)
    checked, problems = check_masks(rows, {**FRAMES, "num_frames": "all"})
    assert len(problems) == 1 and "line 3 (id 'b')" in problems[0] and "box lies outside" in problems[0]


def test_window_auto_becomes_the_models_window_in_the_edit_settings(tmp_path):
    """The start-up check builds the windowed settings the jobs get: an overlap that does not fit the model's
    window is named where it was set."""
    config, sources = project(tmp_path, "a,clip,a red circle,a blue circle\n",
                              "frames:\n  num_frames: all\nedit:\n  window_overlap: 8\n")
    rows = load_manifest(config["manifest"], MANIFEST_SCHEMA)
    assert check_edit_settings(config, rows, sources) == []  # a model without a window: the whole clip at once
    problems = check_edit_settings(config, rows, sources, model_window=8)
    assert problems == [f"{tmp_path / 'config.yaml'} line 5, key edit.window_overlap: window_overlap must be in "
                        "[0, window - 1], got 8 for windows of 8"]


def _rect_folder(folder: Path, size=(64, 48), rect=(40, 6, 60, 30)) -> None:
    folder.mkdir()
    for i in range(4):
        image = np.full((size[1], size[0], 3), 90, np.uint8)
        x0, y0, x1, y1 = rect
        image[y0:y1, x0:x1] = (220, 30, 30)
        Image.fromarray(image).save(folder / f"{i:05d}.png")


@pytest.mark.parametrize("resize", ["crop", "pad", "stretch"])
def test_source_pixel_boxes_land_on_the_object_in_the_frames(tmp_path, resize):
    """A box drawn on the source video, converted, covers the same object in the extracted frames."""
    from dreammotion.io.frames import read_frames
    from dreammotion.io.extract import extract_frames

    _rect_folder(tmp_path / "clip", rect=(40, 6, 60, 30))
    (tmp_path / "manifest.csv").write_text(HEADER + ",mask,mask_units\n" + 'a,clip,x,y,"box=40,6,60,30@1",source\n')
    rows = load_manifest(tmp_path / "manifest.csv", MANIFEST_SCHEMA)
    frames = {**FRAMES, "resize": resize}
    checked, problems = check_masks(rows, frames)
    assert problems == []
    x0, y0, x1, y1 = _box(checked[0].mask)
    assert checked[0].mask.endswith("@1") and checked[0].mask_key != rows[0].mask_key
    extract_frames(tmp_path / "clip", tmp_path / "frames", num_frames=4, height=16, width=16, resize=resize)
    red = np.argwhere((read_frames(tmp_path / "frames")[1] - [220, 30, 30]).__abs__().max(axis=-1) < 60)
    (ry0, rx0), (ry1, rx1) = red.min(axis=0), red.max(axis=0) + 1
    assert abs(rx0 - x0) <= 1 and abs(rx1 - x1) <= 1 and abs(ry0 - y0) <= 1 and abs(ry1 - y1) <= 1, (resize, checked[0].mask, (rx0, ry0, rx1, ry1))


def _box(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split("=")[1].split("@")[0].split(","))


def test_source_pixel_specs_outside_the_video_or_the_crop(tmp_path):
    _rect_folder(tmp_path / "clip")
    (tmp_path / "manifest.csv").write_text(
        HEADER + ",mask,mask_units\n"
        'a,clip,x,y,"box=40,6,70,30@0",source\n'  # the video is 64 wide
        'b,clip,x,y,"points=2,20@0",source\n'  # crop keeps x in [8, 56) of the 64x48 source
        'c,clip,x,y,"box=0,0,6,48@0",source\n'
        'd,clip,x,y,"box=4,0,20,48@0",source\n'  # partly cropped: clipped to the frame
    )
    rows = load_manifest(tmp_path / "manifest.csv", MANIFEST_SCHEMA)
    checked, problems = check_masks(rows, FRAMES)
    assert len(problems) == 3
    assert "line 2 (id 'a'), field 'mask' (mask_units source): mask spec 'box=40,6,70,30@0' (source pixels): box lies outside the 64x48" in problems[0]
    assert "(id 'b')" in problems[1] and "crop cuts off" in problems[1]
    assert "(id 'c')" in problems[2] and "outside the part of the video that crop keeps" in problems[2]
    assert checked[3].mask == "box=0,0,4.56,16@0"  # 20 * 21/64 - 2: scaled to 21x16, 2 columns cropped


def test_source_units_default_from_config_and_unreadable_video(tmp_path):
    (tmp_path / "bad.mp4").write_bytes(b"not a video at all")
    (tmp_path / "manifest.csv").write_text(HEADER + ",mask\n" + 'a,bad.mp4,x,y,"box=1,1,5,5@0"\n')
    rows = load_manifest(tmp_path / "manifest.csv", MANIFEST_SCHEMA, default_mask_units="source")
    assert rows[0].mask_units == "source"
    checked, problems = check_masks(rows, FRAMES)
    assert len(problems) == 1 and "(id 'a'), field 'video': video " in problems[0] and "source pixels" in problems[0]


# ------------------------------------------------------------------------------------------------------
# Everything together
# ------------------------------------------------------------------------------------------------------


def test_check_run_reports_every_problem_at_once(tmp_path, tiny_model_dir):
    long = " ".join(["red"] * 20)
    config, sources = project(
        tmp_path,
        f'a,clip,a red circle,{long},"box=1,1,40,5@0"\nb,clip,a red circle,a crimson circle,none\n',
        f"model: {{pretrained: {tiny_model_dir}}}\nframes: {{num_frames: 4, height: 16, width: 16}}\nedit: {{iteratons: 3}}\n",
        header=HEADER + ",mask",
    )
    with pytest.raises(InputError) as err:
        check_run(config, sources, manifest_schema=MANIFEST_SCHEMA, workflow_dir=ROOT, workdir=tmp_path)
    message = str(err.value)
    assert message.startswith("4 problems, found before any job started:")
    for words in ("key edit.iteratons", "(id 'a'), field 'target_prompt': prompt needs 22 tokens",
                  "(id 'b'), field 'target_prompt': 'crimson' is not in the vocabulary", "(id 'a'), field 'mask'"):
        assert words in message, words


def test_check_run_passes_good_input(tmp_path, tiny_model_dir):
    config, sources = project(tmp_path, "a,clip,a red circle,a blue circle\n",
                              f"model: {{pretrained: {tiny_model_dir}}}\nframes: {{num_frames: 4, height: 16, width: 16}}\n")
    checked = check_run(config, sources, manifest_schema=MANIFEST_SCHEMA, workflow_dir=ROOT, workdir=tmp_path)
    assert [r.id for r in checked.rows] == ["a"] and checked.model.folder == tiny_model_dir and checked.notes == []


def test_source_pixel_box_on_a_video_file(tmp_path):
    """The same through ffprobe/ffmpeg on an mp4 (yuv420p: crop offsets may move by a chroma pixel)."""
    import subprocess

    from dreammotion.io.frames import read_frames
    from dreammotion.io.extract import extract_frames
    from dreammotion.io.ffmpeg_tool import ffmpeg_binary

    _rect_folder(tmp_path / "png", size=(80, 48), rect=(30, 10, 50, 40))
    subprocess.run([ffmpeg_binary(), "-loglevel", "error", "-y", "-framerate", "8", "-i", str(tmp_path / "png" / "%05d.png"),
                    "-pix_fmt", "yuv420p", "-c:v", "libx264", "-qp", "0", str(tmp_path / "clip.mp4")], check=True)
    (tmp_path / "manifest.csv").write_text(HEADER + ",mask,mask_units\n" + 'a,clip.mp4,x,y,"box=30,10,50,40@0",source\n')
    rows = load_manifest(tmp_path / "manifest.csv", MANIFEST_SCHEMA)
    checked, problems = check_masks(rows, FRAMES)
    assert problems == []
    x0, y0, x1, y1 = _box(checked[0].mask)
    extract_frames(tmp_path / "clip.mp4", tmp_path / "frames", num_frames=4, height=16, width=16, resize="crop")
    red = np.argwhere(np.abs(read_frames(tmp_path / "frames")[0].astype(int) - [220, 30, 30]).max(axis=-1) < 70)
    (ry0, rx0), (ry1, rx1) = red.min(axis=0), red.max(axis=0) + 1
    assert max(abs(rx0 - x0), abs(rx1 - x1), abs(ry0 - y0), abs(ry1 - y1)) <= 1.5, (checked[0].mask, (rx0, ry0, rx1, ry1))
