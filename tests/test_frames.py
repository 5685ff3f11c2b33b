"""Frame extraction (geometry, fps resampling, rotation, outputs), probing, the `frames` CLI and video writing.

Test videos are made by the same ffmpeg binary inside tmp folders: tiny, about one second long.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dreammotion.cli import main
from dreammotion.errors import InputError
from dreammotion.io.frames import read_frames
from dreammotion.io.extract import decode_video, extract_frames
from dreammotion.io.ffmpeg_tool import ffmpeg_binary, ffmpeg_binary_info
from dreammotion.io.probe import probe_from_ffmpeg_stderr, probe_from_ffprobe_json, probe_video
from dreammotion.io.write import side_by_side, write_gif, write_video
from conftest import BLACK, BLUE, GREEN, RED, WHITE, assert_colour, quadrant_image, random_clip, run_ffmpeg



def encode_frames(frames: np.ndarray, out: Path, *codec_args: str, fps: int = 10) -> Path:
    """Encode uint8 frames (via a PNG sequence) with ffmpeg."""
    source = out.parent / f"{out.stem}_src"
    source.mkdir()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(source / f"{i:03d}.png")
    run_ffmpeg("-framerate", str(fps), "-i", str(source / "%03d.png"), *codec_args, str(out))
    shutil.rmtree(source)
    return out


def brightness(i: int) -> int:
    return 20 + 20 * i


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("videos")
    quad = np.stack([quadrant_image()] * 10)
    ramp = np.stack([np.full((16, 16, 3), brightness(i), np.uint8) for i in range(10)])
    h264 = ("-c:v", "libx264", "-pix_fmt", "yuv420p")
    made = {
        "quad": encode_frames(quad, folder / "quad.mp4", *h264),
        "ramp": encode_frames(ramp, folder / "ramp.mp4", "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv444p"),
    }
    # Display matrix: rotate 90 degrees counter-clockwise when shown.
    made["rotated"] = folder / "rotated.mp4"
    run_ffmpeg("-display_rotation:v:0", "90", "-i", str(made["quad"]), "-c", "copy", str(made["rotated"]))
    return made


def source_indices(frames: np.ndarray) -> list[int]:
    """Which frame of the brightness ramp each decoded frame is."""
    means = frames.reshape(len(frames), -1).mean(axis=1)
    indices = np.round((means - 20) / 20).astype(int).tolist()
    assert np.allclose(means, [brightness(i) for i in indices], atol=4), means
    return indices


# -- binary and probe ----------------------------------------------------------------------------------------


def test_ffmpeg_binary_is_path_or_imageio(monkeypatch, tmp_path):
    info = ffmpeg_binary_info()
    assert Path(info["path"]).is_file() and info["source"] in ("PATH", "imageio-ffmpeg")
    monkeypatch.setenv("PATH", str(tmp_path))  # no ffmpeg on PATH -> the pip binary
    info = ffmpeg_binary_info()
    import imageio_ffmpeg

    assert info == {"path": imageio_ffmpeg.get_ffmpeg_exe(), "source": "imageio-ffmpeg"}


def test_probe_video_reports_stream_and_method(videos):
    probe = probe_video(videos["quad"])
    assert (probe["width"], probe["height"], probe["codec"], probe["pix_fmt"]) == (64, 32, "h264", "yuv420p")
    assert probe["fps"] == pytest.approx(10) and probe["duration"] == pytest.approx(1.0, abs=0.05)
    assert probe["frame_count"] == 10 and probe["rotation"] == 0 and probe["has_alpha"] is False
    expected_method = "ffprobe" if shutil.which("ffprobe") else "ffmpeg -i stderr"
    assert probe["probe_method"] == expected_method
    assert probe["ffmpeg_binary"] == ffmpeg_binary()


def test_probe_rotated_video_swaps_size(videos):
    probe = probe_video(videos["rotated"])
    assert probe["rotation"] == pytest.approx(90)
    assert (probe["coded_width"], probe["coded_height"]) == (64, 32)
    assert (probe["width"], probe["height"]) == (32, 64)


OLD_FFMPEG_STDERR = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'clip.mov':
  Metadata:
    major_brand     : qt
  Duration: 00:01:02.50, start: 0.000000, bitrate: 9000 kb/s
  Stream #0:0(und): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, stereo, fltp, 128 kb/s (default)
  Stream #0:1(und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(tv, bt709), 1920x1080, 8000 kb/s, 29.97 fps, 29.97 tbr, 600 tbn, 1200 tbc (default)
    Metadata:
      rotate          : 90
      handler_name    : Core Media Video
    Side data:
      displaymatrix: rotation of -90.00 degrees
At least one output file must be specified
"""


def test_probe_from_ffmpeg_stderr_parses_other_versions():
    probe = probe_from_ffmpeg_stderr(OLD_FFMPEG_STDERR, "clip.mov")
    assert probe["stream_index"] == 1 and probe["codec"] == "h264" and probe["pix_fmt"] == "yuv420p"
    assert probe["rotation"] == 270 and (probe["width"], probe["height"]) == (1080, 1920)
    assert probe["fps"] == pytest.approx(29.97) and probe["duration"] == pytest.approx(62.5)
    assert probe["frame_count"] == round(29.97 * 62.5) and probe["frame_count_exact"] is False


def test_probe_zero_frame_size_is_an_error():
    stderr = OLD_FFMPEG_STDERR.replace("1920x1080", "0x0")
    with pytest.raises(InputError, match="clip.mov.*frame size of 0x0"):
        probe_from_ffmpeg_stderr(stderr, "clip.mov")


def test_probe_from_ffprobe_json():
    data = {
        "format": {"format_name": "matroska,webm", "duration": "2.000000"},
        "streams": [
            {"index": 0, "codec_type": "audio", "codec_name": "opus"},
            {
                "index": 1, "codec_type": "video", "codec_name": "vp9", "width": 40, "height": 20,
                "pix_fmt": "yuv420p", "sample_aspect_ratio": "2:1", "avg_frame_rate": "25/1",
                "tags": {"ALPHA_MODE": "1"}, "side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}],
            },
        ],
    }
    probe = probe_from_ffprobe_json(data, "a.webm")
    assert probe["stream_index"] == 1 and probe["has_alpha"] and probe["pix_fmt"] == "yuva420p"
    assert probe["rotation"] == 270 and (probe["width"], probe["height"]) == (20, 80)  # 2:1 pixels, then rotated
    assert probe["frame_count"] == 50 and probe["probe_method"] == "ffprobe"
    data["streams"] = data["streams"][:1]
    with pytest.raises(InputError, match=r"a\.webm has no video stream \(streams: audio\)"):
        probe_from_ffprobe_json(data, "a.webm")


# -- geometry --------------------------------------------------------------------------------------------------


def test_extract_crop_keeps_centre(videos, tmp_path):
    out = tmp_path / "frames"
    metadata = extract_frames(videos["quad"], out, num_frames=4, height=32, width=32, resize="crop")
    frames = read_frames(out)
    assert frames.shape == (4, 32, 32, 3) and metadata["num_frames"] == 4
    assert_colour(frames[0, 4, 4], RED)
    assert_colour(frames[0, 4, 28], GREEN)
    assert_colour(frames[0, 28, 4], BLUE)
    assert_colour(frames[0, 28, 28], WHITE)


def test_extract_pad_letterboxes(videos):
    frames, _ = decode_video(videos["quad"], num_frames=1, height=32, width=32, resize="pad")
    assert_colour(frames[0, 2, 16], BLACK, 20)  # 32x16 picture centred: rows 0..7 and 24..31 are padding
    assert_colour(frames[0, 29, 16], BLACK, 20)
    assert_colour(frames[0, 10, 4], RED)
    assert_colour(frames[0, 21, 28], WHITE)


def test_extract_stretch_keeps_everything(videos):
    frames, _ = decode_video(videos["quad"], num_frames=1, height=20, width=10, resize="stretch")
    assert frames.shape == (1, 20, 10, 3)
    assert_colour(frames[0, 2, 1], RED)
    assert_colour(frames[0, 17, 8], WHITE)


def test_rotation_metadata_is_honoured(videos):
    frames, metadata = decode_video(videos["rotated"], num_frames=2, height=64, width=32, resize="stretch")
    # Counter-clockwise quarter turn: red (top-left) goes to bottom-left, green (top-right) to top-left.
    assert_colour(frames[0, 4, 4], GREEN)
    assert_colour(frames[0, 60, 4], RED)
    assert_colour(frames[0, 4, 28], WHITE)
    assert_colour(frames[0, 60, 28], BLUE)
    assert metadata["probe"]["rotation"] == pytest.approx(90)


# -- time --------------------------------------------------------------------------------------------------------


def test_native_rate_takes_consecutive_frames(videos):
    frames, metadata = decode_video(videos["ramp"], num_frames=10, height=8, width=8)
    assert source_indices(frames) == list(range(10))
    assert metadata["fps"] == pytest.approx(10) and metadata["fps_resampled"] is False


def test_fps_resample_changes_picked_frames(videos):
    frames, _ = decode_video(videos["ramp"], num_frames=5, fps=5, height=8, width=8)
    assert source_indices(frames) == [0, 2, 4, 6, 8]
    frames, _ = decode_video(videos["ramp"], num_frames=6, fps=20, height=8, width=8)
    assert source_indices(frames) == [0, 0, 1, 1, 2, 2]


def test_start_picks_first_frame_at_or_after_it(videos):
    frames, _ = decode_video(videos["ramp"], num_frames=3, start=0.3, height=8, width=8)
    assert source_indices(frames) == [3, 4, 5]
    frames, _ = decode_video(videos["ramp"], num_frames=3, start=0.3, fps=5, height=8, width=8)
    assert source_indices(frames) == [3, 5, 7]


def test_all_frames_takes_every_frame_to_the_end(videos, tmp_path):
    """num_frames None (`frames.num_frames: all`): every frame after the resample and the start, however many."""
    frames, metadata = decode_video(videos["ramp"], num_frames=None, height=8, width=8)
    assert source_indices(frames) == list(range(10)) and metadata["num_frames"] == 10 and metadata["all_frames"]
    frames, _ = decode_video(videos["ramp"], num_frames=None, start=0.3, fps=5, height=8, width=8)
    assert source_indices(frames) == [3, 5, 7, 9]
    metadata = extract_frames(videos["ramp"], tmp_path / "out", num_frames=None, height=8, width=8)
    assert len(list((tmp_path / "out").glob("*.png"))) == 10 == metadata["num_frames"]


def test_num_frames_option_takes_a_count_or_all():
    import argparse

    from dreammotion.io.cli import frame_count

    assert frame_count("all") is None and frame_count("32") == 32
    for bad in ("0", "eight", "-3"):
        with pytest.raises(argparse.ArgumentTypeError, match="frame"):
            frame_count(bad)


def test_too_short_after_resampling_says_counts(videos):
    with pytest.raises(InputError, match=r"ramp\.mp4 is too short: it has only 5 frames at 5 fps.*6 were asked"):
        decode_video(videos["ramp"], num_frames=6, fps=5, height=8, width=8)
    with pytest.raises(InputError, match=r"ramp\.mp4 is too short: it has only 10 frames.*12 were asked"):
        decode_video(videos["ramp"], num_frames=12, height=8, width=8)


def test_bad_request_names_file(videos):
    with pytest.raises(InputError, match="quad.mp4.*num_frames"):
        decode_video(videos["quad"], num_frames=0, height=8, width=8)
    with pytest.raises(InputError, match="quad.mp4.*resize"):
        decode_video(videos["quad"], num_frames=1, height=8, width=8, resize="zoom")


# -- outputs ---------------------------------------------------------------------------------------------------


def test_outputs_are_complete_and_replace_old_ones(videos, tmp_path):
    out = tmp_path / "frames"
    out.mkdir()
    (out / "00099.png").write_bytes(b"stale")
    metadata = extract_frames(videos["quad"], out, num_frames=3, fps=5, height=16, width=16)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["00000.png", "00001.png", "00002.png", "ffmpeg.json", "probe.json"]
    record = json.loads((out / "ffmpeg.json").read_text())
    argv = record["commands"][0]
    assert argv[0] == ffmpeg_binary() == record["binary"] and record["source"] == ffmpeg_binary_info()["source"]
    assert "-filter_complex" in argv and any("fps=fps=5" in a for a in argv) and argv[-1] == "pipe:"
    assert json.loads((out / "probe.json").read_text()) == json.loads(json.dumps(metadata["probe"]))
    # The argv really produces the frames: rerun it and compare.
    rerun = subprocess.run(argv, capture_output=True, check=True).stdout
    assert np.array_equal(np.frombuffer(rerun, np.uint8).reshape(3, 16, 16, 3), read_frames(out))


def test_failed_extraction_writes_nothing(videos, tmp_path):
    out = tmp_path / "frames"
    with pytest.raises(InputError):
        extract_frames(videos["ramp"], out, num_frames=50, height=8, width=8)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_cli_frames_stage(videos, tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["frames", "--video", str(videos["quad"]), "--out", str(out), "--num-frames", "2",
            "--height", "24", "--width", "16", "--resize", "pad", "--fps", "4", "--start", "0.2"]
    assert main(argv) == 0
    assert read_frames(out).shape == (2, 24, 16, 3)
    assert "ffmpeg from" in capsys.readouterr().out
    missing = tmp_path / "nope.mp4"
    argv = ["frames", "--video", str(missing), "--out", str(out), "--num-frames", "2", "--height", "8", "--width", "8"]
    assert main(argv) == 1
    assert str(missing) in capsys.readouterr().err


# -- writing ----------------------------------------------------------------------------------------------------


def test_write_video_round_trip_upscales_small_clips(tmp_path):
    clip = random_clip(5, 32, 32)
    path = tmp_path / "out dir" / "clip.mp4"
    write_video(clip, path, fps=8)
    probe = probe_video(path)
    assert (probe["codec"], probe["pix_fmt"], probe["width"], probe["height"]) == ("h264", "yuv420p", 256, 256)
    assert probe["fps"] == pytest.approx(8)
    frames, _ = decode_video(path, num_frames=5, height=32, width=32, resize="stretch")
    assert np.abs(frames.astype(int) - clip).mean() < 20  # nearest upscale then area downscale: same picture
    with pytest.raises(InputError, match="only 5 frames"):
        decode_video(path, num_frames=6, height=32, width=32)
    assert [p.name for p in path.parent.iterdir()] == ["clip.mp4"]  # no temporary left behind


def test_write_video_makes_odd_sizes_even(tmp_path):
    path = tmp_path / "odd.mp4"
    write_video(random_clip(3, 17, 33), path, fps=5, min_size=0)
    probe = probe_video(path)
    assert (probe["width"], probe["height"]) == (34, 18)
    write_video(random_clip(3, 17, 33), path, fps=5, min_size=256)  # factor 16 -> 528 x 272
    probe = probe_video(path)
    assert (probe["width"], probe["height"]) == (528, 272)


def test_write_gif_round_trip(tmp_path):
    clip = random_clip(4, 20, 30)
    path = tmp_path / "clip.gif"
    write_gif(clip, path, fps=8)
    with Image.open(path) as gif:
        assert gif.n_frames == 4 and gif.size == (210, 140)  # factor ceil(128 / 20) = 7
        assert gif.info["duration"] in (120, 130) and gif.info["loop"] == 0  # GIF counts in 1/100 s
    frames, _ = decode_video(path, num_frames=4, height=20, width=30, resize="stretch")
    assert frames.shape == (4, 20, 30, 3)
    assert np.abs(frames.astype(int) - clip).mean() < 30  # 256-colour palette
    with pytest.raises(InputError, match="clip.gif is too short"):
        decode_video(path, num_frames=5, height=20, width=30)


def test_side_by_side_shapes_and_content():
    small = random_clip(3, 16, 24, seed=1)
    big = random_clip(3, 32, 32, seed=2)
    stacked = side_by_side([big, small], gap=2)
    assert stacked.shape == (3, 32, 32 + 2 + 48, 3)
    assert np.array_equal(stacked[:, :, :32], big)
    assert np.all(stacked[:, :, 32:34] == 255)
    assert np.array_equal(stacked[:, ::2, 34::2], small)  # nearest 2x: every other pixel is the original
    labelled = side_by_side([big, small], labels=["source", "edit"], gap=2)
    band = labelled.shape[1] - 32
    assert labelled.shape[0] == 3 and labelled.shape[2] == 82 and band > 0
    assert np.array_equal(labelled[:, band:], stacked)
    assert labelled[:, :band].max() > 200  # some (anti-aliased) label pixels are drawn
    with pytest.raises(ValueError, match="same number of frames"):
        side_by_side([big, small[:2]])
    with pytest.raises(ValueError, match="labels"):
        side_by_side([big, small], labels=["one"])


def test_side_by_side_written_as_video(tmp_path):
    clip = side_by_side([random_clip(2, 8, 8), random_clip(2, 8, 12)], labels=["a", "b"])
    write_video(clip, tmp_path / "compare.mp4", min_size=64)
    probe = probe_video(tmp_path / "compare.mp4")
    assert probe["height"] >= 64 and probe["width"] % 2 == 0 and probe["height"] % 2 == 0
