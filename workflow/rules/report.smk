# The report's front page (`snakemake --report results/report.html`).
report: "../report/workflow.rst"


# The tables `dreammotion tables` writes (dreammotion.tables.aggregate.TABLE_FILES) and, for the benchmark,
# the paper-form ones (dreammotion.tables.paper.PAPER_TABLE_FILES: Table 1, methods; Table 3, ablations).
SUMMARY_FILES = list(TABLE_FILES)


rule run_tables:
    """One row per edit of the variants the default target builds, and their means."""
    input:
        metrics=table_inputs(config["run_variants"]),
    output:
        [table_output(name) for name in SUMMARY_FILES],
    log:
        LAYOUT.log("run_tables"),
    params:
        **dm_params("run_tables"),
        out_dir=lambda wc, output: os.path.dirname(output[0]),
    shell:
        dm_shell("tables", "--metrics {input.metrics:q} --out-dir {params.out_dir:q}")


rule tables:
    """`snakemake tables`: the benchmark tables (every variant over the whole manifest) and their report page.

    Then `snakemake --report results/report.html tables` gives a report with the benchmark (category
    "4. Benchmark") besides what the default target's jobs put there.
    """
    input:
        tables=[LAYOUT.benchmark_table(name) for name in SUMMARY_FILES + list(PAPER_TABLE_FILES)],
        page=LAYOUT.report_file("benchmark/benchmark.html"),
    localrule: True


rule benchmark_tables:
    """Every variant (method and ablations) over the whole manifest, and the paper-form Tables 1 and 3."""
    input:
        metrics=table_inputs(list(config["variants"])),
    output:
        [benchmark_output(name) for name in SUMMARY_FILES + list(PAPER_TABLE_FILES)],
    log:
        LAYOUT.log("benchmark_tables"),
    params:
        **dm_params("benchmark_tables"),
        out_dir=lambda wc, output: os.path.dirname(output[0]),
        paper_tables=as_arg(config["tables"]),
    shell:
        dm_shell("tables", "--metrics {input.metrics:q} --out-dir {params.out_dir:q} --paper-tables {params.paper_tables}")


# ----------------------------------------------------------------------------------------------------------
# Report: one panel page per edit (input | mask | edit | upsampled, loss curves) and the tables as HTML.
# `snakemake --report results/report.html` after a run collects every output wrapped in report(...).
# ----------------------------------------------------------------------------------------------------------


rule panel:
    """Side-by-side GIF/mp4, loss curves and an HTML page of one edit, for the report."""
    input:
        unpack(panel_inputs),
    output:
        gif=f"{report_dir('{variant}', '{id}')}/panel.gif",
        html=report(
            f"{report_dir('{variant}', '{id}')}/panel.html",
            caption="../report/panel.rst",
            category="1. Edits",
            subcategory="{variant}",
            labels={"row": "{id}"},
        ),
        mp4=report(
            f"{report_dir('{variant}', '{id}')}/panel.mp4",
            caption="../report/panel_mp4.rst",
            category="1. Edits",
            subcategory="{variant} (mp4 downloads)",
            labels={"row": "{id}"},
        ),
        loss=report(
            f"{report_dir('{variant}', '{id}')}/loss.png",
            caption="../report/loss.rst",
            category="2. Loss curves",
            subcategory="{variant}",
            labels={"row": "{id}"},
        ),
        per_frame=report(
            f"{report_dir('{variant}', '{id}')}/frames.png",
            caption="../report/per_frame.rst",
            category="2. Loss curves",
            subcategory="{variant} (per frame, window borders)",
            labels={"row": "{id}"},
        ),
    log:
        LAYOUT.log("panel", variant="{variant}", id="{id}"),
    params:
        **dm_params("panel"),
        source_prompt=lambda wc: ROWS[wc.id].source_prompt,  # shown by the captions
        target_prompt=lambda wc: ROWS[wc.id].target_prompt,
        options=panel_options,
        fps=config["frames"]["output_fps"],
        out_dir=lambda wc: report_dir(wc.variant, wc.id),
    shell:
        dm_shell(
            "panel",
            "--input-frames {input.input_frames:q} --masks {input.masks:q} --edit-frames {input.edit_frames:q}"
            " {params.options} --metrics-json {input.metrics_json:q}"
            " --log-csv {input.log_csv:q} --edit-json {input.edit_json:q} --fps {params.fps}"
            " --out-dir {params.out_dir:q}",
        )


rule report_tables:
    """The per-edit metrics and per-variant tables as one HTML page, for the report: the metrics of each
    edit first (edits.csv: id, variant, status, one column per metric), charts and the means, then the
    full summary (prompts, errors of failed rows, costs)."""
    input:
        edits=LAYOUT.table("edits.csv"),
        variants=LAYOUT.table("variants.csv"),
        summary=LAYOUT.table("summary.csv"),
    output:
        html=report(LAYOUT.report_file("tables.html"), caption="../report/tables.rst", category="3. Tables", subcategory="page"),
    log:
        LAYOUT.log("report_tables"),
    params:
        **dm_params("report_tables"),
    shell:
        dm_shell(
            "report-tables",
            "--tables {input.edits:q} {input.variants:q} {input.summary:q} --title 'dreammotion results'"
            " --plot-variants {input.variants:q} --out {output.html:q}",
        )


rule report_benchmark:
    """The benchmark tables as HTML and a bar chart per metric (mean ± std per variant), for the report."""
    input:
        variants=LAYOUT.benchmark_table("variants.csv"),
        summary=LAYOUT.benchmark_table("summary.csv"),
        edits=LAYOUT.benchmark_table("edits.csv"),
        table1=LAYOUT.benchmark_table("table1.csv"),
        table3=LAYOUT.benchmark_table("table3.csv"),
    output:
        html=report(
            LAYOUT.report_file("benchmark/benchmark.html"),
            caption="../report/benchmark.rst",
            category="4. Benchmark",
            subcategory="page",
        ),
        plots=report(
            directory(LAYOUT.report_file("benchmark/plots")),
            patterns=["{metric}.png"],
            caption="../report/benchmark_plot.rst",
            category="4. Benchmark",
            subcategory="plots",
            labels={"metric": "{metric}"},
        ),
    log:
        LAYOUT.log("report_benchmark"),
    params:
        **dm_params("report_benchmark"),
        out_dir=lambda wc, output: os.path.dirname(output.html),
    shell:
        dm_shell(
            "report-benchmark",
            "--tables {input.variants:q} {input.summary:q} {input.edits:q}"
            " --variants {input.variants:q} --paper-tables {input.table1:q} {input.table3:q}"
            " --title 'dreammotion benchmark' --out-dir {params.out_dir:q}",
        )
