rule encode:
    """VAE-encode the frames of one video once; every row and variant on that video reuses them."""
    input:
        frames=rules.frames.output.frames,
    output:
        latents=LAYOUT.latents("{video}"),
    log:
        LAYOUT.log("encode", video="{video}"),
    params:
        **dm_params("encode"),
        model_id=model_arg(),  # what the params trigger compares
        model=untracked(model_job_arg()),
    shell:
        dm_shell("encode", "--frames {input.frames:q} --model {params.model} --out {output.latents:q}")
