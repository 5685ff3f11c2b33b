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
    parser.add_argument(
        "--paper-tables",
        default=None,
        help="also write the paper-form table1.{csv,md,tex} and table3.{csv,md,tex}: the config's `tables` object "
        "as inline JSON or a JSON file ({\"table1\": [variants], \"table3\": [variants], \"kind_groups\": {group: [edit kinds]}})",
    )


def run(args: argparse.Namespace) -> int:
    from dreammotion.tables.aggregate import load_records, write_tables

    records = load_records(args.metrics)
    paths = write_tables(records, args.out_dir)
    if args.paper_tables is not None:
        from dreammotion.tables.paper import paper_settings, write_paper_tables

        paths += write_paper_tables(records, args.out_dir, paper_settings(args.paper_tables))
    for path in paths:
        print(path)
    failed = [r for r in records if r["status"] == "failed"]
    print(f"{len(records)} edit(s), {len(failed)} failed")
    return 0
