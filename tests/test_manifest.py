"""Manifest validation: every bad row stops before any job runs, naming file, line and field."""

from pathlib import Path

import pytest

from dreammotion.errors import InputError
from dreammotion.manifest import load_manifest

SCHEMA = Path(__file__).parents[1] / "workflow" / "schemas" / "manifest.schema.yaml"
HEADER = "id,video,source_prompt,target_prompt"


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "clip.mp4").write_bytes(b"\0" * 16)  # existence is checked here; decoding in the frames stage
    (tmp_path / "frames dir ünï").mkdir()
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("hi")
    (tmp_path / "masks").mkdir()
    return tmp_path


def write(folder, text):
    path = folder / "manifest.csv"
    path.write_text(text)
    return path


def load(path):
    return load_manifest(path, SCHEMA)


def test_good_manifest_resolves_paths_and_shares_videos(folder):
    path = write(folder, HEADER + ",mask,seed,lr\n"
                 'a,clip.mp4,a red circle,a blue circle,"box=1,2,10,12@0",3,0.2\n'
                 "b,clip.mp4,a red circle,a green circle,,,\n"
                 "c,frames dir ünï,a cat,a dog,file:masks,,\n")
    rows = load(path)
    assert [r.id for r in rows] == ["a", "b", "c"]
    assert rows[0].video == (folder / "clip.mp4").resolve()
    assert rows[0].video_key == rows[1].video_key != rows[2].video_key
    assert rows[0].seed == 3 and rows[0].overrides == {"lr": 0.2}
    assert rows[1].mask == "none" and rows[1].mask_key == "none"
    assert rows[2].mask == f"file:{(folder / 'masks').resolve()}"


@pytest.mark.parametrize(
    "body, field, words",
    [
        ("a,missing.mp4,x,y\n", "video", "does not exist"),
        ("a,empty.mp4,x,y\n", "video", "empty file"),
        ("a,notes.txt,x,y\n", "video", "not a video"),
        ("a,clip.mp4,,y\n", "source_prompt", "required"),
        ("a,clip.mp4,x,\n", "target_prompt", "required"),
        ("../evil,clip.mp4,x,y\n", "id", "not a safe id"),
        ("a b,clip.mp4,x,y\n", "id", "not a safe id"),
        ("a,clip.mp4,x,y\na,clip.mp4,x,z\n", "id", "duplicate id 'a'"),
        (f"a,clip.mp4,x,{'long ' * 300}\n", "target_prompt", "longer than 1000"),
    ],
)
def test_bad_rows_name_file_line_and_field(folder, body, field, words):
    path = write(folder, HEADER + "\n" + body)
    with pytest.raises(InputError) as err:
        load(path)
    message = str(err.value)
    assert str(path) in message and "line" in message
    assert f"field {field!r}" in message or f"'{field}'" in message
    assert words in message


@pytest.mark.parametrize(
    "column, cell, match",
    [
        ("seed", "minus-one", r"line 2 \(id 'a'\), field 'seed'"),
        ("lr", "-1", "field 'lr'"),
        ("mask", '"box=1,2@0"', r"line 2 \(id 'a'\), field 'mask'"),
        ("mask", "file:nowhere", "field 'mask'.*nowhere"),  # a mask folder that does not exist
    ],
)
def test_bad_typed_cells_and_mask_specs(folder, column, cell, match):
    path = write(folder, f"{HEADER},{column}\na,clip.mp4,x,y,{cell}\n")
    with pytest.raises(InputError, match=match):
        load(path)


def test_unquoted_commas_get_a_hint(folder):
    with pytest.raises(InputError, match="more cells than columns.*quote"):
        load(write(folder, HEADER + ",mask\na,clip.mp4,x,y,box=1,2,10,12@0\n"))


def test_header_problems(folder):
    with pytest.raises(InputError, match="missing required column.*target_prompt"):
        load(write(folder, "id,video,source_prompt\na,clip.mp4,x\n"))
    with pytest.raises(InputError, match="unknown column.*colour"):
        load(write(folder, HEADER + ",colour\na,clip.mp4,x,y,red\n"))
    with pytest.raises(InputError, match="no rows"):
        load(write(folder, HEADER + "\n"))
    with pytest.raises(InputError, match="does not exist"):
        load(folder / "nope.csv")


# ------------------------------------------------------------------------------------------------------
# Encodings, spreadsheet exports, numbers, paths and prompts (issue 20)
# ------------------------------------------------------------------------------------------------------


def test_non_utf8_manifest_names_file_line_and_encoding(folder):
    path = folder / "manifest.csv"
    path.write_bytes((HEADER + "\na,clip.mp4,x,y\n").encode() + b"b,clip.mp4,caf\xe9,y\n")
    with pytest.raises(InputError) as err:
        load(path)
    assert str(err.value).startswith(f"{path} line 3: the manifest is not UTF-8 text (byte 0xe9")
    assert "UTF-8" in str(err.value) and "UnicodeDecodeError" not in str(err.value)


def test_bom_and_crlf_from_spreadsheets(folder):
    path = folder / "manifest.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (HEADER + ",seed\r\na,clip.mp4,x,y,1\r\nb,clip.mp4,x,z,2\r\n").encode())
    rows = load(path)
    assert [(r.id, r.line, r.target_prompt, r.seed) for r in rows] == [("a", 2, "y", 1), ("b", 3, "z", 2)]


@pytest.mark.parametrize("content", [b"", b"\n\n", b"   \r\n"])
def test_empty_manifest_file(folder, content):
    path = folder / "manifest.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=f"{path}: the manifest is empty"):
        load(path)


def test_spreadsheet_empty_rows_are_skipped(folder):
    path = write(folder, HEADER + ",mask\n,,,,\na,clip.mp4,x,y,\n,,,,\n\n,,, ,\nb,clip.mp4,x,z,\n,,,,,,\n")
    rows = load(path)
    assert [(r.id, r.line) for r in rows] == [("a", 3), ("b", 7)]
    with pytest.raises(InputError, match="no rows"):
        load(write(folder, HEADER + "\n,,,\n,,,\n"))


@pytest.mark.parametrize(
    "column, value, words",
    [
        ("lr", "inf", "must be a finite number, got 'inf'"),
        ("lr", "nan", "must be a finite number, got 'nan'"),
        ("guidance_scale", "-Infinity", "must be a finite number"),
        ("lambda_s", "NaN", "must be a finite number"),
        ("lambda_t", "1e400", "must be a finite number"),
        ("lr", "0", "less than or equal to the minimum of 0"),
        ("iterations", "-1", "less than the minimum of 0"),
        ("iterations", "2.5", "is not of type 'integer'"),
        ("guidance_scale", "-1", "less than the minimum of 0"),
        ("lambda_t", "-0.5", "less than the minimum of 0"),
        ("seed", "-3", "less than the minimum of 0"),
        ("mask_units", "pixels", "is not one of ['frames', 'source']"),
    ],
)
def test_bad_numbers_name_row_and_field(folder, column, value, words):
    path = write(folder, f"{HEADER},{column}\nok,clip.mp4,x,y,\nbad,clip.mp4,x,y,{value}\n")
    with pytest.raises(InputError) as err:
        load(path)
    assert str(err.value).startswith(f"{path} line 3 (id 'bad'), field {column!r}: ")
    assert words in str(err.value)


def test_spaces_and_quotes_in_video_paths(folder):
    (folder / 'my "best" clip.mp4').write_bytes(b"\0" * 16)
    path = write(folder, HEADER + '\na,"my ""best"" clip.mp4",x,y\nb,frames dir ünï,x,y\n')
    rows = load_manifest(path, SCHEMA, workdir=folder)
    assert rows[0].video == (folder / 'my "best" clip.mp4').resolve() and rows[0].video_path == 'my "best" clip.mp4'
    assert rows[1].video_path == "frames dir ünï"


SHELL_PROMPTS = ["a red circle; rm -rf / && echo $HOME `id` $(whoami) | cat > x", "it's a \"quoted\" 'circle' \\ ! * ?"]


@pytest.mark.parametrize("prompt", SHELL_PROMPTS)
def test_shell_metacharacters_in_prompts_are_kept(folder, prompt):
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf).writerows([HEADER.split(","), ["a", "clip.mp4", prompt, prompt]])
    rows = load(write(folder, buf.getvalue()))
    assert rows[0].source_prompt == prompt == rows[0].target_prompt


def test_workflow_paths_are_relative_inside_the_working_directory(tmp_path):
    from dreammotion.manifest import workflow_path

    work = tmp_path / "project"
    (work / "config").mkdir(parents=True)
    assert workflow_path("clips/a.mp4", work / "config", work) == "config/clips/a.mp4"
    assert workflow_path("../data/a.mp4", work / "config", work) == "data/a.mp4"
    assert workflow_path("../../shared/a.mp4", work / "config", work) == str(tmp_path / "shared/a.mp4")  # outside: absolute
    assert workflow_path("/videos/a.mp4", work / "config", work) == "/videos/a.mp4"  # written absolute: kept


def test_rows_do_not_depend_on_the_manifest_name_or_row_order(folder):
    """Keys and paths come from what a row says, never from the manifest's name or the row's line."""
    body = ['a,clip.mp4,x,y,"box=1,2,10,12@0",frames dir ünï', "b,frames dir ünï,x,z,file:masks,"]
    first = load_manifest(write(folder, HEADER + ",mask,ground_truth\n" + "\n".join(body) + "\n"), SCHEMA, workdir=folder)
    moved = folder / "renamed.csv"
    moved.write_text(HEADER + ",mask,ground_truth\nnew,clip.mp4,q,r,none,\n" + "\n".join(reversed(body)) + "\n")
    second = {r.id: r for r in load_manifest(moved, SCHEMA, workdir=folder)}
    keep = ("video_key", "mask_key", "mask", "video_path", "ground_truth_path", "source_prompt", "target_prompt", "seed")
    for row in first:
        assert {k: getattr(row, k) for k in keep} == {k: getattr(second[row.id], k) for k in keep}
