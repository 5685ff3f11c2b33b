"""Tables of the per-edit metrics records (``results/metrics/{variant}/{id}.json``).

Written to the output folder:

- ``summary.csv`` / ``summary.md``: one row per edit (id, variant, status, error, prompts, settings,
  runtime, peak memory, final losses, metrics); the Markdown also lists the failed edits with their
  error and every missing/failed metric with its reason.
- ``edits.csv|md|tex``: one row per (edit, variant) with the metric values.
- ``variants.csv|md|tex``: one row per method variant, each metric as mean ± sample std (ddof=1)
  over the edits where it is "ok". Missing and failed metrics are excluded from the mean and counted
  (``n``, ``missing``, ``failed``); they are never averaged as 0. The CSV has separate numeric
  columns (``{metric}_mean``, ``_std``, ``_n``, ``_missing``, ``_failed``).

A metric an edit does not have at all (e.g. ground-truth metrics of a real video) is left empty
and not counted: it does not apply to that edit.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dreammotion.errors import InputError
from dreammotion.metrics.names import METRICS, metric_order
from dreammotion.metrics.record import validate_record
from dreammotion.tables.formats import Table, format_number, write_table


# -- loading --------------------------------------------------------------------------------------


def load_record(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"metrics record {path} does not exist")
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"metrics record {path} is not valid JSON: {err}") from None
    if not isinstance(record, dict):
        raise InputError(f"metrics record {path} must hold a JSON object")
    record = validate_record(record, str(path))
    record.setdefault("metrics", {})
    record["_source"] = str(path)
    return record


def load_records(paths) -> list[dict]:
    """Records of every file; two files for the same (id, variant) are an error naming both."""
    records, seen = [], {}
    for path in paths:
        record = load_record(path)
        key = (record["id"], record["variant"])
        if key in seen:
            raise InputError(f"metrics records {seen[key]} and {path} are both for edit {key[0]!r}, variant {key[1]!r}")
        seen[key] = str(path)
        records.append(record)
    if not records:
        raise InputError("no metrics records given (--metrics)")
    return records


def variants_in_order(records: list[dict]) -> list[str]:
    """Variants in the order they first appear (the order the workflow lists them)."""
    return list(dict.fromkeys(r["variant"] for r in records))


def metric_names(records: list[dict]) -> list[str]:
    return metric_order({name for r in records for name in r["metrics"]})


# -- per-edit cells -------------------------------------------------------------------------------


def metric_cell(record: dict, name: str) -> object:
    """The value of an ok metric, "missing" / "failed" otherwise, None if the edit has no such metric."""
    result = record["metrics"].get(name)
    if result is None:
        return None
    return float(result["value"]) if result["status"] == "ok" else result["status"]


def metric_header(name: str) -> str:
    info = METRICS.get(name)
    arrow = "" if info is None or info.higher_is_better is None else (" ↑" if info.higher_is_better else " ↓")
    return name + arrow


# -- aggregation ----------------------------------------------------------------------------------


@dataclass
class MetricStats:
    mean: float | None
    std: float | None  # sample std (ddof=1); None with fewer than 2 values
    n: int  # edits where the metric is ok
    missing: int
    failed: int

    def display(self) -> str:
        counts = [f"n={self.n}"]
        if self.missing:
            counts.append(f"{self.missing} missing")
        if self.failed:
            counts.append(f"{self.failed} failed")
        if self.n == 0:
            head = "missing" if self.missing else "failed"
        elif self.std is None:
            head = format_number(self.mean)
        else:
            head = f"{format_number(self.mean)} ± {format_number(self.std)}"
        return f"{head} ({', '.join(counts)})"


def metric_stats(records: list[dict], name: str) -> MetricStats:
    """Mean and std of one metric over the (successful) edits given; missing/failed counted, not averaged."""
    results = [r["metrics"][name] for r in records if r["status"] == "ok" and name in r["metrics"]]
    values = [float(x["value"]) for x in results if x["status"] == "ok"]
    mean = float(np.mean(values)) if values else None
    std = float(np.std(values, ddof=1)) if len(values) >= 2 else None
    if std is not None and math.isnan(std):  # inf values: the spread is undefined
        std = None
    return MetricStats(
        mean=mean,
        std=std,
        n=len(values),
        missing=sum(x["status"] == "missing" for x in results),
        failed=sum(x["status"] == "failed" for x in results),
    )


def aggregate_by_variant(records: list[dict]) -> dict[str, dict[str, MetricStats]]:
    """{variant: {metric: MetricStats}} over the edits of each variant."""
    names = metric_names(records)
    return {
        variant: {name: metric_stats([r for r in records if r["variant"] == variant], name) for name in names}
        for variant in variants_in_order(records)
    }


# -- tables ---------------------------------------------------------------------------------------


def _sorted_records(records: list[dict]) -> list[dict]:
    order = {v: i for i, v in enumerate(variants_in_order(records))}
    return sorted(records, key=lambda r: (r["id"], order[r["variant"]]))


def edits_table(records: list[dict]) -> Table:
    names = metric_names(records)
    table = Table(["id", "variant", "status"] + [metric_header(n) for n in names])
    table.numeric = set(table.columns[3:])
    for r in _sorted_records(records):
        table.add([r["id"], r["variant"], r["status"]] + [metric_cell(r, n) for n in names])
    return table


def variants_tables(records: list[dict]) -> tuple[Table, Table]:
    """(numeric table for CSV, display table with 'mean ± std (n=..)' cells for Markdown/LaTeX)."""
    names = metric_names(records)
    stats = aggregate_by_variant(records)
    numeric = Table(["variant", "edits", "failed_edits"] + [f"{n}_{s}" for n in names for s in ("mean", "std", "n", "missing", "failed")])
    display = Table(["variant", "edits", "failed edits"] + [metric_header(n) for n in names])
    display.numeric = set(display.columns[1:])
    for variant, per_metric in stats.items():
        of_variant = [r for r in records if r["variant"] == variant]
        ok_edits = sum(r["status"] == "ok" for r in of_variant)
        failed_edits = len(of_variant) - ok_edits
        row = [variant, ok_edits, failed_edits]
        for name in names:
            s = per_metric[name]
            row += [s.mean, s.std, s.n, s.missing, s.failed]
        numeric.add(row)
        display.add([variant, ok_edits, failed_edits] + [per_metric[n].display() for n in names])
    return numeric, display


def _flat(value: object) -> object:
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return value
    return float(value) if isinstance(value, float) else value


COST_COLUMNS = ("runtime_s", "peak_memory_mib")


def _cost_cell(record: dict, key: str) -> object:
    # The cost metrics (ok / missing) when the record has them, else the raw edit.json number.
    return metric_cell(record, key) if key in record["metrics"] else _flat(record.get(key))


def summary_table(records: list[dict]) -> Table:
    names = [n for n in metric_names(records) if n not in COST_COLUMNS]
    setting_keys = sorted({k for r in records for k in (r.get("settings") or {})})
    loss_keys = sorted({k for r in records for k in (r.get("final_losses") or {})})
    columns = ["id", "variant", "status", "error", "source_prompt", "target_prompt"]
    columns += [f"settings.{k}" for k in setting_keys]
    columns += list(COST_COLUMNS)
    columns += [f"final_losses.{k}" for k in loss_keys]
    columns += names
    table = Table(columns)
    table.numeric = {*COST_COLUMNS, *names}
    for r in _sorted_records(records):
        settings, losses = r.get("settings") or {}, r.get("final_losses") or {}
        row = [r["id"], r["variant"], r["status"], r.get("error"), r.get("source_prompt"), r.get("target_prompt")]
        row += [_flat(settings.get(k)) for k in setting_keys]
        row += [_cost_cell(r, key) for key in COST_COLUMNS]
        row += [_flat(losses.get(k)) for k in loss_keys]
        row += [metric_cell(r, n) for n in names]
        table.add(row)
    return table


def summary_markdown(records: list[dict]) -> str:
    from dreammotion.tables.formats import to_markdown

    parts = ["# Summary of edits", "", to_markdown(summary_table(records))]
    failed_edits = [r for r in _sorted_records(records) if r["status"] == "failed"]
    parts += ["## Failed edits", ""]
    if failed_edits:
        failures = Table(["id", "variant", "error", "record"])
        for r in failed_edits:
            failures.add([r["id"], r["variant"], r["error"], r["_source"]])
        parts.append(to_markdown(failures))
    else:
        parts.append("None.\n")
    unavailable = Table(["id", "variant", "metric", "status", "reason"])
    for r in _sorted_records(records):
        for name in metric_order(r["metrics"]):
            result = r["metrics"][name]
            if result["status"] != "ok":
                unavailable.add([r["id"], r["variant"], name, result["status"], result.get("reason")])
    parts += ["## Missing and failed metrics", ""]
    parts.append(to_markdown(unavailable) if unavailable.rows else "None.\n")
    return "\n".join(parts)


def write_tables(records: list[dict], out_dir: str | Path) -> list[str]:
    """Write summary.{csv,md}, edits.{csv,md,tex} and variants.{csv,md,tex}; returns the paths."""
    from dreammotion.tables.formats import to_csv
    from dreammotion.utils.atomic import write_text

    out_dir = Path(out_dir)
    paths = []
    write_text(out_dir / "summary.csv", to_csv(summary_table(records)))
    write_text(out_dir / "summary.md", summary_markdown(records))
    paths += [str(out_dir / "summary.csv"), str(out_dir / "summary.md")]
    paths += write_table(edits_table(records), out_dir / "edits", comment="one row per (edit, variant)")
    numeric, display = variants_tables(records)
    paths += write_table(numeric, out_dir / "variants", formats=("csv",))
    paths += write_table(
        display, out_dir / "variants", formats=("md", "tex"), comment="mean ± sample std over edits; missing/failed excluded and counted"
    )
    return paths
