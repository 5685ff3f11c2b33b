rule masks:
    """One mask per frame for one object of one video (shared by the rows that name it)."""
    input:
        frames=rules.frames.output.frames,
    output:
        masks=directory(LAYOUT.masks("{video}", "{object}")),
    log:
        LAYOUT.log("masks", video="{video}", object="{object}"),
    params:
        **dm_params("masks"),
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
        dm_shell(
            "masks",
            "--frames {input.frames:q} --spec {params.spec} --method {params.method}"
            " --dilate {params.dilate} --feather {params.feather} {params.sam} --device {params.device}"
            " --context {params.context} --out {output.masks:q}",
        )
