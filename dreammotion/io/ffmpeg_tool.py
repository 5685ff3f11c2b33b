"""Which ffmpeg binary the video modules run, and the small helpers they share.

``ffmpeg`` on PATH when there is one, else the static binary that the pip package imageio-ffmpeg ships
(it ships no ffprobe: ``dreammotion.io.probe`` then parses what ``ffmpeg -i FILE`` prints).
"""

from __future__ import annotations

import shutil
from pathlib import Path

_STDERR_TAIL_LINES = 6


# ----------------------------------------------------------------------------------------------------------
# ffmpeg binary
# ----------------------------------------------------------------------------------------------------------


def ffmpeg_binary_info() -> dict[str, str]:
    """``{"path": ..., "source": "PATH" | "imageio-ffmpeg"}`` for the ffmpeg that this module runs."""
    on_path = shutil.which("ffmpeg")
    if on_path:
        return {"path": on_path, "source": "PATH"}
    try:
        import imageio_ffmpeg

        return {"path": imageio_ffmpeg.get_ffmpeg_exe(), "source": "imageio-ffmpeg"}
    except (ImportError, RuntimeError) as err:
        raise FileNotFoundError(
            f"no ffmpeg: none on PATH and the imageio-ffmpeg binary is unavailable ({err}); "
            "install ffmpeg or `pip install imageio-ffmpeg==0.8.1`"
        ) from err


def ffmpeg_binary() -> str:
    """Path of ``ffmpeg`` on PATH, else the binary shipped by imageio-ffmpeg."""
    return ffmpeg_binary_info()["path"]


def ffmpeg_url(path: Path) -> str:
    # The file: protocol prefix stops ffmpeg from reading "name:rest.mp4" as a protocol or "-x.mp4" as an option.
    return "file:" + str(path.resolve())


def stderr_tail(stderr: bytes | str, lines: int = _STDERR_TAIL_LINES) -> str:
    text = stderr.decode("utf-8", errors="replace") if isinstance(stderr, bytes) else stderr
    kept = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("At least one output")]
    return " | ".join(kept[-lines:]) if kept else "(ffmpeg printed nothing)"


def ffmpeg_number(value: float) -> str:
    """A number as an ffmpeg option: 8 rather than 8.0, so that the recorded argv reads as written."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))
