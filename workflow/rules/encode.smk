rule encode:
    """VAE-encode the frames of one video once; every row and variant on that video reuses them."""
    input:
        frames=f"{RESULTS}/frames/{{video}}",
    output:
        latents=f"{RESULTS}/latents/{{video}}.safetensors",
    log:
        f"{RESULTS}/logs/encode/{{video}}.log",
    params:
        model=model_arg(),
    shell:
        "{DM} --failure-record {RESULTS}/failures/videos/{wildcards.video}.encode.json encode --frames {input.frames:q} --model {params.model} --out {output.latents:q} > {log:q} 2>&1"
