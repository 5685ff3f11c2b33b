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
) -> str:
    """HTML of one row: `details` (prompts, method...) as a list, the panel GIF (its `columns` named in the
    heading), the row's metrics (when given), then the loss curves."""
    heading = " | ".join(columns) if columns else "side-by-side panel"
    rows = "\n".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in details.items())
    metrics_section = f"<h2>metrics</h2>\n{metrics_table_html(metrics)}\n" if metrics is not None else ""
    body = (
        f"<h1>{html.escape(title)}</h1>\n<dl>\n{rows}\n</dl>\n"
        f"<h2>{html.escape(heading)}</h2>\n"
        f"<img id=\"panel\" alt=\"side-by-side panel of {html.escape(title)}\" src=\"{data_uri(panel_gif, 'image/gif')}\">\n"
        f"{metrics_section}"
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


def tables_page(tables: list[str | Path], title: str = "dreammotion tables") -> str:
    """HTML with one section per CSV table, headed by its file name."""
    sections = "\n".join(f"<h2>{html.escape(Path(t).name)}</h2>\n{csv_table_html(t)}" for t in tables)
    return _document(title, f"<h1>{html.escape(title)}</h1>\n{sections}")


def write_page(text: str, path: str | Path) -> Path:
    write_text(path, text)
    return Path(path)
