"""Tables from hand-written metrics records: aggregation against hand-computed numbers, output formats."""

from __future__ import annotations

import csv
import io
import json
import math
import re

import pytest

from dreammotion.errors import InputError
from dreammotion.tables import aggregate, formats
from conftest import FAILED, MISSING, metric, record, write_metrics_records


@pytest.fixture
def records():
    return [
        record("dog", "full", {"clip_text_alignment": metric(0.30), "lpips_alex": metric(0.10), "runtime_s": metric(10.0)}),
        record("cat", "full", {"clip_text_alignment": metric(0.20), "lpips_alex": metric(0.30), "runtime_s": metric(20.0)}),
        record("car", "full", {"clip_text_alignment": MISSING, "lpips_alex": metric(0.20), "runtime_s": metric(30.0)}),
        record("dog", "no_temporal", {"clip_text_alignment": metric(0.25), "lpips_alex": FAILED, "runtime_s": metric(5.0)}),
        {"id": "cat", "variant": "no_temporal", "status": "failed", "error": "NumericalError: loss is NaN at iteration 7"},
    ]


def test_aggregation_matches_hand_computed_mean_and_std(tmp_path, records):
    loaded = aggregate.load_records(write_metrics_records(tmp_path, records))
    stats = aggregate.aggregate_by_variant(loaded)
    full = stats["full"]
    # clip_text_alignment over full: 0.30, 0.20 (car is missing: excluded, counted)
    assert full["clip_text_alignment"].mean == pytest.approx(0.25)
    assert full["clip_text_alignment"].std == pytest.approx(math.sqrt(((0.05) ** 2 * 2) / 1))  # ddof=1
    assert (full["clip_text_alignment"].n, full["clip_text_alignment"].missing) == (2, 1)
    # lpips over full: 0.1, 0.3, 0.2 -> mean 0.2, sample std 0.1
    assert full["lpips_alex"].mean == pytest.approx(0.2) and full["lpips_alex"].std == pytest.approx(0.1)
    assert full["runtime_s"].mean == pytest.approx(20.0) and full["runtime_s"].std == pytest.approx(10.0)
    ablation = stats["no_temporal"]
    assert ablation["clip_text_alignment"].mean == pytest.approx(0.25) and ablation["clip_text_alignment"].std is None
    assert (ablation["lpips_alex"].n, ablation["lpips_alex"].failed, ablation["lpips_alex"].mean) == (0, 1, None)


def test_missing_is_shown_as_missing_never_as_zero(tmp_path, records):
    loaded = aggregate.load_records(write_metrics_records(tmp_path, records))
    edits = aggregate.edits_table(loaded)
    rows = {(row[0], row[1]): dict(zip(edits.columns, row)) for row in edits.rows}
    assert rows[("car", "full")]["clip_text_alignment ↑"] == "missing"
    assert rows[("dog", "no_temporal")]["lpips_alex ↓"] == "failed"
    assert rows[("cat", "no_temporal")]["status"] == "failed" and rows[("cat", "no_temporal")]["lpips_alex ↓"] is None
    _, display = aggregate.variants_tables(loaded)
    cells = {row[0]: dict(zip(display.columns, row)) for row in display.rows}
    assert cells["full"]["clip_text_alignment ↑"] == "0.25 ± 0.07071 (n=2, 1 missing)"
    assert cells["no_temporal"]["lpips_alex ↓"] == "failed (n=0, 1 failed)"
    assert (cells["no_temporal"]["edits"], cells["no_temporal"]["failed edits"]) == (1, 1)


def test_written_tables_csv_markdown_latex(tmp_path, records):
    paths = aggregate.write_tables(aggregate.load_records(write_metrics_records(tmp_path, records)), tmp_path / "tables")
    names = sorted(p.rsplit("/", 1)[1] for p in paths)
    assert names == ["edits.csv", "edits.md", "edits.tex", "summary.csv", "summary.md", "summary_settings.csv",
                     "variants.csv", "variants.md", "variants.tex"]
    assert sorted(aggregate.TABLE_FILES) == names  # what the workflow's rules declare
    out = tmp_path / "tables"

    variants = list(csv.DictReader(io.StringIO((out / "variants.csv").read_text())))
    assert [v["variant"] for v in variants] == ["full", "no_temporal"]  # order of first appearance
    assert float(variants[0]["lpips_alex_mean"]) == pytest.approx(0.2)
    assert float(variants[0]["lpips_alex_std"]) == pytest.approx(0.1)
    assert (variants[0]["clip_text_alignment_n"], variants[0]["clip_text_alignment_missing"]) == ("2", "1")
    assert variants[1]["lpips_alex_mean"] == ""  # nothing to average: empty, not 0

    summary = list(csv.DictReader(io.StringIO((out / "summary.csv").read_text())))
    assert len(summary) == 5
    failed_row = next(r for r in summary if r["status"] == "failed")
    assert failed_row["error"] == "NumericalError: loss is NaN at iteration 7"
    assert {"final_losses.vdds", "runtime_s", "peak_memory_mib", "source_prompt"} <= set(summary[0])
    assert not [c for c in summary[0] if c.startswith("settings")]  # the settings have their own file
    settings = list(csv.DictReader(io.StringIO((out / "summary_settings.csv").read_text())))
    assert list(settings[0]) == ["id", "variant", "iterations", "lr"]
    assert [(r["id"], r["variant"], r["lr"], r["iterations"]) for r in settings][:2] == [
        ("car", "full", "0.1", "200"), ("cat", "full", "0.1", "200")]
    assert next(r for r in settings if r["variant"] == "no_temporal" and r["id"] == "cat")["lr"] == ""  # failed
    header = (out / "summary.csv").read_text().split("\n")[0].split(",")
    assert len(header) == len(set(header)), header  # runtime_s is one column, not two
    assert [r["runtime_s"] for r in summary if r["variant"] == "full"] == ["30.0", "20.0", "10.0"]  # car, cat, dog
    summary_md = (out / "summary.md").read_text()
    assert "## Failed edits" in summary_md and "NaN at iteration 7" in summary_md
    assert "CLIP folder /m/clip does not exist" in summary_md and "tracker exploded" in summary_md

    for name in ("edits.md", "variants.md", "summary.md"):
        check_markdown_tables((out / name).read_text())
    for name in ("edits.tex", "variants.tex"):
        check_latex((out / name).read_text())


def check_markdown_tables(text: str) -> None:
    """Every table: header, separator, rows, all with the same number of unescaped '|' separators."""
    blocks, current = [], []
    for line in text.split("\n") + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    assert blocks, "no table found"
    for lines in blocks:
        assert len(lines) >= 2
        counts = {len(re.findall(r"(?<!\\)\|", line)) for line in lines}
        assert len(counts) == 1, lines
        assert re.fullmatch(r"\|(:?-{3,}:?\|)+", lines[1])


def check_latex(text: str) -> None:
    lines = text.strip().split("\n")
    assert text.count("\\begin{tabular}") == text.count("\\end{tabular}") == 1
    spec = re.search(r"\\begin\{tabular\}\{([lr]+)\}", text).group(1)
    body = lines[lines.index("\\toprule") + 1 : lines.index("\\bottomrule")]
    body.remove("\\midrule")
    for line in body:
        assert line.endswith(" \\\\")
        assert len(re.findall(r"(?<!\\)&", line)) == len(spec) - 1, line
        assert not re.search(r"(?<!\\)[_%#]", line), line  # specials escaped
        assert "±" not in line and "↑" not in line


def test_latex_and_markdown_escape_their_special_characters():
    table = formats.Table(["name_with_underscore", "value"], numeric={"value"})
    table.add(["50% & $x$ #1 {a} ~b^c \\d", "0.5 ± 0.1"])
    table.add(["pipe | here", 1.23456789])
    latex = formats.to_latex(table)
    assert r"50\% \& \$x\$ \#1 \{a\} \textasciitilde{}b\textasciicircum{}c \textbackslash{}d" in latex
    assert r"0.5 $\pm$ 0.1" in latex and r"name\_with\_underscore" in latex and "1.235" in latex
    check_latex(latex)
    markdown = formats.to_markdown(table)
    assert "pipe \\| here" in markdown
    check_markdown_tables(markdown)


def test_number_formatting():
    assert formats.format_number(0.123456) == "0.1235"
    assert formats.format_number(12345.6) == "12346"
    assert formats.format_number(math.inf) == "inf"
    assert formats.format_number(None) == ""


def test_bad_records_are_input_errors_naming_the_file(tmp_path, records):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="bad.json is not valid JSON"):
        aggregate.load_records([str(bad)])
    bad.write_text(json.dumps({"id": "x", "variant": "full", "status": "ok", "metrics": {"m": {"value": "high", "status": "ok"}}}))
    with pytest.raises(InputError, match=r"bad.json: field metrics.m.value"):
        aggregate.load_records([str(bad)])
    paths = write_metrics_records(tmp_path, records[:1])
    with pytest.raises(InputError, match="both for edit 'dog', variant 'full'"):
        aggregate.load_records(paths + paths)
    with pytest.raises(InputError, match="does not exist"):
        aggregate.load_records([str(tmp_path / "nope.json")])


def test_tables_cli(tmp_path, records):
    from dreammotion.cli import main

    paths = write_metrics_records(tmp_path, records)
    assert main(["tables", "--metrics", *paths, "--out-dir", str(tmp_path / "tables")]) == 0
    assert (tmp_path / "tables" / "variants.tex").is_file()
    assert main(["tables", "--metrics", str(tmp_path / "missing.json"), "--out-dir", str(tmp_path / "t2")]) == 1


def test_summary_markdown_starts_with_a_compact_per_edit_table(tmp_path, records):
    records[0]["settings"] = {"lr": 0.1, "iterations": 200, "seed": 4}
    paths = aggregate.write_tables(aggregate.load_records(write_metrics_records(tmp_path, records)), tmp_path / "tables")
    text = (tmp_path / "tables" / "summary.md").read_text()
    check_markdown_tables(text)
    lines = text.split("\n")
    header = [c.strip() for c in next(line for line in lines if line.startswith("|")).strip("|").split("|")]
    assert header == ["id", "variant", "status", "CLIP text ↑", "LPIPS (alex) ↓", "runtime (s)"]
    first = [c.strip() for c in lines[lines.index(next(line for line in lines if line.startswith("|"))) + 2].strip("|").split("|")]
    assert first == ["car", "full", "ok", "missing", "0.2", "30"]
    # the means of the headline columns, per variant
    means = [line for line in lines if line.startswith("| full ")]
    assert [c.strip() for c in means[-1].strip("|").split("|")] == ["full", "3", "0", "0.25", "0.2", "20"]
    # settings: the differing ones named, the constant ones once, never as 43 columns
    assert "Differ between edits (per edit: `summary_settings.csv`): `seed`." in text
    assert "The same for every edit: `iterations=200`, `lr=0.1`." in text
    assert str(tmp_path / "tables" / "summary_settings.csv") in paths


def test_infinite_psnr_is_capped_in_means_with_a_footnote(tmp_path):
    recs = [
        record("a", "full", {"gt_psnr": metric(math.inf), "gt_ssim": metric(1.0)}),
        record("b", "full", {"gt_psnr": metric(20.0), "gt_ssim": metric(0.5)}),
    ]
    loaded = aggregate.load_records(write_metrics_records(tmp_path, recs))
    stats = aggregate.metric_stats(loaded, "gt_psnr")
    assert (stats.mean, stats.capped, stats.n) == (pytest.approx((aggregate.PSNR_CAP_DB + 20) / 2), 1, 2)
    assert stats.std == pytest.approx(math.sqrt(2) * (aggregate.PSNR_CAP_DB - 20) / 2)
    assert aggregate.metric_stats(loaded, "gt_ssim").capped == 0
    aggregate.write_tables(loaded, tmp_path / "tables")
    out = tmp_path / "tables"
    summary = (out / "summary.md").read_text()
    assert re.search(r"\| a +\| full +\| ok +\| +inf +\|", summary)  # the per-edit cell as measured
    assert "PSNR¹ ↑" in summary and "¹ PSNR is infinite" in summary and "1 value(s) capped" in summary
    assert re.search(r"\| +60 ± 56.57 \(n=2, 1 capped\) +\|", (out / "variants.md").read_text())
    assert "as 100 dB" in (out / "variants.md").read_text() and "as 100 dB" in (out / "variants.tex").read_text()
    variants = list(csv.DictReader(io.StringIO((out / "variants.csv").read_text())))
    assert (float(variants[0]["gt_psnr_mean"]), variants[0]["gt_psnr_capped"]) == (60.0, "1")
    assert "gt_ssim_capped" not in variants[0]
    check_latex((out / "variants.tex").read_text())


def test_csv_writer_keeps_integers_and_full_precision():
    table = formats.Table(["a", "b", "c"])
    table.add([1, 0.1 + 0.2, None])
    table.add([None, math.inf, "x,y"])
    assert formats.to_csv(table) == 'a,b,c\n1,0.30000000000000004,\n,inf,"x,y"\n'


def test_one_spread_convention():
    from dreammotion.utils.stats import sample_std

    assert sample_std([1.0, 2.0, 3.0]) == 1.0  # ddof = 1
    assert sample_std([5.0]) is None and sample_std([]) is None
    assert sample_std([1.0, float("inf")]) is None  # undefined, not nan
