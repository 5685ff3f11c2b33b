def upsample_model_option():
    """--model with the second-stage settings, or nothing (interpolate+sr then resizes with Lanczos)."""
    settings = config["upsample"]
    if not settings["pretrained"]:
        return ""
    model = {key: config["model"][key] for key in ("backend", "device", "dtype")}
    model.update({key: settings[key] for key in ("revision", "variant") if settings.get(key)})
    model["pretrained"] = settings["pretrained"]
    return f"--model {as_arg(model)}"


def upsample_options():
    """Optional settings (proposed schema keys; absent keys keep the CLI defaults)."""
    settings = config["upsample"]
    options = []
    if settings.get("height") and settings.get("width"):
        options.append(f"--height {int(settings['height'])} --width {int(settings['width'])}")
    if settings.get("cpu_offload"):
        options.append("--cpu-offload")
    if settings.get("vae_chunk"):
        options.append(f"--vae-chunk {int(settings['vae_chunk'])}")
    if settings.get("interpolation_model"):
        options.append(f"--interpolation-model {shlex.quote(str(settings['interpolation_model']))}")
    if settings.get("interpolation_substitute"):
        options.append(f"--interpolation-substitute {shlex.quote(settings['interpolation_substitute'])}")
    return " ".join(options)


rule upsample:
    """Cascade upsampling of one edited clip (upsample.method: resize, v2v or interpolate+sr)."""
    input:
        frames=f"{RESULTS}/edits/{{variant}}/{{id}}/frames",
    output:
        frames=directory(f"{RESULTS}/upsampled/{{variant}}/{{id}}/frames"),
        video=f"{RESULTS}/upsampled/{{variant}}/{{id}}/video.mp4",
        info=f"{RESULTS}/upsampled/{{variant}}/{{id}}/upsample.json",
    log:
        f"{RESULTS}/logs/upsample/{{variant}}/{{id}}.log",
    params:
        method=shlex.quote(config["upsample"]["method"]),
        scale=config["upsample"]["scale"],
        model=upsample_model_option(),
        prompt=lambda wc: shlex.quote(ROWS[wc.id].target_prompt),
        seed=lambda wc: ROWS[wc.id].seed,
        strength=config["upsample"]["strength"],
        steps=config["upsample"]["steps"],
        guidance_scale=config["upsample"]["guidance_scale"],
        interpolation_factor=config["upsample"]["interpolation_factor"],
        fps=config["frames"]["output_fps"],
        options=upsample_options(),
        out_dir=lambda wc: f"{RESULTS}/upsampled/{wc.variant}/{wc.id}",
        gpus=f"--local-gpus {config['local_gpus']} --gpu-lock-dir {RESULTS}/.gpu-locks",
    shell:
        "{DM} upsample {params.gpus} --frames {input.frames:q} --out-dir {params.out_dir:q} --method {params.method}"
        " --scale {params.scale} {params.model} --prompt {params.prompt} --seed {params.seed}"
        " --strength {params.strength} --steps {params.steps} --guidance-scale {params.guidance_scale}"
        " --interpolation-factor {params.interpolation_factor} --fps {params.fps} {params.options}"
        " --no-progress > {log:q} 2>&1"
