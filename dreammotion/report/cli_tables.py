"""``dreammotion report-tables``: the result tables (CSV) as one HTML page for the Snakemake report."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tables", nargs="+", required=True, type=Path, help="CSV tables (results/tables/*.csv)")
    p.add_argument("--title", default="dreammotion tables")
    p.add_argument("--out", required=True, type=Path, help="the HTML page to write")


def run(args: argparse.Namespace) -> int:
    from dreammotion.report.page import tables_page, write_page

    write_page(tables_page(args.tables, args.title), args.out)
    print(args.out)
    return 0
