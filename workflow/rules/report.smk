from dreammotion.tables.run_summary import Job, summarise_run


# The report's front page (`snakemake --report results/report.html`).
report: "../report/workflow.rst"



def table_inputs(variants):
    return [f"{RESULTS}/metrics/{v}/{row.id}.json" for v in variants for row in MANIFEST]


def run_jobs(variants):
    return [
        Job(row.id, v, row.video_key, row.mask_key, row.source_prompt, row.target_prompt)
        for v in variants
        for row in MANIFEST
    ]


TABLE_FILES = ["summary.csv", "summary.md", "edits.csv", "edits.md", "edits.tex", "variants.csv", "variants.md", "variants.tex"]


# Tables offered for download in the report (tables.html shows them inline).
REPORTED_TABLES = ("summary.csv", "summary.md", "variants.csv")


def table_output(name):
    path = f"{RESULTS}/tables/{name}"
    if name not in REPORTED_TABLES:
        return path
    return report(path, caption="../report/table_file.rst", category="3. Tables", subcategory="files", labels={"file": name})


rule summary:
    """One row per edit of the variants the default target builds, and their means."""
    input:
        metrics=table_inputs(config["run_variants"]),
    output:
        [table_output(name) for name in TABLE_FILES],
    log:
        f"{RESULTS}/logs/tables/summary.log",
    params:
        out_dir=f"{RESULTS}/tables",
    shell:
        "{DM} tables --metrics {input.metrics:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule tables:
    """Every variant (method and ablations) over the whole manifest: `snakemake tables`."""
    input:
        metrics=table_inputs(list(config["variants"])),
    output:
        [f"{RESULTS}/benchmark/{name}" for name in TABLE_FILES],
    log:
        f"{RESULTS}/logs/tables/benchmark.log",
    params:
        out_dir=f"{RESULTS}/benchmark",
    shell:
        "{DM} tables --metrics {input.metrics:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"


def write_partial_summary():
    """After a run with failed jobs: list every row, failed ones with the reason."""
    written = summarise_run(RESULTS, run_jobs(config["run_variants"]), f"{RESULTS}/tables")
    print(f"dreammotion: some jobs failed; {RESULTS}/tables/summary.md lists every row and why it failed")
    return written


# ----------------------------------------------------------------------------------------------------------
# Report: one panel page per edit (input | mask | edit | upsampled, loss curves) and the tables as HTML.
# `snakemake --report results/report.html` after a run collects every output wrapped in report(...).
# ----------------------------------------------------------------------------------------------------------


def report_dir(variant, row_id):
    return f"{RESULTS}/report/{variant}/{row_id}"


def report_targets(variants=None):
    """What the report shows beyond the workflow's own outputs: panels per edit and the tables page."""
    variants = variants or config["run_variants"]
    targets = [f"{report_dir(v, row.id)}/panel.html" for v in variants for row in MANIFEST]
    return targets + [f"{RESULTS}/report/tables.html"]


def panel_inputs(wc):
    row = ROWS[wc.id]
    inputs = {
        "input_frames": f"{RESULTS}/frames/{row.video_key}",
        "masks": f"{RESULTS}/masks/{row.video_key}/{row.mask_key}",
        "edit_frames": f"{edit_dir(wc.variant, wc.id)}/frames",
        "log_csv": f"{edit_dir(wc.variant, wc.id)}/log.csv",
        "edit_json": f"{edit_dir(wc.variant, wc.id)}/edit.json",
    }
    if config["upsample"]["method"] != "none":
        inputs["upsampled_frames"] = f"{RESULTS}/upsampled/{wc.variant}/{wc.id}/frames"
        inputs["upsample_json"] = f"{RESULTS}/upsampled/{wc.variant}/{wc.id}/upsample.json"
    return inputs


def upsampled_options(wc, input):
    if "upsampled_frames" not in input.keys():
        return ""
    return f"--upsampled-frames {shlex.quote(input.upsampled_frames)} --upsample-json {shlex.quote(input.upsample_json)}"


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
    log:
        f"{RESULTS}/logs/report/panel/{{variant}}/{{id}}.log",
    params:
        source_prompt=lambda wc: ROWS[wc.id].source_prompt,  # shown by the captions
        target_prompt=lambda wc: ROWS[wc.id].target_prompt,
        upsampled=upsampled_options,
        fps=config["frames"]["output_fps"],
        out_dir=lambda wc: report_dir(wc.variant, wc.id),
    shell:
        "{DM} --failure-record {RESULTS}/failures/{wildcards.variant}/{wildcards.id}.panel.json panel"
        " --input-frames {input.input_frames:q} --masks {input.masks:q} --edit-frames {input.edit_frames:q}"
        " {params.upsampled} --log-csv {input.log_csv:q} --edit-json {input.edit_json:q} --fps {params.fps}"
        " --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule report_tables:
    """The summary and per-variant tables as one HTML page, for the report."""
    input:
        summary=f"{RESULTS}/tables/summary.csv",
        variants=f"{RESULTS}/tables/variants.csv",
    output:
        html=report(f"{RESULTS}/report/tables.html", caption="../report/tables.rst", category="3. Tables", subcategory="page"),
    log:
        f"{RESULTS}/logs/report/tables.log",
    shell:
        "{DM} report-tables --tables {input.summary:q} {input.variants:q} --title 'dreammotion results'"
        " --out {output.html:q} > {log:q} 2>&1"
