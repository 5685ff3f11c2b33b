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


def test_bad_typed_cells(folder):
    path = write(folder, HEADER + ",seed\na,clip.mp4,x,y,minus-one\n")
    with pytest.raises(InputError, match=r"line 2 \(id 'a'\), field 'seed'"):
        load(path)
    path = write(folder, HEADER + ",lr\na,clip.mp4,x,y,-1\n")
    with pytest.raises(InputError, match="field 'lr'"):
        load(path)


def test_bad_mask_spec_and_missing_mask_folder(folder):
    path = write(folder, HEADER + ",mask\na,clip.mp4,x,y,\"box=1,2@0\"\n")
    with pytest.raises(InputError, match=r"line 2 \(id 'a'\), field 'mask'"):
        load(path)
    path = write(folder, HEADER + ",mask\na,clip.mp4,x,y,file:nowhere\n")
    with pytest.raises(InputError, match="field 'mask'.*nowhere"):
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
