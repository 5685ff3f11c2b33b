rule ground_truth_frames:
    """The true edited clip of a synthetic row, decoded exactly like the input video."""
    input:
        video=lambda wc: ROWS[wc.id].ground_truth_path,
    output:
        frames=directory(LAYOUT.ground_truth("{id}")),
    log:
        LAYOUT.log("ground_truth_frames", id="{id}"),
    params:
        **dm_params("ground_truth_frames"),
        settings=rules.frames.params.settings,
    shell:
        dm_shell("frames", "--video {input.video:q} --out {output.frames:q} {params.settings}")


rule ground_truth_upsampled_frames:
    """The true edited clip of a synthetic row at the cascade's output size (manifest ground_truth_upsampled)."""
    input:
        video=lambda wc: ROWS[wc.id].ground_truth_upsampled_path,
    output:
        frames=directory(LAYOUT.ground_truth_upsampled("{id}")),
    log:
        LAYOUT.log("ground_truth_upsampled_frames", id="{id}"),
    params:
        **dm_params("ground_truth_upsampled_frames"),
        settings=frames_settings(*upsampled_size()),
    shell:
        dm_shell("frames", "--video {input.video:q} --out {output.frames:q} {params.settings}")


rule ground_truth_interpolated_frames:
    """The true edited clip of a synthetic row for interpolate+sr (manifest ground_truth_interpolated): at the
    cascade's output size and the row's k times the frame rate, decoded as what it is (its k, not the
    config's: a mismatch reads missing in the metrics, with the frame counts)."""
    input:
        video=lambda wc: ROWS[wc.id].ground_truth_interpolated_path,
    output:
        frames=directory(LAYOUT.ground_truth_interpolated("{id}")),
    log:
        LAYOUT.log("ground_truth_interpolated_frames", id="{id}"),
    params:
        **dm_params("ground_truth_interpolated_frames"),
        settings=lambda wc: frames_settings(*upsampled_size(),
                                            frame_rate_factor=ROWS[wc.id].ground_truth_interpolation_factor),
    shell:
        dm_shell("frames", "--video {input.video:q} --out {output.frames:q} {params.settings}")


rule metrics:
    """CLIP, perceptual distance (LPIPS or its named substitute), motion fidelity and (synthetic rows)
    ground-truth metrics of one edit."""
    input:
        unpack(metrics_inputs),
    output:
        metrics=LAYOUT.metrics("{variant}", "{id}"),
    log:
        LAYOUT.log("metrics", variant="{variant}", id="{id}"),
    message:
        "metrics {wildcards.variant}/{wildcards.id}: follow its log with: tail -f {log}"
    params:
        **dm_params("metrics"),
        target=lambda wc: shlex.quote(ROWS[wc.id].target_prompt),
        ground_truth=lambda wc, input: f"--ground-truth {shlex.quote(input.ground_truth)}" if "ground_truth" in input.keys() else "",
        gt_masks=lambda wc, input: f"--gt-masks {shlex.quote(input.gt_masks)}" if "gt_masks" in input.keys() else "",
        upsampled=metrics_upsampled_options,
        labels=lambda wc: " ".join(
            f"--{flag} {shlex.quote(value)}"
            for flag, value in (("edit-kind", ROWS[wc.id].edit_kind), ("suite", ROWS[wc.id].suite))
            if value
        ),
        settings=as_arg(config["metrics"]),  # what the params trigger compares
        settings_job=untracked(metrics_job_arg()),
    shell:
        dm_shell(
            "metrics",
            "--input-frames {input.input_frames:q} --edit-frames {input.edit_frames:q}"
            " --masks {input.masks:q} --target-prompt {params.target} {params.ground_truth} {params.gt_masks} {params.upsampled} {params.labels}"
            " --edit-json {input.info:q} --id {wildcards.id} --variant {wildcards.variant} --config {params.settings_job} --out {output.metrics:q}",
        )
