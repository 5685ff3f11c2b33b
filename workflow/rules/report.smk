from dreammotion.tables.run_summary import Job, summarise_run


def table_inputs(variants):
    return [f"{RESULTS}/metrics/{v}/{row.id}.json" for v in variants for row in MANIFEST]


def run_jobs(variants):
    return [
        Job(row.id, v, row.video_key, row.mask_key, row.source_prompt, row.target_prompt)
        for v in variants
        for row in MANIFEST
    ]


TABLE_FILES = ["summary.csv", "summary.md", "edits.csv", "edits.md", "edits.tex", "variants.csv", "variants.md", "variants.tex"]


rule summary:
    """One row per edit of the variants the default target builds, and their means."""
    input:
        metrics=table_inputs(config["run_variants"]),
    output:
        [f"{RESULTS}/tables/{name}" for name in TABLE_FILES],
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
