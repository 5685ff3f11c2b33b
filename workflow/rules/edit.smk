rule edit:
    """DreamMotion optimisation of one row under one method variant (resumes from its checkpoint)."""
    input:
        unpack(row_inputs),
    output:
        **LAYOUT.edit_outputs("{variant}", "{id}"),
    log:
        LAYOUT.log("edit", variant="{variant}", id="{id}"),
    message:
        "edit {wildcards.variant}/{wildcards.id}: a progress line every {params.progress_every} iterations"
        " goes to its log; follow it with: tail -f {log}"
    params:
        **dm_params("edit"),
        progress_every=10,
        method=lambda wc: variant_method(wc.variant),
        source=lambda wc: shlex.quote(ROWS[wc.id].source_prompt),
        target=lambda wc: shlex.quote(ROWS[wc.id].target_prompt),
        settings=lambda wc: as_arg(edit_settings(wc.variant, wc.id)),
        sdedit=lambda wc: as_arg(sdedit_settings(config["variants"][wc.variant])),
        model_id=model_arg(),  # what the params trigger compares
        model=untracked(model_job_arg()),
        checkpoint=LAYOUT.checkpoint("{variant}", "{id}"),
        prompt_cache=LAYOUT.prompt_cache(),
        out_dir=lambda wc: edit_dir(wc.variant, wc.id),
        gpus=f"--local-gpus {config['local_gpus']} --gpu-lock-dir {LAYOUT.gpu_locks()}",
    shell:
        dm_shell(
            "edit",
            "{params.gpus} --method {params.method} --latents {input.latents:q} --masks {input.masks:q}"
            " --source-prompt {params.source} --target-prompt {params.target}"
            " --model {params.model} --settings {params.settings} --sdedit {params.sdedit}"
            " --checkpoint {params.checkpoint:q} --prompt-cache {params.prompt_cache:q}"
            " --id {wildcards.id} --variant {wildcards.variant} --out-dir {params.out_dir:q}"
            " --progress-every {params.progress_every}",
        )


if EDIT_BATCHES:

    ruleorder: edit_from_batch > edit

    localrules:
        edit_from_batch,

    rule edit_batch:
        """DreamMotion optimisation of several rows as one batch (`edit_batch_size`): one GPU job, each
        row's result (or failure) staged in its own folder for the row's edit job to take over."""
        input:
            unpack(batch_inputs),
        output:
            batch=directory(LAYOUT.edit_batch_dir("{variant}", "{batch}")),
        log:
            LAYOUT.log("edit_batch", variant="{variant}", batch="{batch}"),
        wildcard_constraints:
            variant=batched_variants_pattern(),
            batch=r"b[0-9]+",
        message:
            "edit {wildcards.variant}/{wildcards.batch}: several rows optimised together; follow it with: tail -f {log}"
        params:
            **dm_params("edit_batch"),
            progress_every=10,
            jobs=batch_jobs,
            model_id=model_arg(),  # what the params trigger compares
            model=untracked(model_job_arg()),
            prompt_cache=LAYOUT.prompt_cache(),
            gpus=f"--local-gpus {config['local_gpus']} --gpu-lock-dir {LAYOUT.gpu_locks()}",
        shell:
            dm_shell(
                "edit-batch",
                "{params.gpus} --jobs {params.jobs} --model {params.model} --variant {wildcards.variant}"
                " --record {output.batch:q}/batch.json --prompt-cache {params.prompt_cache:q}"
                " --progress-every {params.progress_every}",
            )

    rule edit_from_batch:
        """A batched row's edit: its batch job's staged result taken over (a copy, on the submitting
        machine), or the failure the batch job recorded for it."""
        input:
            unpack(row_inputs),
            batch=lambda wc: LAYOUT.edit_batch_dir(wc.variant, ROW_BATCH[(wc.variant, wc.id)]),
        output:
            **LAYOUT.edit_outputs("{variant}", "{id}"),
        log:
            LAYOUT.log("edit", variant="{variant}", id="{id}"),
        wildcard_constraints:
            variant=batched_variants_pattern(),
        params:
            **dm_params("edit"),
            source=lambda wc: shlex.quote(ROWS[wc.id].source_prompt),
            target=lambda wc: shlex.quote(ROWS[wc.id].target_prompt),
            settings=lambda wc: as_arg(edit_settings(wc.variant, wc.id)),
            model=untracked(model_job_arg()),
            checkpoint=LAYOUT.checkpoint("{variant}", "{id}"),
            out_dir=lambda wc: edit_dir(wc.variant, wc.id),
        shell:
            dm_shell(
                "edit",
                "--staged {input.batch:q}/{wildcards.id} --staged-only --latents {input.latents:q}"
                " --masks {input.masks:q} --source-prompt {params.source} --target-prompt {params.target}"
                " --model {params.model} --settings {params.settings} --checkpoint {params.checkpoint:q}"
                " --id {wildcards.id} --variant {wildcards.variant} --out-dir {params.out_dir:q}",
            )


rule decode:
    """Edited latents -> frames, video.mp4, and compare.mp4 (input | edit)."""
    input:
        latents=rules.edit.output.latents,
        frames=lambda wc: row_inputs(wc)["frames"],
    output:
        frames=directory(LAYOUT.edit_frames("{variant}", "{id}")),
        video=LAYOUT.edit_video("{variant}", "{id}"),
        compare=LAYOUT.edit_compare("{variant}", "{id}"),
    log:
        LAYOUT.log("decode", variant="{variant}", id="{id}"),
    params:
        **dm_params("decode"),
        model_id=model_arg(),  # what the params trigger compares
        model=untracked(model_job_arg()),
        fps=config["frames"]["output_fps"],
        out_dir=lambda wc: edit_dir(wc.variant, wc.id),
    shell:
        dm_shell(
            "decode",
            "--latents {input.latents:q} --input-frames {input.frames:q} --model {params.model}"
            " --fps {params.fps} --out-dir {params.out_dir:q}",
        )
