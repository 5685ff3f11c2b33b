rule upsample:
    """Cascade upsampling of one edited clip (upsample.method: resize, v2v or interpolate+sr)."""
    input:
        frames=rules.decode.output.frames,
    output:
        frames=directory(LAYOUT.upsampled_frames("{variant}", "{id}")),
        video=LAYOUT.upsampled_video("{variant}", "{id}"),
        info=LAYOUT.upsample_record("{variant}", "{id}"),
    log:
        LAYOUT.log("upsample", variant="{variant}", id="{id}"),
    message:
        "upsample {wildcards.variant}/{wildcards.id}: {params.method}; follow its log with: tail -f {log}"
    params:
        **dm_params("upsample"),
        method=config["upsample"]["method"],
        settings=as_arg(config["upsample"]),  # every upsample key, as one settings object (dreammotion.upsample.config)
        model_id=upsample_model_option(),  # what the params trigger compares
        model=untracked(upsample_model_option(for_jobs=True)),
        prompt=lambda wc: shlex.quote(ROWS[wc.id].target_prompt),
        seed=lambda wc: ROWS[wc.id].seed,
        fps=config["frames"]["output_fps"],
        out_dir=lambda wc: LAYOUT.upsampled_dir(wc.variant, wc.id),
        gpus=f"--local-gpus {config['local_gpus']} --gpu-lock-dir {LAYOUT.gpu_locks()}",
    shell:
        dm_shell(
            "upsample",
            "{params.gpus} --frames {input.frames:q} --out-dir {params.out_dir:q} --config {params.settings}"
            " {params.model} --prompt {params.prompt} --seed {params.seed} --fps {params.fps} --no-progress",
        )
