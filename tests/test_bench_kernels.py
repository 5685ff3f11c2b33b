"""bench/kernels.py: the iteration's attention, matmul and convolution ops recorded and timed per shape (CPU)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCH_DIR = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH_DIR))
import kernels  # noqa: E402
from dreammotion_bench import PRESETS, build_unet, edit_step, make_problem  # noqa: E402

from dreammotion.edit.optimizer import FastPath  # noqa: E402


def test_implicit_gemm_sizes():
    # a padded 3x3 convolution keeps the size: one output position per input pixel, K = channels x 9
    assert kernels.implicit_gemm((2, 4, 8, 8), (16, 4, 3, 3), (1, 1), (1, 1), (1, 1)) == (2 * 64, 36, 16)
    # a temporal (3, 1, 1) convolution with padding (1, 0, 0) over 5 frames; a stride-2 downsampler
    assert kernels.implicit_gemm((1, 8, 5, 4, 6), (8, 8, 3, 1, 1), (1, 1, 1), (1, 0, 0), (1, 1, 1)) == (5 * 24, 24, 8)
    assert kernels.implicit_gemm((1, 4, 8, 8), (4, 4, 3, 3), (2, 2), (1, 1), (1, 1)) == (16, 36, 4)


def test_recorder_counts_every_attention_and_convolution_of_both_passes():
    unet = build_unet(PRESETS["cpu-smoke"], torch.device("cpu"))
    problem = make_problem(unet, 4, PRESETS["cpu-smoke"], torch.device("cpu"))
    # no checkpointing and no temporal chunking: each module then runs once per UNet pass
    with edit_step(problem, FastPath(checkpoint=(), chunk_temporal_attention=False))() as step:
        recorder = kernels.record_iteration(step, problem)
    by_kind = {}
    for key, count in recorder.counts.items():
        by_kind[key[0]] = by_kind.get(key[0], 0) + count
    from diffusers.models.attention_processor import Attention

    attentions = sum(isinstance(m, Attention) for m in unet.modules())
    convolutions = sum(isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d)) for m in unet.modules())
    # the no-grad batch and the with-grad key pass
    assert by_kind["attention"] == 2 * attentions
    assert by_kind["convolution"] == 2 * convolutions
    # the SSM gradient flows back through the layers before the last key layer, not through all
    assert 0 < by_kind["attention_backward"] <= attentions
    assert 0 < by_kind["convolution_backward"] <= convolutions
    assert by_kind["matmul"] > 0 and recorder.other > 0
    # only the input's gradient is asked of a convolution: the weights are frozen
    assert all(key[-1] == (True, False, False) for key in recorder.counts if key[0] == "convolution_backward")


def test_totals_multiply_counts_and_mark_a_failed_choice():
    rows = [
        {"kind": "attention", "count": 3, "seconds": {"flash": {"s": 1.0}, "math": {"s": 2.0}}},
        {"kind": "attention_backward", "count": 2, "seconds": {"flash": {"s": 5.0}, "math": {"error": "OOM"}}},
        {"kind": "matmul", "count": 4, "seconds": {"float16": {"s": 1.0}, "float8": {"s": 0.75},
                                                   "float8_gemm_only": {"s": 0.25}}},
    ]
    t = kernels.totals(rows)
    assert t["attention"]["seconds"] == {"flash": 13.0, "math": None}
    assert t["attention"]["fastest_per_shape"] == 13.0  # flash forward (3) + flash backward (10)
    assert t["matmul"]["seconds"]["float8"] == 3.0
    assert t["matmul"]["fastest_per_shape"] == 3.0  # a bound is not a kernel one could pick
    assert "convolution" not in t


def test_cpu_run_writes_a_report(tmp_path):
    out = tmp_path / "kernels.json"
    run = subprocess.run([sys.executable, str(BENCH_DIR / "kernels.py"), "--preset", "cpu-smoke", "--reps", "1",
                          "--backends", "flash", "math", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["gpu"] == "cpu (no GPU)" and report["ours_s_per_iter"] > 0
    assert set(report["totals"]) == {"attention", "matmul", "convolution"}
    assert report["totals"]["convolution"]["seconds"]["float32"] > 0
    assert set(report["totals"]["attention"]["seconds"]) == {"flash", "math"}
    # no float8 on a CPU: said per shape, not left out silently
    assert all(r["float8_skipped"].startswith("float8 GEMMs") for r in report["shapes"] if r["kind"] == "matmul")
    assert "seconds per iteration by kernel class" in run.stdout


@pytest.mark.skipif(not torch.cuda.is_available(), reason="float8 GEMMs need a CUDA GPU")
def test_float8_gemm_runs_where_supported():
    device = torch.device("cuda")
    if kernels.fp8_supported(device) is not None:
        pytest.skip(kernels.fp8_supported(device))
    assert kernels.time_matmul_fp8(100, 300, 50, device, 1, 2, quantise=True) > 0
