"""Every kind of input `extract_frames` / `decode_video` accepts, and the errors for inputs it must refuse.

All test media are generated here with the ffmpeg binary the library uses (tiny sizes, about one second).
Each error test checks that the message names the offending file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dreammotion.errors import InputError
from dreammotion.io.frames import read_frames
from dreammotion.io.extract import decode_video, extract_frames
from dreammotion.io.probe import probe_image_folder, probe_video
from conftest import BLACK, BLUE, GREEN, RED, WHITE, assert_colour, quadrant_image, run_ffmpeg



def assert_quadrants(frame: np.ndarray) -> None:
    """A 64x32 quadrant picture centre-cropped to a square of any size."""
    h, w = frame.shape[:2]
    assert_colour(frame[h // 8, w // 8], RED, 45)
    assert_colour(frame[h // 8, w - 1 - w // 8], GREEN, 45)
    assert_colour(frame[h - 1 - h // 8, w // 8], BLUE, 45)
    assert_colour(frame[h - 1 - h // 8, w - 1 - w // 8], WHITE, 45)


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("media")
    pngs = folder / "png sequence"
    pngs.mkdir()
    for i in range(10):
        Image.fromarray(quadrant_image()).save(pngs / f"{i:03d}.png")
    sequence = ["-framerate", "10", "-i", str(pngs / "%03d.png")]
    made = {"pngs": pngs}
    encodings = {
        "mp4": ("clip.mp4", "-c:v", "libx264", "-pix_fmt", "yuv420p"),
        "webm": ("clip.webm", "-c:v", "libvpx-vp9", "-pix_fmt", "yuv420p", "-deadline", "realtime"),
        "gif": ("clip.gif",),
        "mov": ("clip.mov", "-c:v", "mpeg4", "-q:v", "2"),
        "avi": ("clip.avi", "-c:v", "mpeg4", "-q:v", "2"),
        "mkv": ("clip.mkv", "-c:v", "ffv1"),
        "gray": ("gray.mkv", "-c:v", "ffv1", "-pix_fmt", "gray"),
        "unicode": ("vidéo clip ünïcode 日本.mp4", "-c:v", "libx264", "-pix_fmt", "yuv420p"),
    }
    for key, (name, *codec) in encodings.items():
        made[key] = folder / name
        run_ffmpeg(*sequence, *codec, str(made[key]))
    # Anamorphic: 32x32 stored pixels shown 2:1 wide, i.e. the same 64x32 picture.
    made["anamorphic"] = folder / "anamorphic.mkv"
    run_ffmpeg(*sequence, "-vf", "scale=32:32,setsar=2", "-c:v", "ffv1", str(made["anamorphic"]))
    # Transparent webm: left half fully transparent red, right half opaque red.
    made["alpha_webm"] = folder / "alpha.webm"
    run_ffmpeg(
        "-f", "lavfi", "-i", "color=c=red:s=32x32:r=10:d=1,format=yuva420p,"
        "geq=lum='p(X,Y)':cb='p(X,Y)':cr='p(X,Y)':a='if(lt(X,16),0,255)'",
        "-c:v", "libvpx-vp9", "-pix_fmt", "yuva420p", str(made["alpha_webm"]),
    )
    made["huge"] = folder / "huge.mp4"
    run_ffmpeg("-f", "lavfi", "-i", "color=c=blue:s=3840x2160:r=10:d=0.2", "-c:v", "libx264", "-preset", "ultrafast",
               "-pix_fmt", "yuv420p", str(made["huge"]))
    made["audio_only"] = folder / "audio only.mp4"
    run_ffmpeg("-f", "lavfi", "-i", "sine=duration=0.5", "-c:a", "aac", str(made["audio_only"]))
    # A file cut in half: the mp4 index (moov) is written last, so the first half has none.
    made["truncated"] = folder / "truncated.mp4"
    whole = made["mp4"].read_bytes()
    made["truncated"].write_bytes(whole[: len(whole) // 2])
    # Index first (+faststart), data cut: the stream is known but its frames cannot be decoded.
    faststart = folder / "faststart.mp4"
    run_ffmpeg(*sequence, "-c:v", "libx264", "-movflags", "+faststart", str(faststart))
    made["truncated_faststart"] = folder / "truncated faststart.mp4"
    made["truncated_faststart"].write_bytes(faststart.read_bytes()[:1200])
    made["empty"] = folder / "empty.mp4"
    made["empty"].write_bytes(b"")
    made["random"] = folder / "random.mp4"
    made["random"].write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    made["text"] = folder / "notes.mov"
    made["text"].write_text("this is not a video\n" * 20)
    return made


# -- formats ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["mp4", "webm", "gif", "mov", "avi", "mkv", "pngs", "unicode"])
def test_formats_decode_to_the_same_picture(media, kind, tmp_path):
    out = tmp_path / "out folder ü"
    metadata = extract_frames(media[kind], out, num_frames=10, height=24, width=24, resize="crop")
    frames = read_frames(out)
    assert frames.shape == (10, 24, 24, 3)
    assert_quadrants(frames[0])
    assert_quadrants(frames[-1])
    assert metadata["kind"] == ("image_folder" if kind == "pngs" else "video")


def test_probe_image_folder_lists_images_and_ignored_files(media, tmp_path):
    folder = tmp_path / "imgs"
    shutil.copytree(media["pngs"], folder)
    (folder / "README.txt").write_text("notes")
    (folder / ".DS_Store").write_bytes(b"\0")
    probe = probe_image_folder(folder)
    assert probe["frame_count"] == 10 and probe["files"][0] == "000.png" and probe["sizes"][0] == [64, 32]
    assert probe["ignored_files"] == ["README.txt"]


def test_folder_sorted_by_natural_name_and_start_uses_fps(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(12):  # frame_2 must come before frame_10
        Image.fromarray(np.full((8, 8, 3), 10 * i + 20, np.uint8)).save(folder / f"frame_{i}.png")
    frames, _ = decode_video(folder, num_frames=12, height=4, width=4)
    assert frames[:, 0, 0, 0].tolist() == [10 * i + 20 for i in range(12)]
    frames, metadata = decode_video(folder, num_frames=3, height=4, width=4, fps=10, start=0.5)
    assert frames[:, 0, 0, 0].tolist() == [70, 80, 90] and metadata["first_image"] == "frame_5.png"
    with pytest.raises(InputError, match=f"{folder}.*needs an fps"):
        decode_video(folder, num_frames=3, height=4, width=4, start=0.5)
    with pytest.raises(InputError, match=f"{folder} is too short: it has only 2 images.*3 were asked"):
        decode_video(folder, num_frames=3, height=4, width=4, fps=10, start=1.0)
    frames, metadata = decode_video(folder, num_frames=None, height=4, width=4, fps=10, start=0.5)  # all
    assert frames[:, 0, 0, 0].tolist() == [70, 80, 90, 100, 110, 120, 130] and metadata["num_frames"] == 7
    with pytest.raises(InputError, match=f"{folder} has no image from image 12 on"):
        decode_video(folder, num_frames=None, height=4, width=4, fps=10, start=1.2)


def test_folder_images_of_different_sizes_and_modes(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.fromarray(quadrant_image(32, 64)).save(folder / "a.png")
    Image.fromarray(quadrant_image(300, 600)).save(folder / "b.jpg", quality=95)
    Image.fromarray(np.full((16, 40), 200, np.uint8), mode="L").save(folder / "c.png")  # grayscale
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:10, 10:, 3] = 255  # left half transparent; right half opaque at the top, half transparent below
    rgba[10:, 10:, 3] = 128
    Image.fromarray(rgba, mode="RGBA").save(folder / "d.png")
    frames, _ = decode_video(folder, num_frames=4, height=16, width=16, resize="crop")
    assert frames.shape == (4, 16, 16, 3)
    assert_quadrants(frames[0])
    assert_quadrants(frames[1])
    assert np.all(frames[2] == frames[2][..., :1]) and abs(int(frames[2, 8, 8, 0]) - 200) <= 2  # gray -> RGB
    assert_colour(frames[3, 8, 2], BLACK, 10)  # transparent -> composited on black
    assert np.array_equal(frames[3, 3, 13], RED)  # opaque colours are kept exactly
    assert_colour(frames[3, 13, 13], (128, 0, 0), 3)


def test_alpha_webm_is_composited_on_black(media):
    probe = probe_video(media["alpha_webm"])
    assert probe["has_alpha"] and probe["pix_fmt"] == "yuva420p"
    frames, metadata = decode_video(media["alpha_webm"], num_frames=5, height=16, width=16)
    assert_colour(frames[0, 8, 3], BLACK, 10)
    assert_colour(frames[0, 8, 12], RED, 10)
    assert "libvpx-vp9" in metadata["ffmpeg"]["commands"][0]  # the decoder that keeps VP9 alpha


def test_grayscale_video_becomes_rgb(media):
    assert probe_video(media["gray"])["pix_fmt"] == "gray"
    frames, _ = decode_video(media["gray"], num_frames=3, height=16, width=16)
    assert np.array_equal(frames[..., 0], frames[..., 1]) and np.array_equal(frames[..., 1], frames[..., 2])
    assert frames[0, 2, 2, 0] < frames[0, 13, 13, 0]  # red is darker than white in luma


def test_odd_output_size_is_exact(media):
    for resize in ("crop", "pad", "stretch"):
        frames, _ = decode_video(media["mp4"], num_frames=2, height=17, width=33, resize=resize)
        assert frames.shape == (2, 17, 33, 3), resize


def test_non_square_pixels_are_displayed_aspect(media):
    probe = probe_video(media["anamorphic"])
    assert (probe["coded_width"], probe["width"], probe["height"], probe["sar"]) == (32, 64, 32, "2:1")
    frames, _ = decode_video(media["anamorphic"], num_frames=1, height=16, width=16, resize="crop")
    assert_quadrants(frames[0])  # the 2:1 picture centre-cropped, as for the square-pixel source


def test_huge_resolution_is_downscaled(media):
    probe = probe_video(media["huge"])
    assert (probe["width"], probe["height"]) == (3840, 2160)
    frames, _ = decode_video(media["huge"], num_frames=2, height=32, width=32)
    assert frames.shape == (2, 32, 32, 3)
    assert_colour(frames[1, 16, 16], BLUE, 10)


# -- errors --------------------------------------------------------------------------------------------------------


def expect_input_error(video: Path, fragment: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(InputError) as caught:
        extract_frames(video, out, num_frames=2, height=8, width=8)
    message = str(caught.value)
    assert str(video) in message, message
    assert fragment in message, message
    assert not out.exists()


def test_missing_file(tmp_path):
    expect_input_error(tmp_path / "no such clip.mp4", "does not exist", tmp_path)


@pytest.mark.parametrize(
    "name, fragment",
    [
        ("empty", "is empty (0 bytes)"),
        ("random", "cannot be read as a video"),
        ("text", "cannot be read as a video"),  # a text file with a video extension
        ("truncated", "moov atom not found"),  # a truncated mp4 without its index
        ("truncated_faststart", "corrupt or truncated"),  # a truncated mp4 with its index at the front
        ("audio_only", "has no video stream (streams: audio)"),
    ],
)
def test_broken_media_is_an_input_error(media, tmp_path, name, fragment):
    expect_input_error(media[name], fragment, tmp_path)


def test_unsupported_extension(tmp_path):
    path = tmp_path / "clip.txt"
    path.write_text("x")
    expect_input_error(path, "unsupported extension '.txt'", tmp_path)


def test_unicode_path_with_spaces_in_errors(tmp_path):
    path = tmp_path / "dossier à espaces" / "vidéo vide.mp4"
    path.parent.mkdir()
    path.write_bytes(b"")
    expect_input_error(path, "is empty", tmp_path)


@pytest.mark.parametrize(
    "name, content, fragment",
    [
        ("frame.bmp", b"BM", "unsupported image type '.bmp'"),
        ("frame.png", b"not a png at all", "cannot be read"),
        ("frame.jpg", b"", "is empty (0 bytes)"),
    ],
)
def test_bad_image_in_folder(tmp_path, name, content, fragment):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(quadrant_image()).save(folder / f"{i:03d}.png")
    bad = folder / name
    bad.write_bytes(content)
    out = tmp_path / "out"
    with pytest.raises(InputError) as caught:
        extract_frames(folder, out, num_frames=2, height=8, width=8)
    assert str(bad) in str(caught.value) and fragment in str(caught.value), str(caught.value)
    assert not out.exists()


def test_png_that_ffmpeg_cannot_decode(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(quadrant_image()).save(folder / "000.png")
    whole = (folder / "000.png").read_bytes()
    (folder / "001.png").write_bytes(whole[:60])  # header intact, picture data cut
    with pytest.raises(InputError) as caught:
        decode_video(folder, num_frames=2, height=8, width=8)
    assert str(folder / "001.png") in str(caught.value)


def test_folder_without_images(tmp_path):
    folder = tmp_path / "nothing here"
    folder.mkdir()
    (folder / "notes.txt").write_text("x")
    with pytest.raises(InputError, match=f"{folder} holds no images"):
        decode_video(folder, num_frames=1, height=8, width=8)
