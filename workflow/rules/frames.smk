rule frames:
    """Decode a video (or image folder) into model-sized PNG frames, once per video."""
    input:
        video=lambda wc: VIDEOS[wc.video],
    output:
        frames=directory(f"{RESULTS}/frames/{{video}}"),
    log:
        f"{RESULTS}/logs/frames/{{video}}.log",
    params:
        dm=untracked(DM),
        failure=lambda wc: f"{RESULTS}/failures/videos/{wc.video}.frames.json",
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
        "{params.dm} --failure-record {params.failure:q} frames --video {input.video:q} --out {output.frames:q} {params.settings} > {log:q} 2>&1"
