"""Markdown tables of the sweep and suite results (pasted into docs/quality.md and the model card).

    .venv/bin/python bench/quality/report.py --sweep bench/quality/sweep.json --suite bench/quality/suite24.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

COLUMNS = (
    ("gt_psnr", "PSNR to GT (dB)", 2),
    ("gt_psnr_inside_mask", "PSNR obj.", 2),
    ("gt_psnr_outside_mask", "PSNR bg.", 2),
    ("gt_ssim", "SSIM to GT", 3),
    ("preserved_psnr", "preserved PSNR vs source", 2),
    ("centroid_error_px", "centroid err. (px)", 2),
)


def cell(summary: dict, digits: int, edits: int | None = None) -> str:
    """mean ± std; notes infinite values and, where fewer edits had a value than `edits`, the count."""
    if summary["n"] == 0:
        return "inf (identical)" if summary["n_infinite"] else "n/a"
    text = f"{summary['mean']:.{digits}f} ± {summary['std']:.{digits}f}"
    if summary["n_infinite"]:
        text += f" (+{summary['n_infinite']} inf)"
    elif edits is not None and summary["n"] < edits:
        text += f" (n={summary['n']})"
    return text


def suite_table(report: dict) -> str:
    header = "| kind | clip | n | " + " | ".join(title for _, title, _ in COLUMNS) + " | runtime (s) |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 4)]
    for kind in ("colour", "shape", "background", "all"):
        if kind not in report["summary"]:
            continue
        for part, label in (("baseline", "unedited source"), ("summary", "DreamMotion edit")):
            row = report[part][kind]
            n = row["edits"] - row["failed"]
            cells = [cell(row[name], digits, n) for name, _, digits in COLUMNS]
            runtime = cell(row["runtime_s"], 0) if "runtime_s" in row else "-"
            lines.append(f"| {kind} | {label} | {n} | " + " | ".join(cells) + f" | {runtime} |")
    return "\n".join(lines)


def sweep_table(report: dict) -> str:
    lines = ["| run | iterations | edit | PSNR to GT (source) | PSNR obj. (source) | PSNR bg. (source) | preserved PSNR | time (s) |",
             "|---|---|---|---|---|---|---|---|"]
    for name, run in report["runs"].items():
        final = run["settings"]["iterations"]
        for count in (str(final // 2), str(final)):
            for row in run["edits"]:
                v, b = row[count]["values"], row["baseline"]["values"]

                def pair(key: str) -> str:
                    return f"{v[key]:.2f} ({b[key]:.2f})" if math.isfinite(b[key]) else f"{v[key]:.2f} (inf)"

                lines.append(f"| {name} | {count} | {row['id']} | {pair('gt_psnr')} | {pair('gt_psnr_inside_mask')} | "
                             f"{pair('gt_psnr_outside_mask')} | {v['preserved_psnr']:.2f} | {row[count]['runtime_s']:.0f} |")
            means = [np.mean([row[count]["values"][k] for row in run["edits"]]) for k in ("gt_psnr", "preserved_psnr")]
            lines.append(f"| {name} | {count} | **mean** | **{means[0]:.2f}** | | | **{means[1]:.2f}** | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", type=Path)
    parser.add_argument("--suite", type=Path)
    args = parser.parse_args()
    if args.sweep:
        print(sweep_table(json.loads(args.sweep.read_text())), end="\n\n")
    if args.suite:
        print(suite_table(json.loads(args.suite.read_text())))


if __name__ == "__main__":
    main()
