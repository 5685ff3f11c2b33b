"""Tables of the per-edit metrics records (``results/metrics/{variant}/{id}.json``).

Written to the output folder:

- ``summary.md``: for a person. First one compact row per edit (id, variant, status, the headline
  metrics, runtime) and the per-variant means of those columns; then the settings (which ones
  differ between edits, which are the same for all), the failed edits with their error, and every
  missing/failed metric with its reason.
- ``summary.csv``: one row per edit with everything but the settings (id, variant, status, error,
  prompts, runtime, peak memory, final losses, every metric).
- ``summary_settings.csv``: one row per edit with its edit settings (one column per setting).
- ``edits.csv|md|tex``: one row per (edit, variant) with the metric values.
- ``variants.csv|md|tex``: one row per method variant, each metric as mean ± sample std (ddof=1)
  over the edits where it is "ok". Missing and failed metrics are excluded from the mean and counted
  (``n``, ``missing``, ``failed``); they are never averaged as 0. The CSV has separate numeric
  columns (``{metric}_mean``, ``_std``, ``_n``, ``_missing``, ``_failed``, and for PSNR ``_capped``).

PSNR is infinite for a frame identical to the ground truth. In means (and stds) an infinite PSNR
counts as ``PSNR_CAP_DB`` (100 dB) and is counted as capped; the tables say so in a footnote.
Per-edit cells keep the value as measured (``inf``).

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
from dreammotion.records import DEFAULT_METHOD, read_json_object
from dreammotion.tables.formats import Table, format_number, write_table
from dreammotion.utils.stats import sample_std


# -- loading --------------------------------------------------------------------------------------


def load_record(path: str | Path) -> dict:
    record = validate_record(read_json_object(path, "metrics record"), str(path))
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


PSNR_CAP_DB = 100.0  # an infinite PSNR (frame identical to the ground truth) counts as this in means


def is_capped_metric(name: str) -> bool:
    """Metrics whose infinite values are capped at PSNR_CAP_DB in means: the PSNRs."""
    return "psnr" in name


def psnr_footnote(capped: int) -> str:
    return (
        f"PSNR is infinite where an edit equals the ground truth exactly; means and stds count an "
        f"infinite PSNR as {PSNR_CAP_DB:g} dB ({capped} value(s) capped here). Per-edit cells show inf."
    )


@dataclass
class MetricStats:
    mean: float | None
    std: float | None  # sample std (ddof=1); None with fewer than 2 values
    n: int  # edits where the metric is ok
    missing: int
    failed: int
    capped: int = 0  # infinite values counted as PSNR_CAP_DB

    def display(self) -> str:
        counts = [f"n={self.n}"]
        if self.missing:
            counts.append(f"{self.missing} missing")
        if self.failed:
            counts.append(f"{self.failed} failed")
        if self.capped:
            counts.append(f"{self.capped} capped")
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
    capped = 0
    if is_capped_metric(name):
        capped = sum(v == math.inf for v in values)
        values = [PSNR_CAP_DB if v == math.inf else v for v in values]
    mean = float(np.mean(values)) if values else None
    std = sample_std(values)  # None with inf values: the spread is undefined
    return MetricStats(
        mean=mean,
        std=std,
        n=len(values),
        missing=sum(x["status"] == "missing" for x in results),
        failed=sum(x["status"] == "failed" for x in results),
        capped=capped,
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
    fields = lambda n: ("mean", "std", "n", "missing", "failed") + (("capped",) if is_capped_metric(n) else ())  # noqa: E731
    numeric = Table(["variant", "edits", "failed_edits"] + [f"{n}_{f}" for n in names for f in fields(n)])
    display = Table(["variant", "edits", "failed edits"] + [metric_header(n) for n in names])
    display.numeric = set(display.columns[1:])
    for variant, per_metric in stats.items():
        of_variant = [r for r in records if r["variant"] == variant]
        ok_edits = sum(r["status"] == "ok" for r in of_variant)
        failed_edits = len(of_variant) - ok_edits
        row = [variant, ok_edits, failed_edits]
        for name in names:
            s = per_metric[name]
            row += [s.mean, s.std, s.n, s.missing, s.failed] + ([s.capped] if is_capped_metric(name) else [])
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
    """Everything of each edit but its settings (those: settings_table), for summary.csv."""
    names = [n for n in metric_names(records) if n not in COST_COLUMNS]
    loss_keys = sorted({k for r in records for k in (r.get("final_losses") or {})})
    columns = ["id", "variant", "status", "error", "source_prompt", "target_prompt"]
    columns += list(COST_COLUMNS)
    columns += [f"final_losses.{k}" for k in loss_keys]
    columns += names
    table = Table(columns)
    table.numeric = {*COST_COLUMNS, *names}
    for r in _sorted_records(records):
        losses = r.get("final_losses") or {}
        row = [r["id"], r["variant"], r["status"], r.get("error"), r.get("source_prompt"), r.get("target_prompt")]
        row += [_cost_cell(r, key) for key in COST_COLUMNS]
        row += [_flat(losses.get(k)) for k in loss_keys]
        row += [metric_cell(r, n) for n in names]
        table.add(row)
    return table


def record_settings(record: dict, with_method: bool) -> dict:
    """The edit settings of a record; with_method: also its method and the method's own settings
    (``method``, ``method.strength``, ...), for tables in which some edit used another method than DreamMotion."""
    settings = dict(record.get("settings") or {})
    if with_method:
        settings["method"] = record.get("method") or DEFAULT_METHOD
        settings.update({f"method.{k}": v for k, v in (record.get("method_settings") or {}).items()})
    return settings


def _other_methods(records: list[dict]) -> bool:
    return any((r.get("method") or DEFAULT_METHOD) != DEFAULT_METHOD for r in records)


def _setting_keys(records: list[dict]) -> list[str]:
    with_method = _other_methods(records)
    return sorted({k for r in records for k in record_settings(r, with_method)})


def settings_table(records: list[dict]) -> Table:
    """One row per edit, one column per edit setting, for summary_settings.csv."""
    keys = _setting_keys(records)
    with_method = _other_methods(records)
    table = Table(["id", "variant"] + keys)
    for r in _sorted_records(records):
        settings = record_settings(r, with_method)
        table.add([r["id"], r["variant"]] + [_flat(settings.get(k)) for k in keys])
    return table


# The per-edit columns summary.md shows first, when the records have them.
HEADLINE_METRICS = (
    "clip_text_alignment",
    "lpips_alex",
    "lpips_vgg",
    "motion_fidelity_cotracker",
    "motion_fidelity_lucas_kanade",
    "gt_psnr",
    "gt_ssim",
    "centroid_error_px",
    "upsampled_gt_psnr",  # the cascade's clip, and Lanczos on the same edit (dreammotion.metrics.upsampled)
    "lanczos_gt_psnr",
)


def _label(name: str, footnote: str = "") -> str:
    """The metric's short label, its footnote mark (PSNR in means) and its direction arrow."""
    info = METRICS.get(name)
    return (info.label if info else name) + footnote + metric_header(name)[len(name):]


def compact_tables(records: list[dict]) -> tuple[Table, Table, int | None]:
    """summary.md's first tables: (one row per edit, the means per variant, capped PSNR values).

    The columns are the headline metrics the records have, and the runtime. The count of capped
    values is None when no PSNR column is shown (no footnote needed).
    """
    present = set(metric_names(records))
    names = [n for n in HEADLINE_METRICS if n in present] + ["runtime_s"]
    cell = lambda r, n: _cost_cell(r, n) if n in COST_COLUMNS else metric_cell(r, n)  # noqa: E731
    per_edit = Table(["id", "variant", "status"] + [_label(n) for n in names])
    per_edit.numeric = set(per_edit.columns[3:])
    for r in _sorted_records(records):
        per_edit.add([r["id"], r["variant"], r["status"]] + [cell(r, n) for n in names])
    marks = {n: "¹" if is_capped_metric(n) else "" for n in names}
    means = Table(["variant", "ok edits", "failed edits"] + [_label(n, marks[n]) for n in names])
    means.numeric = set(means.columns[1:])
    capped = 0
    for variant in variants_in_order(records):
        of_variant = [r for r in records if r["variant"] == variant]
        ok = [r for r in of_variant if r["status"] == "ok"]
        row = [variant, len(ok), len(of_variant) - len(ok)]
        for name in names:
            if name not in present:  # the runtime of records without cost metrics: edit.json's number
                values = [v for v in (cell(r, name) for r in ok) if isinstance(v, (int, float))]
                row.append(float(np.mean(values)) if values else None)
                continue
            stats = metric_stats(of_variant, name)
            capped += stats.capped
            row.append(stats.mean if stats.n else ("missing" if stats.missing else "failed" if stats.failed else None))
        means.add(row)
    return per_edit, means, capped if any(marks.values()) else None


def _settings_lines(records: list[dict]) -> list[str]:
    """Which settings differ between edits and the values of those that do not."""
    with_method = _other_methods(records)
    with_settings = [record_settings(r, with_method) for r in records if r.get("settings")]
    keys = _setting_keys(records)
    if not keys:
        return ["No settings recorded.", ""]
    values = {k: {"" if s.get(k) is None else str(_flat(s.get(k))) for s in with_settings} for k in keys}
    varying = [k for k in keys if len(values[k]) > 1]
    same = [k for k in keys if len(values[k]) == 1]
    lines = []
    if varying:
        lines.append("Differ between edits (per edit: `summary_settings.csv`): " + ", ".join(f"`{k}`" for k in varying) + ".")
    else:
        lines.append("Every edit ran with the same settings (per edit: `summary_settings.csv`).")
    if same:
        lines += ["", "The same for every edit: " + ", ".join(f"`{k}={next(iter(values[k]))}`" for k in same) + "."]
    return lines + [""]


def summary_markdown(records: list[dict]) -> str:
    from dreammotion.tables.formats import to_markdown

    per_edit, means, capped = compact_tables(records)
    parts = ["# Summary of edits", "", to_markdown(per_edit)]
    parts += ["Means over the ok edits of each variant (mean ± std and counts: `variants.md`; every metric "
              "per edit: `edits.md`; prompts, costs and final losses: `summary.csv`):", ""]
    parts.append(to_markdown(means))
    if capped is not None:
        parts += [f"¹ {psnr_footnote(capped)}", ""]
    parts += ["## Settings", ""] + _settings_lines(records)
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


# What write_tables writes, by file name (the workflow's rules declare them as outputs).
TABLE_FILES = ("summary.csv", "summary.md", "summary_settings.csv", "edits.csv", "edits.md", "edits.tex",
               "variants.csv", "variants.md", "variants.tex")


def write_tables(records: list[dict], out_dir: str | Path) -> list[str]:
    """Write summary.{csv,md}, summary_settings.csv, edits.{csv,md,tex}, variants.{csv,md,tex}; returns the paths."""
    from dreammotion.tables.formats import to_csv
    from dreammotion.utils.atomic import write_text

    out_dir = Path(out_dir)
    paths = []
    write_text(out_dir / "summary.csv", to_csv(summary_table(records)))
    write_text(out_dir / "summary.md", summary_markdown(records))
    write_text(out_dir / "summary_settings.csv", to_csv(settings_table(records)))
    paths += [str(out_dir / "summary.csv"), str(out_dir / "summary.md"), str(out_dir / "summary_settings.csv")]
    paths += write_table(edits_table(records), out_dir / "edits", comment="one row per (edit, variant)")
    numeric, display = variants_tables(records)
    paths += write_table(numeric, out_dir / "variants", formats=("csv",))
    comment = "mean ± sample std over edits; missing/failed excluded and counted"
    psnr = [n for n in metric_names(records) if is_capped_metric(n)]
    if psnr:
        stats = aggregate_by_variant(records)
        comment += f". {psnr_footnote(sum(s[n].capped for s in stats.values() for n in psnr))}"
    paths += write_table(display, out_dir / "variants", formats=("md", "tex"), comment=comment)
    return paths
