"""The embedded prior: training script (smoke), shipped weights, sampler and the gate's classifier."""

from __future__ import annotations

import json
import math
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import load_bench_script, prior_trainer_args
from dreammotion.models import load_t2v
from dreammotion.prior import train
from dreammotion.prior.classify import classify_clip
from dreammotion.prior.sample import sample_clips
from dreammotion.synthetic import ClipSpec, caption, render, sample_spec

REPO = Path(__file__).resolve().parents[1]
# The 64x64 second stage is a conditioned refiner now, tested in test_upsample.py.
SHIPPED = {32: REPO / "data/models/dreammotion-shapes-t2v"}


def test_training_smoke_run_saves_a_loadable_model(tmp_path):
    out = tmp_path / "prior"
    parser = __import__("argparse").ArgumentParser()
    train.add_arguments(parser)
    args = parser.parse_args(
        ["--out", str(out), "--size", "32", "--preset", "tiny", "--max-steps", "2", "--batch", "2",
         "--device", "cpu", "--archive", str(tmp_path / "prior_archive")]
    )
    assert train.run(args) == 0
    info = json.loads((out / "training.json").read_text())
    assert info["steps"] == 2 and info["final"]
    assert all(math.isfinite(entry["mse"]) for entry in info["loss_log"])
    model = load_t2v(out)
    assert model.unet.config.in_channels == 12 and model.vae.config.factor == 2
    clips = sample_clips(model, [caption(ClipSpec())], steps=2)
    assert clips.shape == (1, 8, 32, 32, 3)
    # The archive (split tar for the device machine) holds the same folder.
    parts = sorted(tmp_path.glob("prior_archive.tar.part*"))
    assert parts and all(p.stat().st_size <= train.ARCHIVE_PART_BYTES for p in parts)
    (tmp_path / "whole.tar").write_bytes(b"".join(p.read_bytes() for p in parts))
    with tarfile.open(tmp_path / "whole.tar") as tar:
        assert "prior/unet/config.json" in tar.getnames()


def test_bf16_training_keeps_fp32_masters_and_saves_them(tmp_path):
    """--precision bf16: the UNet runs in bf16, AdamW updates fp32 masters (a step's update is
    below bf16's resolution), and the saved weights are the fp32 masters, not their bf16 copy."""
    args = prior_trainer_args(tmp_path, "--device", "cpu", "--precision", "bf16", "--ema", "0", "--lr", "1e-3")
    trainer = train.PriorTrainer(args, torch.device("cpu"))
    assert trainer.unet.dtype == torch.bfloat16
    assert all(m.dtype == torch.float32 for m in trainer.masters)
    before = [m.detach().clone() for m in trainer.masters]
    loss, mse = trainer.step(*trainer.batch(), lr=1e-3)
    assert torch.isfinite(loss) and torch.isfinite(mse)
    moved = [(m - b).abs().max().item() for m, b in zip(trainer.masters, before)]
    assert max(moved) > 0
    # The live bf16 weights are the masters rounded, and saving exposes the masters themselves.
    for param, master in zip(trainer.unet_params, trainer.masters):
        torch.testing.assert_close(param.float(), master.to(torch.bfloat16).float(), rtol=0, atol=0)
    with trainer.weights_to_save():
        assert trainer.unet.dtype == torch.float32
        for param, master in zip(trainer.unet_params, trainer.masters):
            assert torch.equal(param, master)
    assert trainer.unet.dtype == torch.bfloat16  # training state back as it was


def test_second_stage_packs_64_pixels_into_16x16_latents():
    clips = torch.rand(2, 3, 8, 64, 64) * 2 - 1
    latents = train.pack_latents(clips, 4)
    assert latents.shape == (2, 48, 8, 16, 16)
    unet, *_ , autoencoder = train.build_model(64, preset="tiny")
    assert unet.config.in_channels == 48 and autoencoder.latent_channels == 48
    # Same packing as the autoencoder that loads with the model.
    frame = clips[:, :, 0]
    torch.testing.assert_close(autoencoder.encode(frame).latent_dist.mode(), latents[:, :, 0])


def test_decoder_has_spatial_self_attention_for_key_matching():
    unet, *_ = train.build_model(32, preset="tiny")
    names = [n for n, _ in unet.named_modules()]
    spatial = [n for n in names if n.startswith("up_blocks") and ".attentions." in n and n.endswith("attn1")]
    assert len(spatial) >= 4


@pytest.mark.parametrize("size", [32])
def test_shipped_model_loads_and_generates(size):
    folder = SHIPPED[size]
    assert folder.is_dir(), f"shipped model {folder} is missing"
    for file in folder.rglob("*"):
        assert file.stat().st_size < 16 * 2**20, f"{file} is over 16 MiB"
    model = load_t2v(folder)
    assert model.unet.config.in_channels == 3 * (size // 16) ** 2
    clips = sample_clips(model, [caption(ClipSpec())], steps=2, guidance_scale=3.0)
    assert clips.shape == (1, 8, size, size, 3) and clips.dtype == np.uint8
    info = json.loads((folder / "training.json").read_text())
    assert info["size"] == size and info["total_steps"] > 0


def test_classifier_is_exact_on_ground_truth_renders():
    rng = np.random.default_rng(11)
    specs = [sample_spec(rng, held_out="any") for _ in range(60)]
    results = [classify_clip(render(s)[0]) for s in specs]
    colour = np.mean([r.colour == s.colour for r, s in zip(results, specs)])
    shape = np.mean([r.shape == s.shape for r, s in zip(results, specs)])
    assert colour >= 0.98 and shape >= 0.98


def test_classifier_reports_no_object_on_an_empty_clip():
    from dreammotion.synthetic import render_background_frames

    result = classify_clip(render_background_frames(ClipSpec(background="black", texture="striped")))
    assert result.colour is None and result.shape is None


def test_classifier_holds_under_realistic_degradations():
    from dreammotion.prior.classify import DEGRADATIONS, degrade, validate

    rng = np.random.default_rng(5)
    specs = [sample_spec(rng, held_out="any") for _ in range(40)]
    report = validate(specs, seed=1)
    assert set(report) == set(DEGRADATIONS)
    for name, row in report.items():
        assert row["colour_accuracy"] >= 0.95 and row["shape_accuracy"] >= 0.9, (name, row)
    # The degradations really change the pixels (a no-op would make the check above meaningless).
    clip = render(specs[0])[0]
    assert np.abs(degrade(clip, np.random.default_rng(0), noise=10.0).astype(int) - clip).mean() > 5


def test_background_noise_measures_the_pixel_noise_of_a_plain_background():
    from dreammotion.prior.gates import background_noise

    clip = render(ClipSpec(colour="yellow", background="black"))[0]
    assert background_noise(clip, "black") == 0.0
    rng = np.random.default_rng(0)
    noisy = np.clip(clip + rng.normal(0, 8, clip.shape), 0, 255).astype(np.uint8)
    assert 6.0 < background_noise(noisy, "black") < 8.5  # clipping at 0 trims a little
    tinted = np.clip(clip.astype(int) + 30, 0, 255).astype(np.uint8)  # a uniform tint is not noise
    assert background_noise(tinted, "black") < 1.0
    assert background_noise(rng.integers(0, 256, clip.shape).astype(np.uint8), "black") > 60


def test_gates_report_and_card_section_come_from_one_function(tmp_path):
    from dreammotion.prior import gates

    model = load_t2v(SHIPPED[32])
    report, clips = gates.gates(model, n=2, steps=2, guidance_scale=5.0, seed=0)
    assert clips.shape == (2, 8, 32, 32, 3)
    for key in ("colour_accuracy", "shape_accuracy"):
        assert 0.0 <= report["held_out"][key] <= 1.0
    assert report["background_noise_std"] >= 0 and set(report["passed"]) == {
        "held_out.colour_accuracy", "held_out.shape_accuracy", "background_noise_std"}
    card = tmp_path / "README.md"
    card.write_text("# model\n\nintro\n\n## Gates\n\n<!-- gates:begin -->\nold\n<!-- gates:end -->\n\ntail\n")
    report["clips_seen"] = 10
    gates.write_card_section(card, report)
    text = card.read_text()
    assert "old" not in text and text.startswith("# model") and text.rstrip().endswith("tail")
    assert gates.card_section(report) in text


def test_shipped_gates_are_the_model_cards():
    """gates.json holds the keys the issue names, and the card's Gates section is generated from it."""
    from dreammotion.prior.gates import card_section

    report = json.loads((SHIPPED[32] / "gates.json").read_text())
    for key in ("colour_accuracy", "shape_accuracy"):
        assert 0.0 <= report["held_out"][key] <= 1.0
    assert report["background_noise_std"] >= 0 and report["clips_seen"] > 0
    info = json.loads((SHIPPED[32] / "training.json").read_text())
    assert report["clips_seen"] == info["total_clips_seen"]
    assert card_section(report) in (SHIPPED[32] / "README.md").read_text()


@pytest.mark.parametrize("size", [32])
def test_shipped_models_load_as_a_diffusers_pipeline(size):
    """model_index.json: DiffusionPipeline.from_pretrained gives a TextToVideoSDPipeline that samples
    clips of the model's size (after importing the module of the autoencoder class)."""
    import dreammotion.models.autoencoder  # noqa: F401  (diffusers imports no module it does not know)
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(SHIPPED[size], dtype=torch.float32)  # weights are stored fp16
    assert type(pipe).__name__ == "TextToVideoSDPipeline" and pipe.vae_scale_factor == size // 16
    frames = pipe(caption(ClipSpec()), num_inference_steps=2, num_frames=8, height=size, width=size,
                  output_type="np").frames[0]
    assert frames.shape == (8, size, size, 3)


def test_pixel_shuffle_autoencoder_states_its_factor_for_diffusers_pipelines(tmp_path):
    from dreammotion.models.autoencoder import PixelShuffleAutoencoder

    for factor, length in ((1, 1), (2, 2), (4, 3)):  # 2 ** (len - 1) == factor, as pipelines read it
        assert len(PixelShuffleAutoencoder(factor=factor).config.block_out_channels) == length
    PixelShuffleAutoencoder(factor=4).save_pretrained(tmp_path)
    assert PixelShuffleAutoencoder.from_pretrained(tmp_path).config.factor == 4  # a saved config loads back
    with pytest.raises(ValueError, match="states block_out_channels"):
        PixelShuffleAutoencoder(factor=2, block_out_channels=[3, 3, 3])
    with pytest.raises(ValueError, match="power of two"):
        PixelShuffleAutoencoder(factor=3)


def test_compile_cache_round_trip_and_the_trainer_saves_it_once_after_the_first_step(tmp_path, monkeypatch):
    """--compile-cache: torch.compile's artifacts written after the first step and loaded by the next
    run (on the GPU this skips most of a ~235 s compile; bench/prior/NOTES.md)."""
    cache = tmp_path / "compile_cache.bin"
    assert train.load_compile_cache(cache) is None  # no file yet: compile from scratch

    compiled = torch.compile(lambda x: (x.sin() * 2 + 1).sum())
    compiled(torch.randn(8))
    train.save_compile_cache(cache)
    assert cache.stat().st_size > 0
    torch._dynamo.reset()
    loaded = train.load_compile_cache(cache)
    assert loaded and sum(loaded.values()) > 0, loaded

    saved = []
    monkeypatch.setattr(train, "compile_unet", lambda unet, mode: 0)  # the save/load hooks, not the compile
    monkeypatch.setattr(train, "save_compile_cache", lambda path: saved.append(path))
    args = prior_trainer_args(tmp_path, "--device", "cpu", "--compile", "full", "--compile-cache", str(cache))
    trainer = train.PriorTrainer(args, torch.device("cpu"))
    assert trainer.compile_cache_loaded
    for _ in range(2):
        trainer.step(*trainer.batch(), lr=1e-4)
    assert saved == [cache]


@pytest.mark.parametrize("option, value, switch", [
    ("--layout-optimization", "force", "force_layout_optimization"),
    ("--kernel-tuning", "coordinate-descent", "coordinate_descent_tuning"),
])
def test_inductor_options_set_their_switch_per_trainer_and_need_a_compile(tmp_path, monkeypatch, option, value, switch):
    """--layout-optimization force overrides inductor's heuristic (which declines channels-last for the
    UNet's graph), --kernel-tuning coordinate-descent turns on its block-size search; each trainer sets
    the process-wide switch, so a later trainer without the option is not affected."""
    import torch._inductor.config as inductor_config

    monkeypatch.setattr(inductor_config, switch, False)
    monkeypatch.setattr(train, "compile_unet", lambda unet, mode: 0)  # the switch, not the compile
    train.PriorTrainer(prior_trainer_args(tmp_path, "--device", "cpu", "--compile", "full", option, value),
                       torch.device("cpu"))
    assert getattr(inductor_config, switch) is True
    train.PriorTrainer(prior_trainer_args(tmp_path, "--device", "cpu", "--compile", "full"), torch.device("cpu"))
    assert getattr(inductor_config, switch) is False
    with pytest.raises(ValueError, match="needs --compile"):
        train.PriorTrainer(prior_trainer_args(tmp_path, "--device", "cpu", option, value), torch.device("cpu"))


def test_compiled_trainer_renders_its_batches_with_a_compiled_renderer_and_the_same_clips(tmp_path, monkeypatch):
    """--compile also compiles the batch renderer (fused kernels instead of a few dozen full-size ones
    between two steps); the batches it draws are the eager renderer's, pixel for pixel (on a CPU)."""
    from dreammotion.synthetic.render import render_batch_torch

    monkeypatch.setattr(train, "compile_unet", lambda unet, mode: 0)  # the renderer's compile, not the UNet's
    eager = train.PriorTrainer(prior_trainer_args(tmp_path, "--device", "cpu", batch=4), torch.device("cpu"))
    compiled = train.PriorTrainer(prior_trainer_args(tmp_path, "--device", "cpu", "--compile", "blocks", batch=4),
                                  torch.device("cpu"))
    assert eager.render is render_batch_torch and compiled.render is not render_batch_torch
    for _ in range(2):
        (latents, ids), (latents_c, ids_c) = eager.batch(), compiled.batch()
        assert torch.equal(latents, latents_c) and torch.equal(ids, ids_c)


def test_timestep_range_limits_the_sampled_timesteps():
    """--timestep-range 999 999: a one-step second stage trains only for the step it runs."""
    from types import SimpleNamespace

    seen = []

    class Recorder(torch.nn.Module):
        dtype = torch.float32

        def forward(self, inputs, t, encoder_hidden_states):
            seen.append(t.clone())
            return SimpleNamespace(sample=torch.zeros_like(inputs))

    text = lambda ids: (torch.zeros(ids.shape[0], 4, 8),)  # noqa: E731
    alphas = torch.linspace(0.999, 0.01, 1000)
    latents, ids = torch.randn(64, 12, 2, 2, 2), torch.zeros(64, 4, dtype=torch.long)
    train.diffusion_loss(Recorder(), text, alphas, latents, ids, 0.0, timesteps=(999, 999))
    train.diffusion_loss(Recorder(), text, alphas, latents, ids, 0.0, timesteps=(10, 12))
    train.diffusion_loss(Recorder(), text, alphas, latents, ids, 0.0)
    assert seen[0].eq(999).all() and set(seen[1].tolist()) <= {10, 11, 12} and seen[2].unique().numel() > 30
    assert train.check_timestep_range(None, 1000) is None and train.check_timestep_range([999, 999], 1000) == (999, 999)
    with pytest.raises(ValueError, match="--timestep-range 5 1000"):
        train.check_timestep_range([5, 1000], 1000)


def test_throughput_measure_runs_its_whole_path_on_a_tiny_model(monkeypatch):
    """bench/prior/throughput.py's measurement, on a CPU: what a GPU call would find broken (a key, the
    data-path timing, the renderer swap) is found here."""
    from dreammotion.synthetic.render import render_batch_torch

    bench = load_bench_script("prior/throughput.py", "prior_throughput")
    monkeypatch.setattr(train, "compile_unet", lambda unet, mode: 0)  # the bench's path, not the UNet's compile
    renderers = []  # the renderer each batch was drawn with
    draw = train.PriorTrainer.batch

    def recording_batch(trainer):
        renderers.append(trainer.render)
        return draw(trainer)

    monkeypatch.setattr(train.PriorTrainer, "batch", recording_batch)
    eager = bench.measure({"preset": "tiny", "batch": 2}, steps=1, device="cpu")
    assert eager["clips_per_s"] > 0 and eager["data_ms_per_batch"] > 0
    assert "data_ms_per_batch_eager_render" not in eager and set(renderers) == {render_batch_torch}
    renderers.clear()
    compiled = bench.measure({"preset": "tiny", "batch": 2, "compile": "blocks"}, steps=1, device="cpu")
    assert compiled["data_ms_per_batch"] > 0 and compiled["data_ms_per_batch_eager_render"] > 0
    # the compiled variant's steps and first data timing used the compiled renderer, the last the eager one
    swap = renderers.index(render_batch_torch)
    assert swap > 0 and set(renderers[swap:]) == {render_batch_torch}


def test_every_throughput_variant_names_real_training_options():
    """bench/prior/throughput.py's variants are argument overrides of the training loop: a misspelt key
    or a value outside an option's choices fails here, not in a GPU call."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "bench" / "prior" / "throughput.py"
    spec = importlib.util.spec_from_file_location("prior_throughput", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    parser = __import__("argparse").ArgumentParser()
    train.add_arguments(parser)
    actions = {a.dest: a for a in parser._actions}
    assert set(bench.SETTINGS) <= set(actions)
    for name, overrides in bench.VARIANTS:
        for key, value in overrides.items():
            assert key in actions, f"variant {name}: {key} is no option of dreammotion.prior.train"
            choices = actions[key].choices
            assert choices is None or value in choices, f"variant {name}: {key}={value!r} not in {choices}"
