"""Atomic outputs: a finished result is either complete or absent, never half-written.

Everything a stage writes goes to a temporary sibling first and is renamed into place, so a job
killed mid-write leaves no file that Snakemake (or a rerun) could take as done.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _ordinary_mode(path: Path, umask: int) -> None:
    """Give `path` the mode a plain ``open()``/``mkdir()`` would: 0666 / 0777 minus the umask.

    Writers such as safetensors' ``save_file`` (and mkstemp/mkdtemp) create their files 0600 /
    0700 whatever the umask; results should be as readable as any other file the user writes.
    Execute bits a file already has are kept (still subject to the umask).
    """
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode):
        return
    wanted = 0o777 if stat.S_ISDIR(mode) else 0o666 | (mode & 0o111)
    os.chmod(path, wanted & ~umask)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file path next to `path`; on success it is renamed onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    umask = _umask()
    _ordinary_mode(tmp, umask)  # mkstemp makes 0600; results are ordinary files
    try:
        yield tmp
        if tmp.exists():  # the writer may have replaced the file with its own (0600) one
            _ordinary_mode(tmp, umask)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder next to `path`; on success it replaces `path` whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    umask = _umask()
    try:
        yield tmp
        # mkdtemp makes 0700 and some writers make their files 0600: everything gets the mode a
        # plain open()/mkdir() would have given it
        for folder, dirs, files in os.walk(tmp):
            for name in dirs + files:
                _ordinary_mode(Path(folder) / name, umask)
        _ordinary_mode(tmp, umask)
        if path.exists():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj) -> None:
    import json

    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
