"""``dreammotion report-tables``: the result tables (CSV) as one HTML page for the Snakemake report."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tables", nargs="+", required=True, type=Path, help="CSV tables (results/tables/*.csv)")
    p.add_argument("--title", default="dreammotion tables")
    p.add_argument("--plot-variants", type=Path, metavar="VARIANTS_CSV",
                   help="also show bar charts of this variants.csv's per-variant means (matplotlib), above the tables")
    p.add_argument("--out", required=True, type=Path, help="the HTML page to write")


def run(args: argparse.Namespace) -> int:
    from dreammotion.report.page import tables_page, write_page

    plots = None
    if args.plot_variants is not None:
        from dreammotion.report.plots import benchmark_plots, read_variants_csv

        plots = benchmark_plots(read_variants_csv(args.plot_variants))
    write_page(tables_page(args.tables, args.title, plots), args.out)
    print(args.out)
    return 0
