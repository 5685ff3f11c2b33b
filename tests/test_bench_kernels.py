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
    shape = {"batch": 2, "heads": 1, "query_tokens": 4, "key_tokens": 4, "head_size": 8, "dtype": "torch.float16"}
    rows = [
        {"kind": "attention", "count": 3, "ran": "flash", **shape, "seconds": {"flash": {"s": 1.0}, "math": {"s": 2.0}}},
        {"kind": "attention_backward", "count": 2, "ran": "flash", **shape,
         "seconds": {"flash": {"s": 5.0}, "math": {"error": "OOM"}}},
        {"kind": "matmul", "count": 4, "dtype": "torch.float16",
         "seconds": {"float16": {"s": 1.0}, "float8": {"s": 0.75}, "float8_gemm_only": {"s": 0.25}}},
        {"kind": "convolution_other", "count": 2, "seconds": {}},
    ]
    t = kernels.totals(rows)
    assert t["attention"]["seconds"] == {"flash": 13.0, "math": None}
    assert t["attention"]["fastest_per_shape"] == t["attention"]["as_run"] == 13.0  # flash: 3 x 1 + 2 x 5
    assert t["matmul"]["seconds"]["float8"] == 3.0 and t["matmul"]["as_run"] == 4.0
    assert t["matmul"]["fastest_per_shape"] == 3.0  # a bound is not a kernel one could pick
    assert t["untimed"] == {"ops": 2, "kinds": ["convolution_other"]} and "convolution" not in t


def test_an_attention_shape_takes_one_backend_for_its_forward_and_backward():
    shape = {"batch": 2, "heads": 1, "query_tokens": 4, "key_tokens": 4, "head_size": 8, "dtype": "torch.float16"}
    rows = [{"kind": "attention", "count": 1, "ran": "flash", **shape,
             "seconds": {"flash": {"s": 1.0}, "efficient": {"s": 2.0}}},
            {"kind": "attention_backward", "count": 1, "ran": "flash", **shape,
             "seconds": {"flash": {"s": 5.0}, "efficient": {"s": 1.0}}}]
    # efficient forward and backward (3.0), not flash's forward with efficient's backward (2.0)
    assert kernels.totals(rows)["attention"]["fastest_per_shape"] == 3.0


def test_cpu_run_writes_a_report(tmp_path):
    out = tmp_path / "kernels.json"
    run = subprocess.run([sys.executable, str(BENCH_DIR / "kernels.py"), "--preset", "cpu-smoke", "--reps", "1",
                          "--backends", "flash", "math", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["gpu"] == "cpu (no GPU)" and report["ours_s_per_iter"] > 0
    assert set(report["totals"]) == {"attention", "matmul", "bmm", "convolution"}
    assert report["totals"]["convolution"]["seconds"]["float32"] > 0
    assert set(report["totals"]["attention"]["seconds"]) == {"flash", "math"}
    # the CPU runs its flash kernel; every recorded op is timed, batched matmuls included
    assert report["totals"]["attention"]["as_run"] == report["totals"]["attention"]["seconds"]["flash"]
    assert report["totals"]["bmm"]["as_run"] > 0 and "untimed" not in report["totals"]
    # no float8 on a CPU: said per shape, not left out silently
    assert all(r["float8_skipped"].startswith("float8 GEMMs") for r in report["shapes"] if r["kind"] == "matmul")
    assert "seconds per iteration by kernel class" in run.stdout


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_attention_kernels_by_length_run_memory_efficient_attention_on_short_sequences():
    from diffusers.models.attention_processor import Attention

    from dreammotion.edit.hooks import SHORT_SEQUENCE_TOKENS, _KernelByLengthProcessor

    attn = Attention(query_dim=128, heads=2, dim_head=64).cuda().half()
    wrapped = _KernelByLengthProcessor(attn.processor, SHORT_SEQUENCE_TOKENS)
    for tokens, expected in ((24, "efficient"), (1024, "flash")):
        recorder = kernels.OpRecorder()
        with recorder, torch.no_grad():
            wrapped(attn, torch.randn(4, tokens, 128, device="cuda", dtype=torch.float16))
        ran = {key[-1] for key in recorder.counts if key[0] == "attention"}
        assert ran == {expected}, (tokens, ran)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="float8 GEMMs need a CUDA GPU")
def test_float8_gemm_runs_where_supported():
    device = torch.device("cuda")
    if kernels.fp8_supported(device) is not None:
        pytest.skip(kernels.fp8_supported(device))
    assert kernels.time_matmul_fp8(100, 300, 50, device, 1, 2, quantise=True) > 0
