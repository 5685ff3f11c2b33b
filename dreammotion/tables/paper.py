"""The benchmark in the DreamMotion paper's form: "Table 1" (the method against the baselines) and
"Table 3" (the ablations), as CSV, Markdown and LaTeX.

The paper (Jeong et al., ECCV 2024) reports, per method, Text-Align, Frame-Con, Motion-Fid and
Frame-LPIPS. We write the same four columns for whatever model and metric models a run used, then
the ground-truth columns of synthetic rows. Each column is a *role* filled by the first metric of
its candidates that the records have a value of (``PAPER_COLUMNS``): Motion-Fid is CoTracker's motion
fidelity where CoTracker ran, else the Lucas-Kanade substitute's; Frame-LPIPS is LPIPS where it ran,
else ``clip_feature_distance`` (the substitute on the CLIP image tower), and then the column is
headed "Frame-dist", not "Frame-LPIPS". The legend under each table names the metric of every column
and the CLIP model the CLIP columns were computed with (``clip_model``), so that a number of the
domain CLIP is never read as OpenAI CLIP's.

Rows: one per (variant, group of edits). Groups come from the manifest's ``edit_kind`` labels
through ``kind_groups`` (default: appearance = colour, texture, background; structural = shape,
which the paper says the method is not made for, so it is reported apart); an edit without a
label is in the group "all". Cells are mean ± sample std (ddof=1) over the group's ok edits,
PSNR's infinities counted as ``PSNR_CAP_DB`` as in the other tables. With several suites (the
manifest's ``suite`` labels, e.g. two suite seeds) the CSV also gives the std of the per-suite means
(``_suite_std``) and the Markdown a second table of them: how much a result moves with the suite
seed. A column with no value for a row says ``missing``; a role that no record has at all (the
ground-truth columns of a real video) is left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dreammotion.errors import InputError
from dreammotion.metrics.names import METRICS
from dreammotion.records import read_json_option
from dreammotion.tables.aggregate import metric_stats, psnr_footnote
from dreammotion.tables.formats import Table, format_number, write_table
from dreammotion.utils.stats import sample_std

DEFAULT_KIND_GROUPS = {"appearance": ["colour", "texture", "background"], "structural": ["shape"]}
DEFAULT_TABLES = {
    "table1": ["dreammotion", "sdedit", "sds"],
    "table3": ["no-ssm", "no-t-ssm", "no-s-ssm", "no-mask", "dreammotion"],
    "kind_groups": DEFAULT_KIND_GROUPS,
}
UNLABELLED_GROUP = "all"
TABLE_TITLES = {
    "table1": "Table 1: the method against the baselines",
    "table3": "Table 3: ablations (S-SSM, T-SSM, masks)",
}


@dataclass(frozen=True)
class PaperColumn:
    """One column of the paper-form tables: its label, the metrics that can fill it (first with a value
    wins), whether it is one of the paper's four, and the label used when a substitute fills it."""

    label: str
    candidates: tuple[str, ...]
    paper: bool = True
    substitute_label: dict | None = None  # {metric: label} for candidates that are substitutes


PAPER_COLUMNS = (
    PaperColumn("Text-Align", ("clip_text_alignment",)),
    PaperColumn("Frame-Con", ("clip_frame_consistency",)),
    PaperColumn("Motion-Fid", ("motion_fidelity_cotracker", "motion_fidelity_lucas_kanade"),
                substitute_label={"motion_fidelity_lucas_kanade": "Motion-Fid (LK)"}),
    PaperColumn("Frame-LPIPS", ("lpips_alex", "lpips_vgg", "clip_feature_distance"),
                substitute_label={"clip_feature_distance": "Frame-dist (CLIP feat.)"}),
    PaperColumn("Motion-Fid true", ("motion_fidelity_cotracker_vs_truth", "motion_fidelity_lucas_kanade_vs_truth"), paper=False,
                substitute_label={"motion_fidelity_lucas_kanade_vs_truth": "Motion-Fid true (LK)"}),
    PaperColumn("PSNR", ("gt_psnr",), paper=False),
    PaperColumn("PSNR out", ("gt_psnr_outside_mask",), paper=False),
    PaperColumn("SSIM", ("gt_ssim",), paper=False),
    PaperColumn("Flicker in", ("gt_flicker_inside_mask",), paper=False),
    PaperColumn("Flicker out", ("gt_flicker_outside_mask",), paper=False),
    PaperColumn("Centroid err", ("centroid_error_px",), paper=False),
    # The cascade's upsampled clip against the ground truth at its size, and Lanczos on the same edit.
    PaperColumn("PSNR up", ("upsampled_gt_psnr",), paper=False),
    PaperColumn("PSNR Lanczos", ("lanczos_gt_psnr",), paper=False),
)


@dataclass(frozen=True)
class ChosenColumn:
    column: PaperColumn
    metric: str  # the metric that fills it
    has_values: bool  # False: no record has an ok value (the column says missing)

    @property
    def label(self) -> str:
        base = (self.column.substitute_label or {}).get(self.metric, self.column.label)
        info = METRICS.get(self.metric)
        arrow = "" if info is None or info.higher_is_better is None else (" ↑" if info.higher_is_better else " ↓")
        return base + arrow


# -- settings ---------------------------------------------------------------------------------------


def paper_settings(text_or_path: str | None) -> dict:
    """The config's ``tables`` object (inline JSON or a JSON file), with the defaults filled in."""
    if text_or_path is None:
        return {key: (dict(v) if isinstance(v, dict) else list(v)) for key, v in DEFAULT_TABLES.items()}
    source, data = read_json_option(text_or_path, "--paper-tables")
    if not isinstance(data, dict):
        raise InputError(f"--paper-tables {source} must be a JSON object, not {type(data).__name__}")
    unknown = sorted(set(data) - set(DEFAULT_TABLES))
    if unknown:
        raise InputError(f"--paper-tables {source}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(DEFAULT_TABLES)}")
    return {**paper_settings(None), **data}


# -- groups -----------------------------------------------------------------------------------------


def record_group(record: dict, kind_groups: dict[str, list[str]]) -> str:
    """The group of an edit: the group holding its ``edit_kind`` label, the kind itself if no group
    holds it, "all" without a label."""
    kind = (record.get("labels") or {}).get("edit_kind")
    if kind is None:
        return UNLABELLED_GROUP
    return next((group for group, kinds in kind_groups.items() if kind in kinds), kind)


def groups_in_order(records: list[dict], kind_groups: dict[str, list[str]]) -> list[str]:
    """The groups the records fall in: the configured ones in their order, then the others as they appear."""
    present = list(dict.fromkeys(record_group(r, kind_groups) for r in records))
    return [g for g in kind_groups if g in present] + [g for g in present if g not in kind_groups]


def record_suite(record: dict) -> str | None:
    return (record.get("labels") or {}).get("suite")


# -- columns ----------------------------------------------------------------------------------------


def _has_ok(records: list[dict], metric: str) -> bool:
    return any(r["status"] == "ok" and (r["metrics"].get(metric) or {}).get("status") == "ok" for r in records)


def _has_any(records: list[dict], metric: str) -> bool:
    return any(metric in r["metrics"] for r in records)


def choose_columns(records: list[dict]) -> list[ChosenColumn]:
    """The metric of each role: the first candidate with an ok value; else the first the records hold at
    all (the column then says missing); a role no record holds is left out."""
    chosen = []
    for column in PAPER_COLUMNS:
        with_values = [m for m in column.candidates if _has_ok(records, m)]
        if with_values:
            chosen.append(ChosenColumn(column, with_values[0], True))
            continue
        held = [m for m in column.candidates if _has_any(records, m)]
        if held:
            chosen.append(ChosenColumn(column, held[0], False))
    return chosen


def clip_models(records: list[dict]) -> list[str]:
    """The CLIP models the records' CLIP columns were computed with (``models.clip_model``)."""
    names = set()
    for r in records:
        for name in str((r.get("models") or {}).get("clip_model") or "").split(", "):
            if name:
                names.add(name)
    return sorted(names)


# -- the table --------------------------------------------------------------------------------------


def suite_std(records: list[dict], metric: str) -> tuple[float | None, int]:
    """(sample std of the per-suite means, number of suites with a mean); std None with fewer than 2."""
    suites = sorted({s for s in (record_suite(r) for r in records) if s is not None})
    means = []
    for suite in suites:
        stats = metric_stats([r for r in records if record_suite(r) == suite], metric)
        if stats.mean is not None:
            means.append(stats.mean)
    return sample_std(means), len(means)


def _cell(stats) -> object:
    if stats.n == 0:
        return "missing" if stats.missing or not stats.failed else "failed"
    if stats.std is None:
        return format_number(stats.mean)
    return f"{format_number(stats.mean)} ± {format_number(stats.std)}"


def paper_tables(records: list[dict], variants: list[str], kind_groups: dict[str, list[str]], table: str
                 ) -> tuple[Table, Table, Table | None, list[str]]:
    """(numeric CSV table, display table, per-suite spread table or None, legend lines) of one paper table.

    Raises InputError when a listed variant has no record (config key tables.<table>)."""
    known = list(dict.fromkeys(r["variant"] for r in records))
    absent = [v for v in variants if v not in known]
    if absent:
        raise InputError(f"tables.{table} names variant(s) {', '.join(absent)} with no metrics record "
                         f"(the records are of: {', '.join(known)}); list only variants of `variants`")
    selected = [r for r in records if r["variant"] in variants]
    columns = choose_columns(selected)
    groups = groups_in_order(selected, kind_groups)
    suites = sorted({s for s in (record_suite(r) for r in selected) if s is not None})
    models = clip_models(selected)
    numeric = Table(["variant", "method", "group", "edits", "failed_edits", "suites", "clip_model"]
                    + [f"{c.metric}_{f}" for c in columns for f in ("mean", "std", "n", "suite_std")])
    display = Table(["variant", "edits", "group"] + [c.label for c in columns])
    display.numeric = set(display.columns[3:]) | {"edits"}
    spread = Table(["variant", "group", "suites"] + [c.label for c in columns]) if len(suites) >= 2 else None
    if spread is not None:
        spread.numeric = set(spread.columns[2:])
    capped = 0
    for variant in variants:
        for group in groups:
            members = [r for r in selected if r["variant"] == variant and record_group(r, kind_groups) == group]
            if not members:
                continue
            ok_edits = sum(r["status"] == "ok" for r in members)
            method = next((r.get("method") for r in members if r.get("method")), None) or "dreammotion"
            row = [variant, method, group, ok_edits, len(members) - ok_edits, len(suites), ", ".join(models) or None]
            cells, spreads = [], []
            for c in columns:
                stats = metric_stats(members, c.metric)
                capped += stats.capped
                spread_std, spread_n = suite_std(members, c.metric)
                row += [stats.mean, stats.std, stats.n, spread_std]
                cells.append(_cell(stats))
                spreads.append(format_number(spread_std) if spread_std is not None else "")
            numeric.add(row)
            display.add([variant, ok_edits, group] + cells)
            if spread is not None:
                spread.add([variant, group, len(suites)] + spreads)
    legend = legend_lines(columns, models, len(suites), capped)
    return numeric, display, spread, legend


def legend_lines(columns: list[ChosenColumn], models: list[str], suites: int, capped: int) -> list[str]:
    """What each column is (metric, model, substitute), and how the cells are computed."""
    lines = ["mean ± sample std over the edits of each row (failed edits and missing values excluded, never averaged as 0)"
             + (f"; {suites} suites, spread of the per-suite means below" if suites >= 2 else "") + "."]
    model_text = ", ".join(models) if models else "none"
    for c in columns:
        info = METRICS.get(c.metric)
        note = f"`{c.metric}`"
        if c.metric.startswith("clip_"):
            note += f" (clip_model: {model_text})"
        if not c.has_values:
            note += ": no value in any row (missing; the summary gives the reasons)"
        elif info is not None:
            note += f": {info.description}"
        lines.append(f"{c.label}: {note}.")
    if capped:
        lines.append(psnr_footnote(capped))
    return lines


# What write_paper_tables writes, by file name.
PAPER_TABLE_FILES = tuple(f"{table}.{fmt}" for table in ("table1", "table3") for fmt in ("csv", "md", "tex"))


def write_paper_tables(records: list[dict], out_dir: str | Path, settings: dict) -> list[str]:
    """Write table1.{csv,md,tex} and table3.{csv,md,tex} into `out_dir`; returns the paths."""
    from dreammotion.tables.formats import to_markdown
    from dreammotion.utils.atomic import write_text

    paths = []
    for table in ("table1", "table3"):
        numeric, display, spread, legend = paper_tables(records, list(settings[table]), settings["kind_groups"], table)
        stem = Path(out_dir) / table
        paths += write_table(numeric, stem, formats=("csv",))
        parts = [f"## {TABLE_TITLES[table]}", "", to_markdown(display)]
        parts += [f"- {line}" for line in legend] + [""]
        if spread is not None:
            parts += ["Spread over suites (sample std of the per-suite means):", "", to_markdown(spread)]
        write_text(f"{stem}.md", "\n".join(parts))
        paths.append(f"{stem}.md")
        paths += write_table(display, stem, formats=("tex",), comment=f"{TABLE_TITLES[table]}. " + " ".join(legend))
    return paths
