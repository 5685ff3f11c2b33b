def table_inputs(variants):
    return [f"{RESULTS}/metrics/{v}/{row.id}.json" for v in variants for row in MANIFEST]


rule summary:
    """One row per edit of the variants the default target builds."""
    input:
        metrics=table_inputs(config["run_variants"]),
    output:
        csv=f"{RESULTS}/tables/summary.csv",
        md=f"{RESULTS}/tables/summary.md",
    log:
        f"{RESULTS}/logs/tables/summary.log",
    params:
        out_dir=f"{RESULTS}/tables",
    shell:
        "{DM} tables --metrics {input.metrics:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule tables:
    """Every variant over the whole manifest: per-edit and per-variant (mean +- std) tables."""
    input:
        metrics=table_inputs(list(config["variants"])),
    output:
        csv=f"{RESULTS}/tables/variants.csv",
        md=f"{RESULTS}/tables/variants.md",
        tex=f"{RESULTS}/tables/variants.tex",
    log:
        f"{RESULTS}/logs/tables/variants.log",
    params:
        out_dir=f"{RESULTS}/tables",
    shell:
        "{DM} tables --metrics {input.metrics:q} --out-dir {params.out_dir:q} --name variants > {log:q} 2>&1"
