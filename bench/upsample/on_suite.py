"""The cascade against Lanczos on a workflow run's edits, from its metrics records.

    python bench/upsample/on_suite.py results/suite7-run --out bench/upsample/on_suite7.json

Reads every ``metrics/<variant>/<id>.json`` of the run (the workflow's own ``upsampled_gt_*`` and
``lanczos_gt_*``: the upsampled edit and the same edit resized by Lanczos, each against the true edit
at the upsampled size; after interpolate+sr the Lanczos baseline is the interpolated clip resized) and
writes them per edit, with their means, the mean gain and on how many edits the cascade is ahead.
A record whose upsampled metrics are not numbers is listed with its status and left out of the means.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from dreammotion.utils.atomic import write_json

PAIRS = (("upsampled_gt_psnr", "lanczos_gt_psnr"), ("upsampled_gt_ssim", "lanczos_gt_ssim"))


def value(metric) -> float | None:
    return metric.get("value") if isinstance(metric, dict) and metric.get("status") == "ok" else None


def summarise(run: Path) -> dict:
    records = sorted(run.glob("metrics/*/*.json"))
    if not records:
        raise SystemExit(f"{run}: no metrics/<variant>/<id>.json records (run the workflow first)")
    edits, skipped = [], []
    for path in records:
        metrics = json.loads(path.read_text())["metrics"]
        row = {"variant": path.parent.name, "id": path.stem, "edit_gt_psnr": value(metrics.get("gt_psnr"))}
        for ours, baseline in PAIRS:
            row[ours], row[baseline] = value(metrics.get(ours)), value(metrics.get(baseline))
        if any(row[name] is None for pair in PAIRS for name in pair):
            skipped.append({"variant": row["variant"], "id": row["id"],
                            "status": {name: (metrics.get(name) or {}).get("status") for pair in PAIRS for name in pair}})
            continue
        edits.append(row)
    summary = {"edits": len(edits)}
    for ours, baseline in PAIRS:
        a, b = np.array([e[ours] for e in edits]), np.array([e[baseline] for e in edits])
        summary[ours], summary[baseline] = round(float(a.mean()), 4), round(float(b.mean()), 4)
        summary[f"{ours}_minus_{baseline}"] = round(float((a - b).mean()), 4)
        summary[f"edits_where_{ours}_is_higher"] = int((a > b).sum())
    return {"run": str(run), "summary": summary, "edits": edits, "skipped": skipped}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the workflow's results folder (config key results)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    report = {"command": "python bench/upsample/on_suite.py " + " ".join(sys.argv[1:] if argv is None else argv),
              **summarise(args.run)}
    write_json(args.out, report)
    print(json.dumps(report["summary"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
