"""Atomically written outputs get the ordinary, umask-derived mode (issue 18): not mkstemp's 0600."""

import contextlib
import os
import stat

import pytest
import torch
from safetensors.torch import save_file

from dreammotion.edit.io import save_latents
from dreammotion.utils.atomic import atomic_dir, atomic_path, write_json


@contextlib.contextmanager
def umask(mask):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize(
    "mask, file_mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)], ids=["022", "002", "077"]
)
def test_atomic_files_get_the_umask_mode(tmp_path, mask, file_mode):
    with umask(mask):
        save_latents(tmp_path / "latents.safetensors", torch.zeros(1, 4, 2, 4, 4))
        write_json(tmp_path / "edit.json", {"a": 1})
        with atomic_path(tmp_path / "direct.safetensors") as tmp:
            save_file({"x": torch.zeros(2)}, tmp)  # safetensors writes its own file, 0600
    for name in ("latents.safetensors", "edit.json", "direct.safetensors"):
        assert mode(tmp_path / name) == file_mode, name


def test_atomic_dir_contents_get_the_umask_mode(tmp_path):
    with umask(0o022):
        with atomic_dir(tmp_path / "model") as tmp:
            (tmp / "sub").mkdir()
            save_file({"x": torch.zeros(2)}, tmp / "sub" / "weights.safetensors")
            (tmp / "run.sh").write_text("#!/bin/sh\n")
            os.chmod(tmp / "run.sh", 0o700)
    assert mode(tmp_path / "model") == 0o755
    assert mode(tmp_path / "model" / "sub") == 0o755
    assert mode(tmp_path / "model" / "sub" / "weights.safetensors") == 0o644
    assert mode(tmp_path / "model" / "run.sh") == 0o744  # its execute bit is kept
