"""``python -m dreammotion tables``: summary, per-edit and per-variant tables from metrics records."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics",
        nargs="+",
        required=True,
        help="per-edit metrics JSON files (results/metrics/{variant}/{id}.json) and failed-edit markers",
    )
    parser.add_argument("--out-dir", required=True, help="folder for summary.{csv,md}, summary_settings.csv, edits.{csv,md,tex}, variants.{csv,md,tex}")


def run(args: argparse.Namespace) -> int:
    from dreammotion.tables.aggregate import load_records, write_tables

    records = load_records(args.metrics)
    for path in write_tables(records, args.out_dir):
        print(path)
    failed = [r for r in records if r["status"] == "failed"]
    print(f"{len(records)} edit(s), {len(failed)} failed")
    return 0
