rule edit:
    """DreamMotion optimisation of one row under one method variant (resumes from its checkpoint)."""
    input:
        unpack(row_inputs),
    output:
        latents=f"{RESULTS}/edits/{{variant}}/{{id}}/latents.safetensors",
        log_csv=f"{RESULTS}/edits/{{variant}}/{{id}}/log.csv",
        info=f"{RESULTS}/edits/{{variant}}/{{id}}/edit.json",
    log:
        f"{RESULTS}/logs/edit/{{variant}}/{{id}}.log",
    message:
        "edit {wildcards.variant}/{wildcards.id}: a progress line every {params.progress_every} iterations"
        " goes to its log; follow it with: tail -f {log}"
    params:
        dm=untracked(DM),
        progress_every=10,
        failure=lambda wc: f"{RESULTS}/failures/{wc.variant}/{wc.id}.edit.json",
        method=lambda wc: variant_method(wc.variant),
        source=lambda wc: shlex.quote(ROWS[wc.id].source_prompt),
        target=lambda wc: shlex.quote(ROWS[wc.id].target_prompt),
        settings=lambda wc: as_arg(edit_settings(wc.variant, wc.id)),
        sdedit=lambda wc: as_arg({k: v for k, v in config["variants"][wc.variant].items() if k in ("strength", "steps")}),
        model_id=model_arg(),  # what the params trigger compares
        model=untracked(model_job_arg()),
        checkpoint=f"{RESULTS}/checkpoints/{{variant}}/{{id}}.pt",
        prompt_cache=f"{RESULTS}/latents/prompts",
        out_dir=lambda wc: edit_dir(wc.variant, wc.id),
        gpus=f"--local-gpus {config['local_gpus']} --gpu-lock-dir {RESULTS}/.gpu-locks",
    shell:
        "{params.dm} --failure-record {params.failure:q} edit {params.gpus} --method {params.method} --latents {input.latents:q} --masks {input.masks:q}"
        " --source-prompt {params.source} --target-prompt {params.target}"
        " --model {params.model} --settings {params.settings} --sdedit {params.sdedit}"
        " --checkpoint {params.checkpoint:q} --prompt-cache {params.prompt_cache:q}"
        " --id {wildcards.id} --variant {wildcards.variant} --out-dir {params.out_dir:q}"
        " --progress-every {params.progress_every} > {log:q} 2>&1"


rule decode:
    """Edited latents -> frames, video.mp4, and compare.mp4 (input | edit)."""
    input:
        latents=f"{RESULTS}/edits/{{variant}}/{{id}}/latents.safetensors",
        frames=lambda wc: row_inputs(wc)["frames"],
    output:
        frames=directory(f"{RESULTS}/edits/{{variant}}/{{id}}/frames"),
        video=f"{RESULTS}/edits/{{variant}}/{{id}}/video.mp4",
        compare=f"{RESULTS}/edits/{{variant}}/{{id}}/compare.mp4",
    log:
        f"{RESULTS}/logs/decode/{{variant}}/{{id}}.log",
    params:
        dm=untracked(DM),
        failure=lambda wc: f"{RESULTS}/failures/{wc.variant}/{wc.id}.decode.json",
        model_id=model_arg(),  # what the params trigger compares
        model=untracked(model_job_arg()),
        fps=config["frames"]["output_fps"],
        out_dir=lambda wc: edit_dir(wc.variant, wc.id),
    shell:
        "{params.dm} --failure-record {params.failure:q} decode --latents {input.latents:q} --input-frames {input.frames:q} --model {params.model}"
        " --fps {params.fps} --out-dir {params.out_dir:q} > {log:q} 2>&1"
