"""``dreammotion report-benchmark``: the benchmark tables and bar charts of their per-variant means.

Writes to ``--out-dir``: ``benchmark.html`` (the paper-form Tables 1 and 3 with their grouped bar
charts first, then the plots embedded as data URIs, the means per variant and every ``--tables`` CSV
as HTML: a self-contained page, like the report's other pages) and ``plots/{metric}.png``, one bar
chart per metric that has a value for some variant, and ``plots/table1-{metric}.png`` (table3-...)
per column of the paper-form tables (matplotlib). The
plots folder is replaced whole (complete or absent), the page is written atomically after it.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tables", nargs="+", required=True, type=Path,
                   help="CSV tables shown on the page (results/benchmark/variants.csv, summary.csv, ...)")
    p.add_argument("--variants", type=Path,
                   help="the variants.csv to plot (default: the --tables file named variants.csv)")
    p.add_argument("--metrics", nargs="+", help="plot only these metrics, in this order (default: every metric)")
    p.add_argument("--paper-tables", nargs="+", type=Path, default=[],
                   help="the paper-form table1.csv / table3.csv (dreammotion tables --paper-tables): shown first, with grouped bar charts")
    p.add_argument("--title", default="dreammotion benchmark")
    p.add_argument("--out-dir", required=True, type=Path, help="writes benchmark.html and plots/{metric}.png here")


def variants_csv(args: argparse.Namespace) -> Path:
    from dreammotion.errors import InputError

    if args.variants is not None:
        return args.variants
    named = [t for t in args.tables if t.name == "variants.csv"]
    if not named:
        raise InputError("report-benchmark: no --variants given and no --tables file is named variants.csv")
    return named[0]


def run(args: argparse.Namespace) -> int:
    from dreammotion.report.page import benchmark_page, write_page
    from dreammotion.report.plots import benchmark_plots, paper_plots, plot_file_name, read_paper_csv, read_variants_csv
    from dreammotion.utils.atomic import atomic_dir

    table = read_variants_csv(variants_csv(args))
    plots = benchmark_plots(table, args.metrics)
    paper = [(path, paper_plots(read_paper_csv(path))) for path in args.paper_tables]
    page = benchmark_page(args.tables, table, plots, args.title, paper)  # reads every table before writing anything
    with atomic_dir(args.out_dir / "plots") as tmp:
        for name, png in plots.pngs.items():
            (tmp / plot_file_name(name)).write_bytes(png)
        for _path, paper_pngs in paper:
            for name, png in paper_pngs.pngs.items():
                (tmp / plot_file_name(name)).write_bytes(png)
    write_page(page, args.out_dir / "benchmark.html")
    print(args.out_dir / "benchmark.html")
    if plots.skipped:
        print(f"not plotted (missing for every variant): {', '.join(plots.skipped)}")
    return 0
