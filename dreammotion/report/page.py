"""Self-contained HTML pages for the Snakemake report.

Snakemake's report shows PNG/JPEG/SVG inline and HTML/PDF in a frame; GIF and mp4 results are only
offered for download. So each row also gets an HTML page with its panel GIF and loss-curve PNG
embedded as data URIs (no external files: the page works inside the single-file report.html and on
its own), and the tables get an HTML rendering of their CSV files.
"""

from __future__ import annotations

import base64
import csv
import html
from pathlib import Path

from dreammotion.errors import InputError
from dreammotion.utils.atomic import write_text

PAGE_STYLE = """
body { font-family: sans-serif; margin: 16px; color: #111; background: #fff; }
h1 { font-size: 18px; margin: 0 0 8px 0; }
h2 { font-size: 15px; margin: 18px 0 6px 0; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; font-size: 13px; }
dt { font-weight: bold; }
img { max-width: 100%; }
img.plot { display: block; margin: 6px 0; }
#panel { image-rendering: pixelated; }  /* crisp enlarged pixels of small clips */
table { border-collapse: collapse; font-size: 12px; }
th, td { border: 1px solid #bbb; padding: 3px 6px; text-align: left; }
th { background: #eee; }
""".strip()


def data_uri(path: str | Path, mime: str) -> str:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"report page: {path} does not exist")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _document(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>\n{PAGE_STYLE}\n</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def metrics_table_html(metrics: dict[str, dict]) -> str:
    """The metrics of one edit (``metrics`` of its metrics JSON: name -> {value, status, reason}) as a
    table: the value where there is one, else its status and why (a missing model stays missing)."""
    rows = []
    for name, entry in metrics.items():
        value = entry.get("value")
        if isinstance(value, float):
            shown = f"{value:.4g}"
        elif value is None:
            shown = entry.get("status", "missing")
        else:
            shown = str(value)
        note = entry.get("reason") or ""
        if entry.get("substitute_for"):
            note = (f"substitute for {entry['substitute_for']}. " + note).strip()
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{html.escape(shown)}</td><td>{html.escape(note)}</td></tr>")
    return (
        "<table id=\"metrics\">\n<thead><tr><th>metric</th><th>value</th><th>note</th></tr></thead>\n<tbody>\n"
        + "\n".join(rows) + "\n</tbody>\n</table>"
    )


def panel_page(
    panel_gif: str | Path,
    loss_png: str | Path,
    title: str,
    details: dict[str, str],
    columns: list[str] | None = None,
    metrics: dict[str, dict] | None = None,
    per_frame_png: str | Path | None = None,
) -> str:
    """HTML of one row: `details` (prompts, method...) as a list, the panel GIF (its `columns` named in the
    heading), the row's metrics (when given), the per-frame plots with the window borders (when given),
    then the loss curves."""
    heading = " | ".join(columns) if columns else "side-by-side panel"
    rows = "\n".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in details.items())
    metrics_section = f"<h2>metrics</h2>\n{metrics_table_html(metrics)}\n" if metrics is not None else ""
    per_frame_section = ""
    if per_frame_png is not None:
        per_frame_section = (
            "<h2>per frame (dashed: window borders of a long clip)</h2>\n"
            f"<img id=\"per-frame\" alt=\"per-frame plots of {html.escape(title)}\" "
            f"src=\"{data_uri(per_frame_png, 'image/png')}\">\n"
        )
    body = (
        f"<h1>{html.escape(title)}</h1>\n<dl>\n{rows}\n</dl>\n"
        f"<h2>{html.escape(heading)}</h2>\n"
        f"<img id=\"panel\" alt=\"side-by-side panel of {html.escape(title)}\" src=\"{data_uri(panel_gif, 'image/gif')}\">\n"
        f"{metrics_section}"
        f"{per_frame_section}"
        "<h2>loss curves</h2>\n"
        f"<img id=\"loss-curves\" alt=\"loss curves of {html.escape(title)}\" src=\"{data_uri(loss_png, 'image/png')}\">\n"
    )
    return _document(title, body)


def csv_table_html(path: str | Path) -> str:
    """One CSV file as an HTML table (cells escaped, shown as written)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"table {path} does not exist")
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise InputError(f"table {path} is empty (no header)")
    header = "".join(f"<th>{html.escape(cell)}</th>" for cell in rows[0])
    body = "\n".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows[1:])
    return f"<table>\n<thead><tr>{header}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def plots_html(pngs: dict[str, bytes], skipped: list[str], what: str = "per-variant means") -> str:
    """The plots (one <img> per metric, embedded as PNG data URIs) and a line naming the metrics left out."""
    images = "\n".join(
        f'<img class="plot" id="plot-{html.escape(name)}" alt="{html.escape(name)}: {html.escape(what)}" '
        f'src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'
        for name, png in pngs.items()
    )
    if not pngs:
        images = "<p>No metric has a value for any variant: nothing to plot.</p>"
    note = ""
    if skipped:
        note = (
            '<p id="skipped-metrics">Not plotted (missing or failed for every variant): '
            + ", ".join(f"<code>{html.escape(n)}</code>" for n in skipped)
            + ".</p>"
        )
    return f"{images}\n{note}".rstrip()


def tables_page(tables: list[str | Path], title: str = "dreammotion tables", plots=None) -> str:
    """HTML with one section per CSV table, headed by its file name; `plots` (report.plots.BenchmarkPlots),
    if given, first: the bar charts of the per-variant means."""
    parts = [f"<h1>{html.escape(title)}</h1>"]
    if plots is not None:
        parts.append("<h2>means per variant (bars: mean, error bars: sample std over the ok edits)</h2>")
        parts.append(plots_html(plots.pngs, plots.skipped))
    parts += [f"<h2>{html.escape(Path(t).name)}</h2>\n{csv_table_html(t)}" for t in tables]
    return _document(title, "\n".join(parts))


def means_table_html(table) -> str:
    """report.plots.VariantsTable as one compact table: a row per variant, 'mean ± std (n=..)' per metric."""
    from dreammotion.tables.aggregate import metric_header
    from dreammotion.tables.formats import format_number

    def cell(s) -> str:
        if s.mean is None:
            return "failed" if s.failed and not s.missing else ("missing" if s.missing else "")
        text = format_number(s.mean) + (f" ± {format_number(s.std)}" if s.std is not None else "")
        extra = [f"n={s.n}"] + [f"{k} {v}" for k, v in (("missing", s.missing), ("failed", s.failed), ("capped", s.capped)) if v]
        return f"{text} ({', '.join(extra)})"

    header = "<th>variant</th>" + "".join(f"<th>{html.escape(metric_header(m))}</th>" for m in table.metrics)
    rows = "\n".join(
        f"<tr><td>{html.escape(v)}</td>" + "".join(f"<td>{html.escape(cell(table.stats[m][v]))}</td>" for m in table.metrics) + "</tr>"
        for v in table.variants
    )
    return f'<table id="means">\n<thead><tr>{header}</tr></thead>\n<tbody>\n{rows}\n</tbody>\n</table>'


def paper_section(csv_path: str | Path, plots) -> str:
    """One paper-form table (table1.csv / table3.csv) in full, with its grouped bar charts (`plots`:
    report.plots.BenchmarkPlots of report.plots.paper_plots) and the legend of its Markdown twin."""
    csv_path = Path(csv_path)
    markdown = csv_path.with_suffix(".md")
    if not markdown.is_file():
        raise InputError(f"paper table {csv_path}: its Markdown twin {markdown} (written with it) does not exist")
    lines = markdown.read_text().splitlines()
    legend = "<ul>\n" + "\n".join(f"<li>{html.escape(line[2:])}</li>" for line in lines if line.startswith("- ")) + "\n</ul>"
    return (
        f'<h2 id="{html.escape(csv_path.stem)}">{html.escape(csv_path.stem)} (the paper\'s form)</h2>\n'
        f"{markdown_tables_html(lines)}\n{legend}\n"
        f"{plots_html(plots.pngs, plots.skipped, 'mean per variant and group of edits')}\n"
        f"<p>Every number of the table: {html.escape(csv_path.name)}.</p>"
    )


def markdown_tables_html(lines: list[str]) -> str:
    """The pipe tables of a Markdown file that dreammotion.tables wrote, as HTML tables (cells escaped)."""
    tables, current = [], []
    for line in lines + [""]:
        if line.startswith("|"):
            current.append([cell.strip().replace("\\|", "|") for cell in line.strip().strip("|").split(" | ")])
        elif current:
            tables.append(current)
            current = []
    parts = []
    for rows in tables:
        body_rows = [r for r in rows[1:] if not all(set(c) <= set(":-") for c in r)]  # drop the alignment row
        header = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
        body = "\n".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in body_rows)
        parts.append(f"<table>\n<thead><tr>{header}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>")
    return "\n".join(parts)


def benchmark_page(tables: list[str | Path], variants_table, plots, title: str = "dreammotion benchmark",
                   paper: list[tuple[str | Path, object]] = ()) -> str:
    """The benchmark: the paper-form tables with their charts (`paper`: (table1.csv path, its plots), ...),
    bar charts of each metric per variant, the means as one compact table, then every CSV table (`tables`)
    in full. `variants_table` and `plots`: report.plots.VariantsTable and BenchmarkPlots."""
    parts = [f"<h1>{html.escape(title)}</h1>"]
    parts += [paper_section(path, paper_plots) for path, paper_plots in paper]
    parts += [
        "<p>Every variant (the method and its ablations) over the whole manifest. Bars: mean over the ok edits "
        "of each variant; error bars: sample std (none with fewer than 2 values). Missing and failed metrics are "
        "counted, never averaged as 0. ↑: higher is better, ↓: lower is better.</p>",
        "<h2>plots</h2>",
        plots_html(plots.pngs, plots.skipped),
        "<h2>means per variant</h2>",
        means_table_html(variants_table),
    ]
    parts += [f"<h2>{html.escape(Path(t).name)}</h2>\n{csv_table_html(t)}" for t in tables]
    return _document(title, "\n".join(parts))


def write_page(text: str, path: str | Path) -> Path:
    write_text(path, text)
    return Path(path)
