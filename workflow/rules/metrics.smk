rule ground_truth_frames:
    """The true edited clip of a synthetic row, decoded exactly like the input video."""
    input:
        video=lambda wc: ROWS[wc.id].ground_truth_path,
    output:
        frames=directory(f"{RESULTS}/ground_truth/{{id}}"),
    log:
        f"{RESULTS}/logs/ground_truth/{{id}}.log",
    params:
        dm=untracked(DM),
        settings=rules.frames.params.settings,
    shell:
        "{params.dm} frames --video {input.video:q} --out {output.frames:q} {params.settings} > {log:q} 2>&1"


rule metrics:
    """CLIP, LPIPS, motion fidelity and (synthetic rows) ground-truth metrics of one edit."""
    input:
        unpack(metrics_inputs),
    output:
        metrics=f"{RESULTS}/metrics/{{variant}}/{{id}}.json",
    log:
        f"{RESULTS}/logs/metrics/{{variant}}/{{id}}.log",
    message:
        "metrics {wildcards.variant}/{wildcards.id}: follow its log with: tail -f {log}"
    params:
        dm=untracked(DM),
        failure=lambda wc: f"{RESULTS}/failures/{wc.variant}/{wc.id}.metrics.json",
        target=lambda wc: shlex.quote(ROWS[wc.id].target_prompt),
        ground_truth=lambda wc, input: f"--ground-truth {shlex.quote(input.ground_truth)}" if "ground_truth" in input.keys() else "",
        settings=as_arg(config["metrics"]),
    shell:
        "{params.dm} --failure-record {params.failure:q} metrics --input-frames {input.input_frames:q} --edit-frames {input.edit_frames:q}"
        " --masks {input.masks:q} --target-prompt {params.target} {params.ground_truth}"
        " --edit-json {input.info:q} --id {wildcards.id} --variant {wildcards.variant} --config {params.settings} --out {output.metrics:q} > {log:q} 2>&1"
