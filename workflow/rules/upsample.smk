rule upsample:
    """Cascade upsampling of one edited clip (upsample.method: resize, v2v or interpolate+sr)."""
    input:
        frames=rules.decode.output.frames,
    output:
        frames=directory(LAYOUT.upsampled_file("{variant}", "{id}", "frames")),
        video=LAYOUT.upsampled_file("{variant}", "{id}", "video.mp4"),
        info=LAYOUT.upsampled_file("{variant}", "{id}", "upsample.json"),
    log:
        LAYOUT.log("upsample", variant="{variant}", id="{id}"),
    message:
        "upsample {wildcards.variant}/{wildcards.id}: {params.method}; follow its log with: tail -f {log}"
    params:
        **dm_params("upsample"),
        method=shlex.quote(config["upsample"]["method"]),
        scale=config["upsample"]["scale"],
        model_id=upsample_model_option(),  # what the params trigger compares
        model=untracked(upsample_model_option(for_jobs=True)),
        prompt=lambda wc: shlex.quote(ROWS[wc.id].target_prompt),
        seed=lambda wc: ROWS[wc.id].seed,
        v2v=v2v_options(),  # strength, steps, guidance: those the config sets; else the model's own
        interpolation_factor=config["upsample"]["interpolation_factor"],
        fps=config["frames"]["output_fps"],
        options=upsample_options(),
        out_dir=lambda wc: LAYOUT.upsampled_dir(wc.variant, wc.id),
        gpus=f"--local-gpus {config['local_gpus']} --gpu-lock-dir {LAYOUT.gpu_locks()}",
    shell:
        dm_shell(
            "upsample",
            "{params.gpus} --frames {input.frames:q} --out-dir {params.out_dir:q} --method {params.method}"
            " --scale {params.scale} {params.model} --prompt {params.prompt} --seed {params.seed}"
            " {params.v2v}"
            " --interpolation-factor {params.interpolation_factor} --fps {params.fps} {params.options}"
            " --no-progress",
        )
