"""The fused frame attention (dreammotion.models.frame_attention): its Triton kernels checked by
Triton's interpreter on the CPU (tests/frame_attention_interpreted.py, in a subprocess), and what it
refuses."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from conftest import REPO, load_bench_script, prior_trainer_args
from dreammotion.models.attention import FusedFrameAttnProcessor, set_spatial_self_attention, set_temporal_attention
from dreammotion.models.frame_attention import frame_attention
from dreammotion.prior import train


def test_kernels_under_the_triton_interpreter():
    """TRITON_INTERPRET must be set before triton builds the kernels, hence the subprocess."""
    path = [str(REPO), str(REPO / "tests"), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": os.pathsep.join(path)}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(REPO / "tests" / "frame_attention_interpreted.py")],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "skipped" not in run.stdout, run.stdout[-2000:]


@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"), reason="interpreter allows CPU tensors")
def test_cpu_tensors_are_refused_with_a_pointer_to_the_cpu_kinds():
    q = torch.randn(2, 8, 32)
    with pytest.raises(RuntimeError, match="needs CUDA tensors.*'math' or 'broadcast'"):
        frame_attention(q, q, q, 2, 0.25)


def test_shapes_it_does_not_compute_are_refused():
    q = torch.randn(2, 8, 32)
    with pytest.raises(ValueError, match="one shape"):
        frame_attention(q, q[:, :4], q, 2, 0.25)
    with pytest.raises(ValueError, match="do not split into 3 heads"):
        frame_attention(q, q, q, 3, 0.25)
    with pytest.raises(ValueError, match="power-of-two head size"):
        frame_attention(torch.randn(2, 8, 24), torch.randn(2, 8, 24), torch.randn(2, 8, 24), 2, 0.25)
    with pytest.raises(ValueError, match="one dtype on one device"):
        frame_attention(q, q.double(), q, 2, 0.25)


def test_processors_refuse_query_key_normalisation():
    from diffusers.models.attention_processor import Attention

    attn = Attention(query_dim=16, heads=2, dim_head=8, qk_norm="layer_norm", processor=FusedFrameAttnProcessor())
    with pytest.raises(ValueError, match="qk_norm"):
        attn(torch.randn(3, 8, 16))


def test_fused_kind_sets_the_processor_and_training_refuses_it_off_cuda(tmp_path):
    unet, *_ = train.build_model(32, preset="tiny", seed=0)
    assert set_temporal_attention(unet, "fused") > 0
    assert isinstance(unet.attn_processors["transformer_in.transformer_blocks.0.attn1.processor"],
                      FusedFrameAttnProcessor)
    args = prior_trainer_args(tmp_path, "--device", "cpu", "--temporal-attention", "fused")
    with pytest.raises(ValueError, match="--temporal-attention fused runs a Triton kernel for CUDA"):
        train.PriorTrainer(args, torch.device("cpu"))
    args = prior_trainer_args(tmp_path, "--device", "cpu", "--fused-spatial-levels", "2")
    with pytest.raises(ValueError, match="--fused-spatial-levels runs a Triton kernel for CUDA"):
        train.PriorTrainer(args, torch.device("cpu"))


def test_fused_spatial_levels_set_only_those_levels_self_attention(tmp_path):
    """--fused-spatial-levels 2: the self-attention (attn1) of the 4x4 level's spatial transformers
    (down block 2, the mid block, up block 0) gets the fused kernel; the 8x8 level, the
    cross-attention and the temporal attention keep theirs. A level without one is refused."""
    unet, *_ = train.build_model(32, preset="tiny", seed=0)
    # the tiny preset: one transformer per down block, two per up block, one in the mid block
    assert set_spatial_self_attention(unet, "fused", (2,)) == 1 + 1 + 2  # down block 2, mid block, up block 0
    fused = {name.split(".attentions")[0] for name, processor in unet.attn_processors.items()
             if isinstance(processor, FusedFrameAttnProcessor)}
    assert fused == {"down_blocks.2", "mid_block", "up_blocks.0"}
    assert all(".attn1." in name for name, processor in unet.attn_processors.items()
               if isinstance(processor, FusedFrameAttnProcessor))
    assert set_spatial_self_attention(unet, "fused", (1, 2)) == 4 + (1 + 2)  # and down block 1, up block 1
    with pytest.raises(ValueError, match=r"level\(s\) \[0\] have no spatial self-attention; levels with one: \[1, 2\]"):
        set_spatial_self_attention(unet, "fused", (0, 1))
    parser = __import__("argparse").ArgumentParser()
    train.add_arguments(parser)
    assert parser.parse_args(["--out", "m", "--fused-spatial-levels", "1,2"]).fused_spatial_levels == (1, 2)
    assert parser.parse_args(["--out", "m"]).fused_spatial_levels == ()
    with pytest.raises(SystemExit):
        parser.parse_args(["--out", "m", "--fused-spatial-levels", "low"])


def test_benchmark_cores_compute_attention_at_the_spatial_layers_shapes():
    """bench/prior/frame_attention.py's eager cores (math and, for the spatial layers, sdpa) equal its
    fp32 reference, at every layer's sequence length: the ms they time are of the right arithmetic."""
    bench = load_bench_script("prior/frame_attention.py", "bench_frame_attention")
    shapes = bench.layer_shapes(batch=2)
    assert [(name, length, heads) for name, _, length, heads, _ in shapes] == [
        ("transformer_in", 8, 8), ("temporal level 1", 8, 3), ("temporal level 2", 8, 4),
        ("spatial level 2", 16, 4), ("spatial level 1", 64, 3)]
    generator = torch.Generator().manual_seed(0)
    for _, _, length, heads, size in shapes:
        q, k, v = (torch.randn(3, length, heads * size, generator=generator) for _ in range(3))
        expected = bench.reference(q, k, v, heads, size ** -0.5)
        for core in (bench.math_core, bench.sdpa_core):
            torch.testing.assert_close(core(q, k, v, heads, size ** -0.5), expected, rtol=1e-4, atol=1e-5)


def test_benchmark_picks_the_fastest_setting_at_the_largest_temporal_layer():
    bench = load_bench_script("prior/frame_attention.py", "bench_frame_attention")
    timing = lambda ms: {"forward_backward_ms": ms}
    layers = {"small": {"sequences": 10, "heads": 2, "math": timing(0.1), "fused_4096x4": timing(0.5),
                        "fused_8192x8": timing(2.0)},
              "large": {"sequences": 1000, "heads": 8, "math": timing(0.1), "fused_4096x4": timing(9.0),
                        "fused_8192x8": timing(3.0)}}
    assert bench.fastest_fused_config(layers) == "8192x8"
    # a spatial layer, however large, is timed at that setting, not chosen from
    layers["spatial level 1"] = {"sequences": 10 ** 6, "heads": 8, "fused_4096x4": timing(1.0)}
    assert bench.fastest_fused_config(layers) == "8192x8"


def test_kernel_settings_round_trip_and_refuse_malformed_ones():
    from dreammotion.models import frame_attention as fa

    shipped = fa.kernel_setting()
    assert shipped == f"{fa.TILE_VALUES}x{fa.NUM_WARPS}"
    try:
        fa.use_kernel_setting("16384x8")
        assert (fa.TILE_VALUES, fa.NUM_WARPS, fa.kernel_setting()) == (16384, 8, "16384x8")
        with pytest.raises(ValueError, match="expected TILExWARPS"):
            fa.use_kernel_setting("16384")
    finally:
        fa.use_kernel_setting(shipped)
