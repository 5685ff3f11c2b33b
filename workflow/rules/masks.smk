rule masks:
    """One mask per frame for one object of one video (shared by the rows that name it)."""
    input:
        frames=f"{RESULTS}/frames/{{video}}",
    output:
        masks=directory(f"{RESULTS}/masks/{{video}}/{{object}}"),
    log:
        f"{RESULTS}/logs/masks/{{video}}/{{object}}.log",
    params:
        dm=untracked(DM),
        failure=lambda wc: f"{RESULTS}/failures/videos/{wc.video}.{wc.object}.masks.json",
        spec=lambda wc: shlex.quote(MASKS[(wc.video, wc.object)]),
        method=lambda wc: mask_method(MASKS[(wc.video, wc.object)]),
        # which rows use this mask, for messages: untracked, so that renaming the manifest or adding
        # a row never reruns finished masks
        context=untracked(lambda wc: shlex.quote(
            "; ".join(f"{r.where}, field 'mask'" for r in MANIFEST if (r.video_key, r.mask_key) == (wc.video, wc.object))
        )),
        sam=lambda wc: (
            f"--sam-checkpoint {shlex.quote(config['masks']['sam']['checkpoint'])} "
            f"--sam-model-type {config['masks']['sam']['model_type']}"
            if config["masks"]["sam"].get("checkpoint") else ""
        ),
        dilate=config["masks"]["dilate"],
        feather=config["masks"]["feather"],
        device=config["model"]["device"],
    shell:
        "{params.dm} --failure-record {params.failure:q} masks --frames {input.frames:q} --spec {params.spec} --method {params.method}"
        " --dilate {params.dilate} --feather {params.feather} {params.sam} --device {params.device}"
        " --context {params.context} --out {output.masks:q} > {log:q} 2>&1"
