"""A table (header + rows of cells) rendered as CSV, GitHub Markdown or a LaTeX booktabs tabular.

CSV and Markdown go through pandas (``DataFrame.to_csv``, ``DataFrame.to_markdown``, which uses
tabulate); the LaTeX tabular is written here: pandas' ``Styler.to_latex`` would need jinja2 and
still not map the cells' ± ↑ ↓ symbols.
"""

from __future__ import annotations

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


def _frame(table: Table, cell=lambda v: v):
    import pandas as pd

    # dtype=object: every cell stays what it is (no int -> float for a column with empty cells)
    return pd.DataFrame([[cell(v) for v in row] for row in table.rows], columns=table.columns, dtype=object)


def to_csv(table: Table) -> str:
    """Numbers at full precision (repr), inf as "inf", empty cells empty."""
    return _frame(table).to_csv(index=False, lineterminator="\n")


def _markdown_cell(value: object) -> str:
    text = format_number(value) if isinstance(value, float) else ("" if value is None else str(value))
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def to_markdown(table: Table) -> str:
    """A GitHub (pipe) table with aligned columns, numbers as `format_number` writes them."""
    frame = _frame(table, _markdown_cell)
    frame.columns = [_markdown_cell(c) for c in table.columns]
    align = ["right" if c in table.numeric else "left" for c in table.columns]
    return frame.to_markdown(index=False, tablefmt="pipe", disable_numparse=True, colalign=align) + "\n"


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
    """Write `stem`.csv/.md/.tex atomically; returns the paths written.

    `comment` goes under the Markdown table and into a comment line of the LaTeX file.
    """
    markdown = lambda t: to_markdown(t) + (f"\n{comment}\n" if comment else "")  # noqa: E731
    renderers = {"csv": to_csv, "md": markdown, "tex": lambda t: to_latex(t, comment)}
    paths = []
    for fmt in formats:
        path = f"{stem}.{fmt}"
        write_text(path, renderers[fmt](table))
        paths.append(path)
    return paths
