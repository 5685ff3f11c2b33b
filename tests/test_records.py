"""The job records (dreammotion.records) and the edit methods as peers (dreammotion.edit.methods)."""

import json
from pathlib import Path

import numpy as np
import pytest

from dreammotion.errors import InputError
from dreammotion.records import edit_method, log_csv_text, read_edit_record, read_json_object, read_log_csv


def test_json_reader_names_the_record_and_the_problem(tmp_path):
    with pytest.raises(InputError, match=r"edit record .*nope.json does not exist"):
        read_edit_record(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(InputError, match=r"metrics record .*bad.json is not valid JSON"):
        read_json_object(tmp_path / "bad.json", "metrics record")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(InputError, match="must hold a JSON object, not list"):
        read_json_object(tmp_path / "list.json", "failure record")
    (tmp_path / "partial.json").write_text('{"id": "r"}')
    with pytest.raises(InputError, match=r"lacks the key\(s\) variant, model"):
        read_edit_record(tmp_path / "partial.json", ("id", "variant", "model"))


def test_method_is_a_field_and_old_records_are_still_read():
    assert edit_method({"method": "sdedit", "method_settings": {"strength": 0.5, "steps": 10}}) == (
        "sdedit", {"strength": 0.5, "steps": 10})
    old_sdedit = {"settings": {"extra": {"method": "sdedit", "strength": 0.6, "steps": 50}}}
    assert edit_method(old_sdedit) == ("sdedit", {"strength": 0.6, "steps": 50})
    assert edit_method({"settings": {"extra": {}}}) == ("dreammotion", {})


def test_log_csv_round_trip(tmp_path):
    rows = [{"iteration": i, "t": 900, "vdds_grad_norm": 1.0, "loss_s": 0.1, "loss_t": 0.2, "ssm_grad_norm": 0.3,
             "update_norm": 0.4, "latent_change": 0.5 * i} for i in range(3)]
    (tmp_path / "log.csv").write_text(log_csv_text(rows))
    columns = read_log_csv(tmp_path / "log.csv")
    assert np.array_equal(columns["latent_change"], [0.0, 0.5, 1.0])
    (tmp_path / "empty.csv").write_text(log_csv_text([]))  # SDEdit: the header only
    assert all(len(v) == 0 for v in read_log_csv(tmp_path / "empty.csv").values())


def test_settings_table_shows_the_method_only_where_another_one_ran():
    from dreammotion.tables.aggregate import settings_table

    full = {"id": "a", "variant": "full", "status": "ok", "metrics": {}, "settings": {"lr": 0.4}, "method": "dreammotion"}
    assert settings_table([full]).columns == ["id", "variant", "lr"]
    sdedit = {**full, "variant": "sdedit", "method": "sdedit", "method_settings": {"strength": 0.6, "steps": 50}}
    table = settings_table([full, sdedit])
    assert table.columns == ["id", "variant", "lr", "method", "method.steps", "method.strength"]
    assert table.rows[1][3:] == ["sdedit", 50, 0.6]


def test_sdedit_is_a_method_beside_dreammotion(tiny_model):
    import torch

    from dreammotion.edit import EditConfig
    from dreammotion.edit.methods import edit_clip, edit_latents

    frames = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    config = EditConfig(iterations=1, guidance_scale=2.0)
    clip = edit_clip(tiny_model, frames, "a blue square", "a red circle", None, config,
                     method="sdedit", method_settings={"strength": 0.5, "steps": 4}, progress=False)
    assert clip.frames.shape == frames.shape and clip.result.log == []
    assert clip.run.method == "sdedit" and clip.run.method_settings == {"strength": 0.5, "steps": 4}
    latents = tiny_model.encode_frames(torch.rand(2, 3, 16, 16) * 2 - 1)
    run = edit_latents(tiny_model, latents, "a blue square", "a red circle", None, config, progress=False)
    assert run.method == "dreammotion" and run.method_settings == {} and len(run.result.log) == 1
    with pytest.raises(ValueError, match="unknown SDEdit setting"):
        edit_latents(tiny_model, latents, "a", "b", None, config, method="sdedit", method_settings={"strenght": 1})


def test_edit_stage_records_the_method(tiny_model, tiny_model_dir, tmp_path):
    import torch

    from dreammotion.cli import main
    from dreammotion.edit.io import save_latents

    save_latents(tmp_path / "src.safetensors", tiny_model.encode_frames(torch.zeros(2, 3, 16, 16)))
    argv = ["edit", "--latents", str(tmp_path / "src.safetensors"), "--masks", "none", "--source-prompt", "a",
            "--target-prompt", "b", "--model", json.dumps({"pretrained": str(tiny_model_dir)}),
            "--settings", json.dumps({"iterations": 1}), "--method", "sdedit", "--sdedit", '{"steps": 4}',
            "--out-dir", str(tmp_path / "out"), "--no-progress"]
    assert main(argv) == 0
    record = read_edit_record(tmp_path / "out" / "edit.json")
    assert record["method"] == "sdedit" and record["method_settings"] == {"strength": 0.6, "steps": 4}
    assert record["settings"]["extra"] == {}  # the method is not smuggled through the settings any more


def test_sdedit_settings_are_checked_in_one_place():
    """The start-up check and the job's parse share SDEditSettings.problems: the same rules, the
    dataclass's defaults, and the variant keys that are SDEdit's come from its fields."""
    from dreammotion.edit.config import SDEDIT_KEYS, SDEditSettings, sdedit_settings

    assert SDEDIT_KEYS == ("method", "strength", "steps")
    assert sdedit_settings({"method": "sdedit", "strength": 0.3, "lr": 0.1}) == {"strength": 0.3}
    assert SDEditSettings.problems({}) == [] and SDEditSettings.from_dict({}) == SDEditSettings()
    assert [key for key, _ in SDEditSettings.problems({"strength": 0, "steps": 2.5, "strenght": 1})] == \
        ["strenght", "strength", "steps"]
    assert SDEditSettings.problems({"strength": True})[0][1] == "strength must be a number in (0, 1], got True"
    with pytest.raises(ValueError, match="steps must be an integer >= 1, got 0"):
        SDEditSettings.from_dict({"steps": 0})


def test_model_card_sections_are_replaced_appended_or_refused(tmp_path):
    from dreammotion.model_files import card_from_report, write_card_section

    markers = ("<!-- s:begin -->", "<!-- s:end -->")
    section = "<!-- s:begin -->\nnew\n<!-- s:end -->"
    card = tmp_path / "README.md"
    card.write_text("# m\n\n<!-- s:begin -->\nold\n<!-- s:end -->\n\ntail\n")
    write_card_section(card, section, markers)
    assert card.read_text() == "# m\n\n" + section + "\n\ntail\n"
    plain = tmp_path / "plain.md"
    plain.write_text("# m\n")
    with pytest.raises(ValueError, match="plain.md has no <!-- s:begin -->"):
        write_card_section(plain, section, markers)
    assert plain.read_text() == "# m\n"  # nothing lost
    write_card_section(plain, section, markers, append_heading="Gates")
    assert plain.read_text() == "# m\n\n## Gates\n\n" + section + "\n"
    fresh = tmp_path / "fresh.md"
    write_card_section(fresh, section, markers, new_card="# header\n" + "\n".join(markers) + "\n")
    assert fresh.read_text() == "# header\n" + section + "\n"

    (tmp_path / "report.json").write_text('{"n": 3}')
    seen = []
    assert card_from_report(card, tmp_path / "report.json", lambda c, r: seen.append((c, r))) == 0
    assert seen == [(card, {"n": 3})]
    with pytest.raises(SystemExit, match="give --card"):
        card_from_report(None, tmp_path / "report.json", lambda c, r: None)
    (tmp_path / "broken.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="broken.json"):
        card_from_report(card, tmp_path / "broken.json", lambda c, r: None)


def test_failed_rows_keep_their_method_and_the_fields_of_a_finished_record(tmp_path):
    """The run summary's record of a failed SDEdit row says sdedit (the tables label rows by method), and a
    failed record has every field a finished one has, bar the metrics' own."""
    from dreammotion.layout import Layout
    from dreammotion.metrics.record import build_failed_record, build_record, validate_record
    from dreammotion.tables.run_summary import Job, record_for

    job = Job("row1", "sdedit_baseline", "vid", "obj", "a red circle", "a blue circle", method="sdedit")
    failure = Path(Layout(tmp_path).failure_record("edit", video="vid", object="obj", variant="sdedit_baseline", id="row1"))
    failure.parent.mkdir(parents=True)
    failure.write_text(json.dumps({"stage": "edit", "error": "InputError: bad mask", "argv": []}))
    record = validate_record(record_for(tmp_path, job), "summary")
    assert record["status"] == "failed" and record["method"] == "sdedit" and "bad mask" in record["error"]
    assert record_for(tmp_path / "none", Job("r", "full", "v", "o", "", ""))["method"] == "dreammotion"

    ran = build_record(edit_id="r", variant="v", metrics={}, edit_info={"method": "sdedit", "settings": {}},
                       source_prompt="s", target_prompt="t")
    failed = build_failed_record(edit_id="r", variant="v", error="boom")
    assert set(ran) - set(failed) == {"models", "metrics_config", "inputs"}
