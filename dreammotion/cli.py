"""``python -m dreammotion <stage> ...``: the command line the workflow rules call.

Each stage lives in its own module, which provides ``add_arguments(parser)`` and ``run(args)``;
modules are imported lazily so that ``dreammotion frames`` does not pay for importing torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from dreammotion.errors import DreamMotionError

STAGES = {
    "frames": ("dreammotion.io.cli", "decode a video (or image folder) into model-sized PNG frames"),
    "masks": ("dreammotion.masks.cli", "one mask per frame from a manifest mask spec"),
    "encode": ("dreammotion.edit.cli_encode", "VAE-encode frames to latents"),
    "edit": ("dreammotion.edit.cli_edit", "DreamMotion optimisation of one manifest row"),
    "decode": ("dreammotion.edit.cli_decode", "decode edited latents to frames, video and side-by-side"),
    "upsample": ("dreammotion.upsample.cli", "cascade upsampling of an edited clip"),
    "metrics": ("dreammotion.metrics.cli", "metrics of one edit"),
    "tables": ("dreammotion.tables.cli", "summary, benchmark and ablation tables"),
    "suite": ("dreammotion.synthetic.suite", "render the synthetic edit suite with ground truth"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dreammotion", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    argv = sys.argv[1:] if argv is None else argv
    wanted = argv[0] if argv and argv[0] in STAGES else None
    modules = {}
    for name, (module_name, help_text) in STAGES.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:  # import only the stage that runs
            modules[name] = importlib.import_module(module_name)
            modules[name].add_arguments(p)
    args = parser.parse_args(argv)
    try:
        return int(modules[args.stage].run(args) or 0)
    except (DreamMotionError, FileNotFoundError) as err:
        print(f"dreammotion {args.stage}: error: {err}", file=sys.stderr)
        return 1
