"""bench/upsample/on_suite.py: the cascade against Lanczos, read from a workflow run's metrics records."""

import json
from pathlib import Path

import pytest
from conftest import load_bench_script


@pytest.fixture(scope="module")
def on_suite():
    return load_bench_script("upsample/on_suite.py", "on_suite_bench")


def write_record(run: Path, edit_id: str, **values):
    metrics = {name: ({"status": "ok", "value": v} if v is not None else {"status": "missing", "reason": "no truth"})
               for name, v in values.items()}
    path = run / "metrics" / "dreammotion" / f"{edit_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"metrics": metrics}))


def test_gain_counts_and_missing_records(on_suite, tmp_path):
    write_record(tmp_path, "a", gt_psnr=30.0, upsampled_gt_psnr=28.0, lanczos_gt_psnr=27.0,
                 upsampled_gt_ssim=0.9, lanczos_gt_ssim=0.8)
    write_record(tmp_path, "b", gt_psnr=30.0, upsampled_gt_psnr=25.0, lanczos_gt_psnr=26.0,
                 upsampled_gt_ssim=0.7, lanczos_gt_ssim=0.7)
    write_record(tmp_path, "c", gt_psnr=30.0, upsampled_gt_psnr=None, lanczos_gt_psnr=None,
                 upsampled_gt_ssim=None, lanczos_gt_ssim=None)
    report = on_suite.summarise(tmp_path)
    summary = report["summary"]
    assert summary["edits"] == 2 and [s["id"] for s in report["skipped"]] == ["c"]
    assert summary["upsampled_gt_psnr_minus_lanczos_gt_psnr"] == 0.0  # +1 and -1
    assert summary["edits_where_upsampled_gt_psnr_is_higher"] == 1
    assert summary["edits_where_upsampled_gt_ssim_is_higher"] == 1  # a tie is not ahead
    assert report["skipped"][0]["status"]["upsampled_gt_psnr"] == "missing"
    with pytest.raises(SystemExit, match="no metrics"):
        on_suite.summarise(tmp_path / "empty")
