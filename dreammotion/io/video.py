"""Former home of the video code, now split by job: ``dreammotion.io.probe`` (probing),
``dreammotion.io.extract`` (frame extraction), ``dreammotion.io.write`` (mp4, GIF, side by side) and
``dreammotion.io.ffmpeg_tool`` (which ffmpeg).

Kept only for ``dreammotion.upsample.cli``, which imports ``write_video`` from here; once it imports
from ``dreammotion.io.write``, this module goes. Defines nothing of its own.
"""

from dreammotion.io.write import write_video

__all__ = ["write_video"]
