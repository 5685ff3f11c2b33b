# The report's front page (`snakemake --report results/report.html`).
report: "../report/workflow.rst"


# The tables `dreammotion tables` writes: common.smk's TABLE_FILES and the settings of each edit.
SUMMARY_FILES = TABLE_FILES + ["summary_settings.csv"]


rule summary:
    """One row per edit of the variants the default target builds, and their means."""
    input:
        metrics=table_inputs(config["run_variants"]),
    output:
        [table_output(name) for name in SUMMARY_FILES],
    log:
        f"{RESULTS}/logs/tables/summary.log",
    params:
        dm=untracked(DM),
        out_dir=lambda wc, output: os.path.dirname(output[0]),
    shell:
        "{params.dm} tables --metrics {input.metrics:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule tables:
    """`snakemake tables`: the benchmark tables (every variant over the whole manifest) and their report page.

    Then `snakemake --report results/report.html tables` gives a report with the benchmark (category
    "4. Benchmark") besides what the default target's jobs put there.
    """
    input:
        tables=[f"{RESULTS}/benchmark/{name}" for name in SUMMARY_FILES],
        page=f"{RESULTS}/report/benchmark/benchmark.html",
    localrule: True


rule benchmark_tables:
    """Every variant (method and ablations) over the whole manifest."""
    input:
        metrics=table_inputs(list(config["variants"])),
    output:
        [benchmark_output(name) for name in SUMMARY_FILES],
    log:
        f"{RESULTS}/logs/tables/benchmark.log",
    params:
        dm=untracked(DM),
        out_dir=lambda wc, output: os.path.dirname(output[0]),
    shell:
        "{params.dm} tables --metrics {input.metrics:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"


# ----------------------------------------------------------------------------------------------------------
# Report: one panel page per edit (input | mask | edit | upsampled, loss curves) and the tables as HTML.
# `snakemake --report results/report.html` after a run collects every output wrapped in report(...).
# ----------------------------------------------------------------------------------------------------------


rule panel:
    """Side-by-side GIF/mp4, loss curves and an HTML page of one edit, for the report."""
    input:
        unpack(panel_inputs),
    output:
        gif=f"{RESULTS}/report/{{variant}}/{{id}}/panel.gif",
        html=report(
            f"{RESULTS}/report/{{variant}}/{{id}}/panel.html",
            caption="../report/panel.rst",
            category="1. Edits",
            subcategory="{variant}",
            labels={"row": "{id}"},
        ),
        mp4=report(
            f"{RESULTS}/report/{{variant}}/{{id}}/panel.mp4",
            caption="../report/panel_mp4.rst",
            category="1. Edits",
            subcategory="{variant} (mp4 downloads)",
            labels={"row": "{id}"},
        ),
        loss=report(
            f"{RESULTS}/report/{{variant}}/{{id}}/loss.png",
            caption="../report/loss.rst",
            category="2. Loss curves",
            subcategory="{variant}",
            labels={"row": "{id}"},
        ),
        per_frame=report(
            f"{RESULTS}/report/{{variant}}/{{id}}/frames.png",
            caption="../report/per_frame.rst",
            category="2. Loss curves",
            subcategory="{variant} (per frame, window borders)",
            labels={"row": "{id}"},
        ),
    log:
        f"{RESULTS}/logs/report/panel/{{variant}}/{{id}}.log",
    params:
        dm=untracked(DM),
        failure=lambda wc: f"{RESULTS}/failures/{wc.variant}/{wc.id}.panel.json",
        source_prompt=lambda wc: ROWS[wc.id].source_prompt,  # shown by the captions
        target_prompt=lambda wc: ROWS[wc.id].target_prompt,
        options=panel_options,
        fps=config["frames"]["output_fps"],
        out_dir=lambda wc: report_dir(wc.variant, wc.id),
    shell:
        "{params.dm} --failure-record {params.failure:q} panel"
        " --input-frames {input.input_frames:q} --masks {input.masks:q} --edit-frames {input.edit_frames:q}"
        " {params.options} --metrics-json {input.metrics_json:q}"
        " --log-csv {input.log_csv:q} --edit-json {input.edit_json:q} --fps {params.fps}"
        " --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule report_tables:
    """The per-edit metrics and per-variant tables as one HTML page, for the report: the metrics of each
    edit first (edits.csv: id, variant, status, one column per metric), charts and the means, then the
    full summary (prompts, errors of failed rows, costs)."""
    input:
        edits=f"{RESULTS}/tables/edits.csv",
        variants=f"{RESULTS}/tables/variants.csv",
        summary=f"{RESULTS}/tables/summary.csv",
    output:
        html=report(f"{RESULTS}/report/tables.html", caption="../report/tables.rst", category="3. Tables", subcategory="page"),
    log:
        f"{RESULTS}/logs/report/tables.log",
    params:
        dm=untracked(DM),
    shell:
        "{params.dm} report-tables --tables {input.edits:q} {input.variants:q} {input.summary:q} --title 'dreammotion results'"
        " --plot-variants {input.variants:q} --out {output.html:q} > {log:q} 2>&1"


rule report_benchmark:
    """The benchmark tables as HTML and a bar chart per metric (mean ± std per variant), for the report."""
    input:
        variants=f"{RESULTS}/benchmark/variants.csv",
        summary=f"{RESULTS}/benchmark/summary.csv",
        edits=f"{RESULTS}/benchmark/edits.csv",
    output:
        html=report(
            f"{RESULTS}/report/benchmark/benchmark.html",
            caption="../report/benchmark.rst",
            category="4. Benchmark",
            subcategory="page",
        ),
        plots=report(
            directory(f"{RESULTS}/report/benchmark/plots"),
            patterns=["{metric}.png"],
            caption="../report/benchmark_plot.rst",
            category="4. Benchmark",
            subcategory="plots",
            labels={"metric": "{metric}"},
        ),
    log:
        f"{RESULTS}/logs/report/benchmark.log",
    params:
        dm=untracked(DM),
        out_dir=lambda wc, output: os.path.dirname(output.html),
    shell:
        "{params.dm} report-benchmark --tables {input.variants:q} {input.summary:q} {input.edits:q}"
        " --variants {input.variants:q} --title 'dreammotion benchmark' --out-dir {params.out_dir:q} > {log:q} 2>&1"
