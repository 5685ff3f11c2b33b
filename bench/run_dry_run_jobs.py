"""Run the `python -m dreammotion ...` jobs of a Snakemake dry run in a few long-lived processes.

On a 2-core machine, the benchmark's ~950 small jobs (take over a batch's result, decode, metrics)
each spend most of their few seconds starting an interpreter and importing torch: about 50 minutes
for work that takes a fraction of that. This runs the very commands the dry run printed
(`snakemake -n -p ... > dry.log`), each through `dreammotion.cli.main` with its own log file, in
`--workers` processes that import once; one rule after another (`--rules`, in dependency order), rows
in parallel. Afterwards `snakemake` finds the outputs in place and runs only what is left (the
tables). Snakemake keeps no record of these jobs (their params and code are not tracked for them).

    snakemake -n -p --configfile config/benchmark.yaml --config edit_batch_size=48 tables > /tmp/dry.log
    python bench/run_dry_run_jobs.py /tmp/dry.log --rules edit_from_batch ground_truth_frames decode metrics
    snakemake --configfile config/benchmark.yaml --config edit_batch_size=48 tables
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import re
import shlex
import sys
import time
from pathlib import Path

JOB = re.compile(r"^(?:local)?rule (\w+):$|^Job \d+: (\w+) ")


def read_jobs(dry_run: Path) -> list[tuple[str, list[str], str]]:
    """(rule, argv after `-m dreammotion`, log file) of every dreammotion job the dry run printed."""
    jobs, rule = [], None
    for line in dry_run.read_text().splitlines():
        match = JOB.match(line)
        if match:
            rule = match.group(1) or match.group(2)
        elif line.startswith("Shell command: ") and "-m dreammotion" in line and rule:
            command, _, log = line[len("Shell command: "):].partition(" > ")
            words = shlex.split(command)
            jobs.append((rule, words[words.index("-m") + 2:], shlex.split(log)[0].removesuffix(" 2>&1")))
            rule = None
    return jobs


def run_job(job: tuple[str, list[str], str]) -> tuple[str, int, str]:
    from dreammotion.cli import main

    rule, argv, log = job
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as handle, contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
        try:
            code = main(argv)
        except BaseException as err:  # noqa: BLE001  (a failed job fails alone, as under Snakemake)
            print(f"{type(err).__name__}: {err}", file=handle)
            code = 1
    return rule, code, log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dry_run", type=Path, help="output of `snakemake -n -p ...`")
    parser.add_argument("--rules", nargs="+", required=True, help="rules to run, in dependency order")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    jobs = read_jobs(args.dry_run)
    failed = 0
    with multiprocessing.get_context("fork").Pool(args.workers, maxtasksperchild=200) as pool:
        for rule in args.rules:
            todo = [job for job in jobs if job[0] == rule]
            started = time.perf_counter()
            results = pool.map(run_job, todo, chunksize=4)
            bad = [log for _, code, log in results if code != 0]
            failed += len(bad)
            print(f"{rule}: {len(todo) - len(bad)} of {len(todo)} ok in {time.perf_counter() - started:.0f} s"
                  + (f"; failed, see: {', '.join(bad[:5])}" if bad else ""), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
