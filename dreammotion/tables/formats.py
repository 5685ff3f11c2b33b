"""A table (header + rows of cells) rendered as CSV, GitHub Markdown or a LaTeX booktabs tabular."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field

from dreammotion.utils.atomic import write_text


@dataclass
class Table:
    columns: list[str]
    rows: list[list[object]] = field(default_factory=list)
    numeric: set[str] = field(default_factory=set)  # columns right-aligned in LaTeX

    def add(self, row: list[object]) -> None:
        if len(row) != len(self.columns):
            raise ValueError(f"row has {len(row)} cells, the table {len(self.columns)} columns")
        self.rows.append(row)


def format_number(value: float | None, digits: int = 4) -> str:
    """Compact human-readable number: 4 significant digits, whole numbers for values >= 1000."""
    if value is None:
        return ""
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if abs(value) >= 1000:
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


def _csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else ("-inf" if value < 0 else "nan"))
    return str(value)


def to_csv(table: Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow([_csv_cell(v) for v in row])
    return buffer.getvalue()


def _markdown_cell(value: object) -> str:
    text = format_number(value) if isinstance(value, float) else ("" if value is None else str(value))
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def to_markdown(table: Table) -> str:
    lines = ["| " + " | ".join(_markdown_cell(c) for c in table.columns) + " |"]
    lines.append("|" + "|".join("---:" if c in table.numeric else "---" for c in table.columns) + "|")
    for row in table.rows:
        lines.append("| " + " | ".join(_markdown_cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
# Symbols our cells use, mapped to LaTeX after escaping (they are not LaTeX specials themselves).
_LATEX_SYMBOLS = {"±": r"$\pm$", "↑": r"$\uparrow$", "↓": r"$\downarrow$", "—": "---"}


def latex_escape(text: str) -> str:
    escaped = "".join(_LATEX_SPECIALS.get(ch, ch) for ch in text)
    for symbol, latex in _LATEX_SYMBOLS.items():
        escaped = escaped.replace(symbol, latex)
    return escaped


def to_latex(table: Table, caption_comment: str = "") -> str:
    """A booktabs tabular (needs \\usepackage{booktabs}); every cell is escaped."""
    spec = "".join("r" if c in table.numeric else "l" for c in table.columns)
    cell = lambda v: latex_escape(format_number(v) if isinstance(v, float) else ("" if v is None else str(v)))  # noqa: E731
    lines = []
    if caption_comment:
        lines.append(f"% {caption_comment}")
    lines += [
        "% requires \\usepackage{booktabs}",
        f"\\begin{{tabular}}{{{spec}}}",
        "\\toprule",
        " & ".join(cell(c) for c in table.columns) + " \\\\",
        "\\midrule",
    ]
    lines += [" & ".join(cell(v) for v in row) + " \\\\" for row in table.rows]
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


def write_table(table: Table, stem, formats: tuple[str, ...] = ("csv", "md", "tex"), comment: str = "") -> list[str]:
    """Write `stem`.csv/.md/.tex atomically; returns the paths written."""
    renderers = {"csv": to_csv, "md": to_markdown, "tex": lambda t: to_latex(t, comment)}
    paths = []
    for fmt in formats:
        path = f"{stem}.{fmt}"
        write_text(path, renderers[fmt](table))
        paths.append(path)
    return paths
