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
        settings=lambda wc: " ".join(
            [
                f"--num-frames {config['frames']['num_frames']}",
                f"--height {config['frames']['height']}",
                f"--width {config['frames']['width']}",
                f"--resize {config['frames']['resize']}",
                f"--start {config['frames']['start']}",
            ]
            + ([f"--fps {config['frames']['fps']}"] if config["frames"]["fps"] else [])
        ),
    shell:
        dm_shell("frames", "--video {input.video:q} --out {output.frames:q} {params.settings}")
