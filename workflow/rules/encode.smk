rule encode:
    """VAE-encode the frames of one video once; every row and variant on that video reuses them."""
    input:
        frames=f"{RESULTS}/frames/{{video}}",
    output:
        latents=f"{RESULTS}/latents/{{video}}.safetensors",
    log:
        f"{RESULTS}/logs/encode/{{video}}.log",
    params:
        dm=untracked(DM),
        failure=lambda wc: f"{RESULTS}/failures/videos/{wc.video}.encode.json",
        model_id=model_arg(),  # what the params trigger compares
        model=untracked(model_job_arg()),
    shell:
        "{params.dm} --failure-record {params.failure:q} encode --frames {input.frames:q} --model {params.model} --out {output.latents:q} > {log:q} 2>&1"
