rule frames:
    """Decode a video (or image folder) into model-sized PNG frames, once per video."""
    input:
        video=lambda wc: VIDEOS[wc.video],
    output:
        frames=directory(LAYOUT.frames("{video}")),
    log:
        LAYOUT.log("frames", video="{video}"),
    params:
        **dm_params("frames"),
        settings=frames_settings(),
    shell:
        dm_shell("frames", "--video {input.video:q} --out {output.frames:q} {params.settings}")
