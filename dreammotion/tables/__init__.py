"""Summary, per-edit and per-variant (benchmark/ablation) tables of the per-edit metrics records."""

from dreammotion.tables.aggregate import (
    MetricStats,
    aggregate_by_variant,
    edits_table,
    load_record,
    load_records,
    metric_stats,
    summary_table,
    variants_tables,
    write_tables,
)
from dreammotion.tables.formats import Table, latex_escape, to_csv, to_latex, to_markdown

__all__ = [
    "MetricStats",
    "aggregate_by_variant",
    "edits_table",
    "load_record",
    "load_records",
    "metric_stats",
    "summary_table",
    "variants_tables",
    "write_tables",
    "Table",
    "latex_escape",
    "to_csv",
    "to_latex",
    "to_markdown",
]
