"""``python -m dreammotion <stage> ...``: the command line the workflow rules call.

Each stage lives in its own module, which provides ``add_arguments(parser)`` and ``run(args)``;
modules are imported lazily so that ``dreammotion frames`` does not pay for importing torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from dreammotion.errors import DreamMotionError

STAGES = {
    "frames": ("dreammotion.io.cli", "decode a video (or image folder) into model-sized PNG frames"),
    "masks": ("dreammotion.masks.cli", "one mask per frame from a manifest mask spec"),
    "encode": ("dreammotion.edit.cli_encode", "VAE-encode frames to latents"),
    "edit": ("dreammotion.edit.cli_edit", "DreamMotion optimisation of one manifest row"),
    "edit-batch": ("dreammotion.edit.cli_edit_batch", "DreamMotion optimisation of several rows as one batch"),
    "decode": ("dreammotion.edit.cli_decode", "decode edited latents to frames, video and side-by-side"),
    "upsample": ("dreammotion.upsample.cli", "cascade upsampling of an edited clip"),
    "metrics": ("dreammotion.metrics.cli", "metrics of one edit"),
    "tables": ("dreammotion.tables.cli", "summary, benchmark and ablation tables"),
    "panel": ("dreammotion.report.cli_panel", "side-by-side panel, loss curves and HTML page of one edit"),
    "report-tables": ("dreammotion.report.cli_tables", "the result tables as an HTML page for the report"),
    "report-benchmark": ("dreammotion.report.cli_benchmark", "the benchmark tables and bar charts per metric, for the report"),
    "edit-quality": ("dreammotion.synthetic.edit_quality", "edit quality on the synthetic suite against ground truth"),
    "suite": ("dreammotion.synthetic.suite", "render the synthetic edit suite with ground truth"),
    "check-config": ("dreammotion.validate", "check config files' YAML, naming the file and line of an error"),
}


def version() -> str:
    """The installed distribution's version; the package's own ``__version__`` when not installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as distribution_version

    try:
        return distribution_version("dreammotion")
    except PackageNotFoundError:
        import dreammotion

        return dreammotion.__version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dreammotion", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"dreammotion {version()}")
    parser.add_argument(
        "--failure-record",
        metavar="JSON",
        help="if the stage fails, write its error here (the run summary lists failed rows and why)",
    )
    sub = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    argv = sys.argv[1:] if argv is None else argv
    wanted = next((a for a in argv if a in STAGES), None)
    modules = {}
    for name, (module_name, help_text) in STAGES.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:  # import only the stage that runs
            modules[name] = importlib.import_module(module_name)
            modules[name].add_arguments(p)
    args = parser.parse_args(argv)
    record = Path(args.failure_record) if args.failure_record else None
    if record is not None:
        record.unlink(missing_ok=True)  # a stale record from an earlier failed attempt
    try:
        return int(modules[args.stage].run(args) or 0)
    except (DreamMotionError, FileNotFoundError) as err:
        print(f"dreammotion {args.stage}: error: {err}", file=sys.stderr)
        _write_failure(record, args.stage, err, argv)
        return 1
    except Exception as err:  # a bug or an unexpected fault: keep the traceback, still record the row
        _write_failure(record, args.stage, err, argv)
        raise


def _write_failure(record: Path | None, stage: str, err: BaseException, argv: list[str]) -> None:
    if record is None:
        return
    from dreammotion.records import failure_record
    from dreammotion.utils.atomic import write_json

    write_json(record, failure_record(stage, err, argv))
