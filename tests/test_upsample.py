"""Cascade upsampling (dreammotion.upsample): resize, v2v with tiny random models, interpolation, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dreammotion.cli import main
from dreammotion.errors import InputError
from dreammotion.io.frames import read_frames, write_frames
from dreammotion.metrics.groundtruth import psnr_per_frame
from dreammotion.synthetic import ClipSpec, render
from dreammotion.upsample import (
    V2VSettings,
    interpolate_frames,
    load_second_stage,
    make_interpolator,
    output_frame_count,
    resize_frames,
    spatial_multiple,
    target_size,
    upsample_clip,
    video_to_video,
)
from dreammotion.prior.second_stage_quality import SECOND_STAGE_MODEL, evaluate_second_stage
from dreammotion.upsample.config import UpsampleConfig
from dreammotion.upsample.v2v import unet_on
from conftest import make_project, random_clip, snakemake

REPO = Path(__file__).resolve().parents[1]
FAST = dict(strength=0.5, steps=4, guidance_scale=3.0, seed=0)


def moving_shape_clip(size=32, frames=4) -> np.ndarray:
    spec = ClipSpec(shape="square", colour="red", background="gray", x0=0.3, y0=0.5, speed=0.08, size=0.15)
    return render(spec, size, frames)[0]


# -- resize ------------------------------------------------------------------------------------


def test_target_size_from_scale_or_explicit():
    assert target_size(320, 576, 2) == (640, 1152)
    assert target_size(320, 576, 2, target_height=576, target_width=1024) == (576, 1024)
    with pytest.raises(InputError, match="both --height and --width"):
        target_size(32, 32, 2, target_height=64)
    with pytest.raises(InputError, match="--scale"):
        target_size(32, 32, 0)


def test_resize_output_sizes_and_identity():
    clip = random_clip(3, 16, 24)
    assert resize_frames(clip, 32, 48).shape == (3, 32, 48, 3)
    assert resize_frames(clip, 40, 20).shape == (3, 40, 20, 3)
    assert np.array_equal(resize_frames(clip, 16, 24), clip)
    # Lanczos of a flat image is flat: no ringing from the filter on constant input.
    flat = np.full((2, 8, 8, 3), 77, dtype=np.uint8)
    assert np.all(resize_frames(flat, 16, 16) == 77)


# -- v2v ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["tiny_model_dir", "tiny_kl_model_dir"])
def test_v2v_runs_end_to_end_on_tiny_models(fixture, request):
    stage = load_second_stage({"pretrained": str(request.getfixturevalue(fixture)), "device": "cpu"})
    assert spatial_multiple(stage.model) == 4  # 2x autoencoder, one UNet downsample
    resized = resize_frames(random_clip(5, 8, 8), 16, 16)
    refined = video_to_video(stage, resized, V2VSettings("a red circle", vae_chunk=2, **FAST))
    assert refined.shape == (5, 16, 16, 3) and refined.dtype == np.uint8
    assert not np.array_equal(refined, resized)  # the denoising pass ran and changed the clip
    again = video_to_video(stage, resized, V2VSettings("a red circle", vae_chunk=5, **FAST))
    assert np.array_equal(refined, again)  # seeded, and chunking the VAE does not change the result


def test_v2v_strength_zero_returns_resized_input_exactly(tiny_model_dir):
    stage = load_second_stage({"pretrained": str(tiny_model_dir), "device": "cpu"})
    resized = resize_frames(random_clip(4, 8, 8, seed=3), 16, 16)
    settings = V2VSettings("a blue square", strength=0.0, steps=10, vae_chunk=3)
    assert np.array_equal(video_to_video(stage, resized, settings), resized)


def test_v2v_rejects_sizes_the_model_cannot_take(tiny_model_dir):
    stage = load_second_stage({"pretrained": str(tiny_model_dir), "device": "cpu"})
    with pytest.raises(InputError, match="divisible by 4"):
        video_to_video(stage, random_clip(2, 18, 16), V2VSettings("a dog", **FAST))
    with pytest.raises(InputError, match="prompt"):
        video_to_video(stage, random_clip(2, 16, 16), V2VSettings("a " + "red " * 30, **FAST))
    with pytest.raises(InputError, match="pretrained"):
        load_second_stage({"device": "cpu"})


def test_cpu_offload_moves_only_the_unet_and_restores_it(tiny_model_dir):
    stage = load_second_stage({"pretrained": str(tiny_model_dir), "device": "cpu"}, cpu_offload=True)
    model = stage.model
    assert stage.cpu_offload and model.unet.dtype == torch.float32
    with unet_on(model, torch.device("cpu"), torch.bfloat16):
        assert model.unet.dtype == torch.bfloat16
        assert model.text_encoder.dtype == torch.float32 and model.vae._anchor.dtype == torch.float32
    assert model.unet.dtype == torch.float32
    stage.compute_dtype = torch.bfloat16  # what offload to a float16/bfloat16 GPU looks like
    refined = video_to_video(stage, resize_frames(random_clip(3, 8, 8), 16, 16), V2VSettings("a cat", **FAST))
    assert refined.shape == (3, 16, 16, 3) and model.unet.dtype == torch.float32


# -- interpolation -----------------------------------------------------------------------------


@pytest.mark.parametrize("substitute", ["farneback", "linear"])
@pytest.mark.parametrize("factor", [1, 2, 3])
def test_interpolation_frame_count_and_exact_keyframes(substitute, factor):
    clip = moving_shape_clip(32, 4)
    interpolator = make_interpolator(None, substitute)
    out = interpolate_frames(clip, factor, interpolator)
    assert len(out) == output_frame_count(4, factor) == 3 * factor + 1
    assert np.array_equal(out[::factor], clip)
    assert interpolator.info["substitute"] is True and interpolator.info["method"] == substitute


def test_linear_substitute_is_the_average_of_keyframes():
    clip = np.stack([np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 200, np.uint8)])
    out = interpolate_frames(clip, 4, make_interpolator(None, "linear"))
    assert [int(f[0, 0, 0]) for f in out] == [0, 50, 100, 150, 200]


def test_farneback_follows_motion_better_than_blending():
    spec = ClipSpec(shape="square", colour="red", background="gray", x0=0.3, y0=0.5, speed=0.1, size=0.15)
    keyframes = render(spec, 64, 2)[0]
    truth_mid = render(spec.replace(x0=spec.x0 + spec.speed / 2), 64, 1)[0][0]
    flow_mid = interpolate_frames(keyframes, 2, make_interpolator(None, "farneback"))[1]
    blend_mid = interpolate_frames(keyframes, 2, make_interpolator(None, "linear"))[1]
    flow_psnr = psnr_per_frame(flow_mid[None], truth_mid[None])[0]
    blend_psnr = psnr_per_frame(blend_mid[None], truth_mid[None])[0]
    assert flow_psnr > blend_psnr + 3.0, (flow_psnr, blend_psnr)


class _ScriptedBlend(torch.nn.Module):
    def forward(self, img0: torch.Tensor, img1: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
        t = dt.reshape(-1, 1, 1, 1)
        return (1 - t) * img0 + t * img1


class _WrongShape(torch.nn.Module):
    def forward(self, img0: torch.Tensor, img1: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
        return img0[:, :, :2]


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")  # TorchScript is deprecated; FILM ships as one
def test_torchscript_interpolation_model_is_loaded_and_called(tmp_path):
    path = tmp_path / "blend.pt"
    torch.jit.save(torch.jit.script(_ScriptedBlend()), str(path))
    interpolator = make_interpolator(path)
    assert interpolator.info == {"method": "torchscript-model", "model": str(path), "substitute": False}
    clip = moving_shape_clip(16, 3)
    out = interpolate_frames(clip, 3, interpolator)
    expected = interpolate_frames(clip, 3, make_interpolator(None, "linear"))
    assert np.array_equal(out[::3], clip)
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1  # same blend, rounding aside

    bad = tmp_path / "bad.pt"
    torch.jit.save(torch.jit.script(_WrongShape()), str(bad))
    with pytest.raises(InputError, match="returned shape"):
        interpolate_frames(clip, 2, make_interpolator(bad))
    with pytest.raises(InputError, match="does not exist"):
        make_interpolator(tmp_path / "missing.pt")


# -- the methods together ----------------------------------------------------------------------


def test_interpolate_sr_without_model_names_both_substitutes():
    clip = moving_shape_clip(16, 4)
    result = upsample_clip(clip, "interpolate+sr", height=32, width=32,
                           interpolator=make_interpolator(None, "farneback"), interpolation_factor=2)
    assert result.frames.shape == (7, 32, 32, 3)
    assert np.array_equal(result.frames[::2], resize_frames(clip, 32, 32))  # keyframes: only resized
    assert np.array_equal(result.stages["interpolated"][::2], clip)
    interpolate_step, resize_step = result.steps
    assert interpolate_step["substitute"] and interpolate_step["method"] == "farneback"
    assert resize_step["substitute"] and resize_step["filter"] == "lanczos"


def test_interpolate_sr_with_second_stage_model(tiny_model_dir):
    stage = load_second_stage({"pretrained": str(tiny_model_dir), "device": "cpu"})
    result = upsample_clip(moving_shape_clip(8, 3), "interpolate+sr", height=16, width=16, second_stage=stage,
                           v2v_settings=V2VSettings("a red square", **FAST),
                           interpolator=make_interpolator(None, "linear"), interpolation_factor=3)
    assert result.frames.shape == (7, 16, 16, 3)
    assert set(result.stages) == {"interpolated", "resized"}
    assert [s["step"] for s in result.steps] == ["interpolate", "resize", "v2v"]
    assert "substitute" not in result.steps[1]  # the resize feeds the model here, it replaces nothing


def test_method_none_resize_and_v2v_needs_a_model():
    clip = random_clip(3, 8, 8)
    assert np.array_equal(upsample_clip(clip, "none", height=16, width=16).frames, clip)
    assert upsample_clip(clip, "resize", height=24, width=16).frames.shape == (3, 24, 16, 3)
    with pytest.raises(InputError, match="second-stage model"):
        upsample_clip(clip, "v2v", height=16, width=16)
    with pytest.raises(InputError, match="use one of"):
        upsample_clip(clip, "bicubic", height=16, width=16)


# -- CLI ---------------------------------------------------------------------------------------


def test_cli_v2v_end_to_end(tmp_path, tiny_model_dir, capsys):
    write_frames(random_clip(4, 8, 8), tmp_path / "edit")
    out = tmp_path / "up"
    model = json.dumps({"pretrained": str(tiny_model_dir), "device": "cpu"})
    code = main(["upsample", "--frames", str(tmp_path / "edit"), "--out-dir", str(out), "--method", "v2v",
                 "--scale", "2", "--model", model, "--prompt", "a red circle", "--strength", "0.5", "--steps", "4",
                 "--seed", "1", "--fps", "4", "--no-progress"])
    assert code == 0
    assert read_frames(out / "frames").shape == (4, 16, 16, 3)
    assert read_frames(out / "stages" / "resized").shape == (4, 16, 16, 3)
    assert (out / "video.mp4").stat().st_size > 0
    report = json.loads((out / "upsample.json").read_text())
    assert report["output"] == {"num_frames": 4, "height": 16, "width": 16, "fps": 4.0}
    assert report["steps"][1]["model"]["source"] == str(tiny_model_dir) and report["steps"][1]["seed"] == 1
    assert report["substitutes"] == [] and report["runtime_s"]["total"] > 0


def test_cli_interpolate_sr_without_models_and_errors(tmp_path, capsys):
    write_frames(moving_shape_clip(16, 3), tmp_path / "edit")
    out = tmp_path / "up"
    code = main(["upsample", "--frames", str(tmp_path / "edit"), "--out-dir", str(out), "--method", "interpolate+sr",
                 "--scale", "2", "--interpolation-factor", "2", "--fps", "8"])
    assert code == 0
    report = json.loads((out / "upsample.json").read_text())
    assert report["output"] == {"num_frames": 5, "height": 32, "width": 32, "fps": 16.0}
    assert report["substitutes"] == ["interpolate: farneback", "resize: lanczos"]
    assert read_frames(out / "stages" / "interpolated").shape == (5, 16, 16, 3)
    assert "substitutes" in capsys.readouterr().out

    code = main(["upsample", "--frames", str(tmp_path / "edit"), "--out-dir", str(tmp_path / "x"), "--method", "v2v"])
    assert code == 1 and "needs --model" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_cli_reads_one_settings_object_and_flags_override_it(tmp_path, tiny_model_dir, capsys):
    """The workflow passes its upsample section as --config; the model comes from its pretrained key
    unless --model is given; a flag beats the config; an unknown key is an error naming it."""
    write_frames(random_clip(4, 8, 8), tmp_path / "edit")
    settings = {"method": "v2v", "scale": 3, "pretrained": str(tiny_model_dir), "strength": 0.5, "steps": 2}
    out = tmp_path / "up"
    code = main(["upsample", "--frames", str(tmp_path / "edit"), "--out-dir", str(out), "--config", json.dumps(settings),
                 "--scale", "2", "--prompt", "a red circle", "--no-progress"])
    assert code == 0
    report = json.loads((out / "upsample.json").read_text())
    assert report["output"]["height"] == 16 and report["settings"]["scale"] == 2  # the flag won
    assert report["settings"]["steps"] == 2 and report["steps"][1]["steps"] == 2 and report["steps"][1]["strength"] == 0.5
    assert report["settings"]["vae_chunk"] == UpsampleConfig().vae_chunk  # unset: the one default

    code = main(["upsample", "--frames", str(tmp_path / "edit"), "--out-dir", str(tmp_path / "x"),
                 "--config", json.dumps({"method": "resize", "scael": 2})])
    assert code == 1 and "upsample config (inline JSON): field (top level)" in capsys.readouterr().err
    code = main(["upsample", "--frames", str(tmp_path / "edit"), "--out-dir", str(tmp_path / "x"),
                 "--config", json.dumps({"method": "resize", "height": 16})])
    assert code == 1 and "give both --height and --width" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


# -- second-stage evaluation -------------------------------------------------------------------


def test_evaluate_second_stage_runs_and_strength_zero_equals_resize(tiny_model_dir):
    result = evaluate_second_stage(tiny_model_dir, num_clips=2, strength=0.0, steps=4, device="cpu")
    assert len(result["clips"]) == 2
    assert result["mean_psnr_v2v"] == result["mean_psnr_resize"]  # lossless round trip, nothing denoised
    noisy = evaluate_second_stage(tiny_model_dir, num_clips=2, strength=0.5, steps=4, device="cpu")
    assert noisy["mean_psnr_v2v"] < noisy["mean_psnr_resize"]  # a random model only degrades the clip
    assert noisy["mean_psnr_resize"] == result["mean_psnr_resize"]  # same seeded clips


def test_shipped_second_stage_is_a_small_conditioned_refiner():
    from dreammotion.models import load_t2v
    from dreammotion.upsample.refiner import takes_condition
    from dreammotion.upsample.v2v import recommended_settings

    folder = REPO / SECOND_STAGE_MODEL
    for file in folder.rglob("*"):
        assert file.stat().st_size < 16 * 2**20, f"{file} is over 16 MiB"
    model = load_t2v(folder)
    assert takes_condition(model.unet) and model.scheduler.config.timestep_spacing == "trailing"
    assert recommended_settings(model) == {"strength": 1.0, "steps": 1, "guidance_scale": 1.0}


def test_shipped_second_stage_model_beats_plain_resize():
    """On clips it was not tuned on (seed 5; the committed evaluation used seed 0, 16 clips), the
    shipped refiner at its recommended settings is closer to the 64x64 truth than Lanczos, in PSNR and
    SSIM, and keeps the object's colour. The margins are run G's (bench/upsample/NOTES.md: +3.5 dB,
    +0.026 SSIM on these clips); the refiner shipped before it (run C: +1.2 dB, +0.0002) fails them."""
    result = evaluate_second_stage(REPO / SECOND_STAGE_MODEL, num_clips=4, seed=5, device="cpu")
    assert result["mean_psnr_v2v"] > result["mean_psnr_resize"] + 2.0, result
    assert result["mean_ssim_v2v"] > result["mean_ssim_resize"] + 0.01, result
    assert result["mean_colour_error_v2v"] < result["mean_colour_error_resize"] + 2.0, result


# -- the conditioned second stage (refiner) ----------------------------------------------------


def test_torch_lanczos_equals_pillow_on_renders_and_within_one_level_on_noise():
    from dreammotion.upsample.refiner import lanczos_upsample_torch

    def torch_resize(clip, height, width):
        frames = torch.from_numpy(clip).permute(0, 3, 1, 2)
        return lanczos_upsample_torch(frames, height, width).permute(0, 2, 3, 1).numpy()

    clip = moving_shape_clip(32, 4)
    assert np.array_equal(torch_resize(clip, 64, 64), resize_frames(clip, 64, 64))
    noise = random_clip(2, 20, 24)
    difference = np.abs(torch_resize(noise, 48, 40) - resize_frames(noise, 48, 40).astype(float))
    assert difference.max() <= 1


@pytest.fixture(scope="module")
def tiny_refiner_dir(tmp_path_factory):
    from dreammotion.prior.train_refiner import main as train_refiner

    folder = tmp_path_factory.mktemp("refiner") / "refiner"
    args = ["--out", str(folder), "--preset", "tiny", "--batch", "2", "--max-steps", "1", "--device", "cpu",
            "--warmup", "1", "--ema", "0", "--log-every", "1"]
    assert train_refiner(args) == 0
    return folder


def test_refiner_training_saves_a_conditioned_residual_model(tiny_refiner_dir):
    from dreammotion.upsample.refiner import read_refiner_info, residual_scale, takes_condition

    stage = load_second_stage({"pretrained": str(tiny_refiner_dir), "device": "cpu"})
    unet = stage.model.unet
    assert takes_condition(unet) and unet.config.in_channels == 2 * unet.config.out_channels == 96
    info = read_refiner_info(tiny_refiner_dir)
    assert info["low_size"] == 32 and info["size"] == 64
    assert residual_scale(tiny_refiner_dir, unet) == info["residual_scale"] > 0
    assert stage.describe()["conditioned"] is True


def test_edit_like_degradation_blurs_shifts_and_stays_8_bit():
    from scipy.ndimage import gaussian_filter

    from dreammotion.prior.train_refiner import degrade_like_edits

    clip = torch.from_numpy(moving_shape_clip(32, 4)).permute(3, 0, 1, 2)[None].float()  # (1, 3, F, H, W)
    assert torch.equal(degrade_like_edits(clip, 0.0, 0.0), clip)
    blurred = degrade_like_edits(clip, 1.0, 0.0, generator=torch.Generator().manual_seed(0))
    sigma = (torch.rand(1, generator=torch.Generator().manual_seed(0)) * 1.0).item()  # the same draw
    expected = gaussian_filter(clip[0].numpy(), (0, 0, sigma, sigma), mode="nearest", truncate=3 / sigma)
    assert np.abs(blurred[0].numpy() - expected.round()).max() <= 1  # the Gaussian, edges replicated
    shifted = degrade_like_edits(clip.repeat(8, 1, 1, 1, 1), 0.0, 4.0, generator=torch.Generator().manual_seed(1))
    offset = (shifted - clip).flatten(2)  # per clip and channel, one offset where nothing clips
    inside = (clip > 8).flatten(2) & (clip < 247).flatten(2)
    assert all(len(set(offset[b, c][inside[0, c]].tolist())) == 1 for b in range(8) for c in range(3))
    assert offset.abs().max() <= 4 and len({tuple(o[:, 0].tolist()) for o in offset}) > 4  # drawn per clip
    assert torch.equal(shifted, shifted.round()) and shifted.min() >= 0 and shifted.max() <= 255


def test_refiner_target_is_the_residual_of_the_degraded_clips_resize(tmp_path):
    """With no noise augmentation, condition + target / residual_scale is the clean 64x64 clip: the
    model learns to take the resize of a degraded clip to the truth, not to re-add the degradation."""
    from dreammotion.prior import train
    from dreammotion.prior.train_refiner import RefinerTrainer, add_refiner_arguments

    parser = __import__("argparse").ArgumentParser()
    train.add_arguments(parser)
    add_refiner_arguments(parser)
    args = parser.parse_args(["--out", str(tmp_path / "m"), "--preset", "tiny", "--size", "64", "--batch", "3",
                              "--device", "cpu", "--caption-dropout", "0", "--condition-noise", "0",
                              "--condition-blur", "1", "--condition-colour-shift", "4"])
    trainer = RefinerTrainer(args, torch.device("cpu"))
    rendered_sizes = []
    render = trainer.render  # the trainer's renderer (compiled under --compile) draws both clips

    def recording_render(params, size, frames):
        rendered_sizes.append(size)
        return render(params, size=size, frames=frames)

    trainer.render = recording_render
    target, _, condition = trainer.batch()
    assert rendered_sizes == [64, 32]
    rebuilt = condition + target / args.residual_scale
    trainer.rng = np.random.default_rng(args.seed)  # the same clips again, undegraded
    args.condition_blur = args.condition_colour_shift = args.residual_scale = 0.0
    clean, _, clean_condition = trainer.batch()
    torch.testing.assert_close(rebuilt, clean, rtol=0, atol=1e-5)
    assert not torch.allclose(condition, clean_condition, atol=1e-3)  # the condition was degraded


def test_jittered_condition_moves_only_the_low_clips_object():
    """--condition-shift / --condition-size-jitter draw the 32x32 object off the truth's geometry, as an
    edit does; the 64x64 target and the background stay the truth's, and without them nothing changes."""
    from dreammotion.prior.train_refiner import render_refiner_batch

    def draw(shift, size_jitter):
        return render_refiner_batch(np.random.default_rng(3), 6, 64, "cpu", 0.0, shift, size_jitter)

    high, low, captions = draw(0.0, 0.0)
    high_j, low_j, captions_j = draw(1.0, 0.1)
    assert torch.equal(high, high_j) and captions == captions_j  # the same clips, the target untouched
    assert torch.equal(draw(0.0, 0.0)[1], low)  # no jitter: the same condition as before the option existed
    changed = (low_j != low).any(dim=1)  # (B, F, H, W)
    assert changed.flatten(1).any(dim=1).all()  # every clip's object moved
    # Only pixels near the object change: most of each clip is its (unchanged) background.
    unchanged = (~changed).flatten(1).float().mean(dim=1)
    assert (unchanged > 0.8).all()
    assert (low_j - low).abs().max() > 50 and torch.equal(low_j, low_j.round())


def test_compiled_renderer_draws_the_jittered_refiner_batches_of_the_eager_one():
    """Under --compile the refiner's batches, the jittered 32x32 condition's per-frame offsets
    included, come from the compiled renderer, pixel for pixel the eager renderer's (on a CPU)."""
    from dreammotion.prior.train_refiner import render_refiner_batch
    from dreammotion.synthetic.render import render_batch_torch

    compiled = torch.compile(render_batch_torch, fullgraph=True, dynamic=False)
    high, low, captions = render_refiner_batch(np.random.default_rng(5), 3, 64, "cpu", 0.1, 1.0, 0.1)
    high_c, low_c, captions_c = render_refiner_batch(np.random.default_rng(5), 3, 64, "cpu", 0.1, 1.0, 0.1,
                                                     render=compiled)
    assert torch.equal(high, high_c) and torch.equal(low, low_c) and captions == captions_c


def test_refiner_strength_zero_returns_its_condition_exactly(tiny_refiner_dir):
    # A residual refiner that denoises nothing adds no residual: the output is the resized clip.
    stage = load_second_stage({"pretrained": str(tiny_refiner_dir), "device": "cpu"})
    resized = resize_frames(moving_shape_clip(32, 8), 64, 64)
    out = video_to_video(stage, resized, V2VSettings("a red square", strength=0.0, steps=4))
    assert np.array_equal(out, resized)
    refined = video_to_video(stage, resized, V2VSettings("a red square", strength=1.0, steps=2, guidance_scale=1.0))
    assert refined.shape == resized.shape and not np.array_equal(refined, resized)


def test_evaluate_uses_the_refiners_recommended_settings(tiny_refiner_dir):
    result = evaluate_second_stage(tiny_refiner_dir, num_clips=1, steps=2, device="cpu")
    assert result["conditioned"] is True
    assert result["settings"]["strength"] == 1.0 and result["settings"]["guidance_scale"] == 1.0
    assert result["settings"]["steps"] == 2  # an explicit setting wins
    for key in ("psnr", "ssim", "colour_error"):
        assert np.isfinite(result[f"mean_{key}_v2v"]) and np.isfinite(result[f"mean_{key}_resize"])


@pytest.mark.slow
def test_workflow_v2v_takes_the_second_stages_own_settings_unless_the_config_sets_them(tmp_path, tiny_model_dir):
    """upsample.strength / steps / guidance_scale left null: the job runs the model's recommendation
    (an unconditioned model: 0.4 / 25 / 7.5); a value the config sets reaches the job."""
    work = make_project(tmp_path, tiny_model_dir,
                        extra_config={"upsample": {"method": "v2v", "pretrained": str(tiny_model_dir), "steps": 3}})
    target = "results/upsampled/dreammotion/green2red/upsample.json"
    snakemake(work, target)
    record = json.loads((work / target).read_text())
    v2v = next(step for step in record["steps"] if step.get("step") == "v2v")
    assert (v2v["strength"], v2v["steps"], v2v["guidance_scale"]) == (0.4, 3, 7.5), v2v

