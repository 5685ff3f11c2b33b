"""Where S-SSM and T-SSM change the result: the self-similarity weights against mask and length (issue 14).

    python bench/quality/regimes.py --model data/models/dreammotion-shapes-t2v --device cuda \\
        --n 24 --seed 0 --kinds colour texture background --lambdas 0,0 0.1,0.1 1,1 5,5 0,5 5,0 \\
        --snapshots 30 100 200 --out bench/quality/regimes.json
    python bench/quality/regimes.py --table bench/quality/regimes.json bench/quality/regimes_s5t0.json
        # the Markdown tables again, of the committed runs (a second call ran the lambdas the first's
        # time limit cut off); docs/quality.md says what they show

The suite's edits (``dreammotion.synthetic.edit_quality``: rendered source, true edit, edit region)
are optimised, for each (lambda_s, lambda_t) pair, twice: with the V-DDS mask (the method) and without
it (the paper's "w/o masks" ablation: V-DDS acts on every pixel and drifts the parts a perfect edit
keeps). Both run as one batch (``dreammotion_edit_batch``; the mask is a per-edit setting) and are
measured at each of ``--snapshots`` iterations of the same trajectory: a run to 100 iterations resumes
from the checkpoint of the run to 30 (the iteration count is not part of a checkpoint's fingerprint).
Per edit and snapshot: PSNR to the true edit, PSNR against the source over the pixels a perfect edit
keeps (``preserved_psnr``), flicker inside/outside the edit region against the truth, the centroid
error, and the mean ratio of the self-similarity gradient's norm to V-DDS's over the iterations so far
(what a lambda means relative to the score term).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

METRICS = ("gt_psnr", "preserved_psnr", "gt_psnr_outside_mask", "gt_flicker_inside_mask", "gt_flicker_outside_mask",
           "centroid_error_px", "ssm_to_vdds_norm_ratio")
# Columns of the printed tables: (metric, heading, digits).
COLUMNS = (("gt_psnr", "PSNR to truth", 2), ("preserved_psnr", "preserved PSNR", 2),
           ("gt_flicker_inside_mask", "flicker in", 1), ("gt_flicker_outside_mask", "flicker out", 1),
           ("centroid_error_px", "centroid err.", 2), ("ssm_to_vdds_norm_ratio", "SSM/V-DDS grad.", 3))


def parse_lambdas(text: str) -> tuple[float, float]:
    try:
        lambda_s, lambda_t = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected LAMBDA_S,LAMBDA_T (e.g. 0.1,0.1)") from None
    if lambda_s < 0 or lambda_t < 0 or not (math.isfinite(lambda_s) and math.isfinite(lambda_t)):
        raise argparse.ArgumentTypeError(f"{text!r}: lambdas must be finite and >= 0")
    return lambda_s, lambda_t


def draw_suite(n: int, seed: int, kinds: tuple[str, ...]):
    """The suite's edits (as ``python -m dreammotion.synthetic.suite --kinds ...`` draws them), rendered."""
    from dreammotion.synthetic.edit_quality import SuiteEdit, render_edit
    from dreammotion.synthetic.suite import draw_edits

    edits = [SuiteEdit(name, kind, source, target, edit_seed)
             for name, kind, source, target, edit_seed in draw_edits(n, seed, 8, kinds)]
    return [(edit, render_edit(edit)) for edit in edits]


def measure(frames: np.ndarray, edit, clips, log: list[dict]) -> dict:
    """The ground-truth metrics of one clip, plus the SSM/V-DDS gradient-norm ratio over `log`."""
    from dreammotion.metrics.groundtruth import compute_groundtruth_metrics
    from dreammotion.synthetic.edit_quality import clip_metrics

    values = dict(clip_metrics(frames, edit, clips)["values"])
    flicker = compute_groundtruth_metrics(frames, clips.gt_frames, clips.source_object, clips.gt_object)
    for name in ("gt_flicker_inside_mask", "gt_flicker_outside_mask"):
        values[name] = flicker[name].get("value")
    ratios = [row["ssm_grad_norm"] / row["vdds_grad_norm"] for row in log if row["vdds_grad_norm"] > 0]
    values["ssm_to_vdds_norm_ratio"] = float(np.mean(ratios)) if ratios else None
    return {name: values.get(name) for name in METRICS}


def mean_of(records: list[dict], name: str) -> float | None:
    finite = [r[name] for r in records if r.get(name) is not None and math.isfinite(r[name])]
    return float(np.mean(finite)) if finite else None


def summarise(records: list[dict]) -> dict:
    """{kind or "all": {metric: mean}} over per-edit records (each with "kind")."""
    groups = {"all": records}
    for record in records:
        groups.setdefault(record["kind"], []).append(record)
    return {kind: {"n": len(members), **{name: mean_of(members, name) for name in METRICS}}
            for kind, members in groups.items()}


def run(args) -> dict:
    import torch

    from dreammotion.edit import EditConfig
    from dreammotion.edit.optimizer import EditJob, dreammotion_edit_batch
    from dreammotion.io.frames import to_tensor, to_uint8
    from dreammotion.models import load_t2v

    model = load_t2v(args.model, device=args.device)
    suite = draw_suite(args.n, args.seed, tuple(args.kinds))
    latents = [model.encode_frames(to_tensor(clips.source_frames)).cpu() for _, clips in suite]
    report = {"model": args.model, "suite": {"n": args.n, "seed": args.seed, "kinds": args.kinds},
              "settings": {"guidance_scale": args.guidance_scale, "snapshots": args.snapshots,
                           "mask_applies_to": args.mask_applies_to},
              "device": str(model.device), "command": "python bench/quality/regimes.py " + " ".join(sys.argv[1:]),
              "baseline": summarise([{"kind": e.kind, **measure(c.source_frames, e, c, [])} for e, c in suite]),
              "runs": []}
    work = Path(args.work)
    for lambda_s, lambda_t in args.lambdas:
        for iterations in args.snapshots:
            jobs = []
            for masked in (True, False):
                for (edit, clips), source in zip(suite, latents):
                    config = EditConfig(iterations=iterations, guidance_scale=args.guidance_scale, lambda_s=lambda_s,
                                        lambda_t=lambda_t, use_mask=masked, mask_applies_to=args.mask_applies_to,
                                        seed=edit.seed,
                                        checkpoint_every=args.checkpoint_every)
                    region = torch.from_numpy(clips.edit_region.astype(np.float32))
                    name = f"{edit.edit_id}_{'masked' if masked else 'unmasked'}"
                    jobs.append(EditJob(source, edit.source_prompt, edit.target_prompt, region, config,
                                        work / args.mask_applies_to / f"s{lambda_s}_t{lambda_t}" / f"{name}.pt",
                                        name))
            started = time.perf_counter()
            results = dreammotion_edit_batch(model, jobs, progress=False)
            seconds = time.perf_counter() - started
            for masked in (True, False):
                records = []
                for index, (edit, clips) in enumerate(suite):
                    result = results[index + (0 if masked else len(suite))]
                    record = {"id": edit.edit_id, "kind": edit.kind}
                    if isinstance(result, Exception):
                        record["error"] = str(result)
                    else:
                        frames = to_uint8(model.decode_latents(result.latents.to(model.device)))
                        record.update(measure(frames, edit, clips, result.log))
                    records.append(record)
                run_record = {"lambda_s": lambda_s, "lambda_t": lambda_t, "masked": masked, "iterations": iterations,
                              "batch_seconds": round(seconds, 1), "summary": summarise(records), "edits": records}
                report["runs"].append(run_record)
                print(row_line(run_record), flush=True)
            write(args.out, report)  # after every batch: a run cut off keeps what it measured
    return report


def write(path: Path, report: dict) -> None:
    from dreammotion.utils.atomic import write_json

    write_json(path, report)


def row_line(run_record: dict) -> str:
    s = run_record["summary"]["all"]
    cells = ", ".join(f"{name}={s[name]:.3f}" if s[name] is not None else f"{name}=None" for name in METRICS)
    return (f"lambda_s={run_record['lambda_s']} lambda_t={run_record['lambda_t']} "
            f"{'masked' if run_record['masked'] else 'unmasked'} it={run_record['iterations']} "
            f"({run_record['batch_seconds']} s): {cells}")


def _cell(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def tables(report: dict, kinds: tuple[str, ...] = ("all",)) -> str:
    """Markdown: per kind, one row per (mask, lambdas, iterations), the means of COLUMNS."""
    lines = []
    for kind in kinds:
        base = report["baseline"].get(kind)
        if base is None:
            continue
        lines += [f"**{kind}** (n = {base['n']}; unedited source: PSNR to truth {_cell(base['gt_psnr'], 2)})", "",
                  "| mask | lambda_s, lambda_t | iterations | " + " | ".join(h for _, h, _ in COLUMNS) + " |",
                  "|---|---|---|" + "---|" * len(COLUMNS)]
        runs = sorted(report["runs"], key=lambda r: (not r["masked"], r["iterations"], r["lambda_s"], r["lambda_t"]))
        for r in runs:
            s = r["summary"].get(kind)
            if s is None:
                continue
            lines.append(f"| {'yes' if r['masked'] else 'no'} | {r['lambda_s']:g}, {r['lambda_t']:g} | {r['iterations']} | "
                         + " | ".join(_cell(s[name], digits) for name, _, digits in COLUMNS) + " |")
        lines.append("")
    return "\n".join(lines)


def combine(reports: list[dict], paths: list[Path]) -> dict:
    """One report of the runs of several, which must share model, suite and settings (a call cut off by
    its time limit continued by another with the lambdas it did not reach)."""
    # Reports written before --mask-applies-to existed masked V-DDS only, the paper's form.
    reports = [{**r, "settings": {"mask_applies_to": "vdds", **r["settings"]}} for r in reports]
    first = reports[0]
    for report, path in zip(reports[1:], paths[1:]):
        for key in ("model", "suite", "settings"):
            if report[key] != first[key]:
                raise SystemExit(f"{path}: {key} {report[key]!r} differs from {paths[0]}'s {first[key]!r}")
    return {**first, "runs": [run for report in reports for run in report["runs"]]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="data/models/dreammotion-shapes-t2v")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n", type=int, default=24, help="suite edits (kinds in turn)")
    parser.add_argument("--seed", type=int, default=0, help="suite seed")
    parser.add_argument("--kinds", nargs="+", default=["colour", "texture", "background"],
                        choices=("colour", "texture", "background", "shape"))
    parser.add_argument("--lambdas", nargs="+", type=parse_lambdas, default=[(0.0, 0.0), (0.1, 0.1), (1.0, 1.0)],
                        metavar="LAMBDA_S,LAMBDA_T")
    parser.add_argument("--snapshots", nargs="+", type=int, default=[30, 100, 200],
                        help="iteration counts at which the same trajectories are measured (ascending)")
    parser.add_argument("--mask-applies-to", choices=("vdds", "all"), default="vdds",
                        help="what the mask of a masked run multiplies: the V-DDS term (the paper) or the whole "
                             "update, S-SSM and T-SSM included (EditConfig.mask_applies_to)")
    parser.add_argument("--checkpoint-every", type=int, default=5,
                        help="a later snapshot resumes from the last checkpoint before the earlier one's end")
    parser.add_argument("--guidance-scale", type=float, default=2.0, help="the demo's and suite's guidance")
    parser.add_argument("--work", default="/tmp/dreammotion-regimes", help="checkpoints (resumable)")
    parser.add_argument("--out", type=Path, help="JSON report, rewritten after every batch")
    parser.add_argument("--table", type=Path, nargs="+",
                        help="print the Markdown tables of these reports (runs of one suite, e.g. a second call's "
                             "further lambdas) and exit")
    args = parser.parse_args(argv)
    if args.table:
        report = combine([json.loads(path.read_text()) for path in args.table], args.table)
        print(tables(report, ("all",) + tuple(report["suite"]["kinds"])))
        return 0
    if args.out is None:
        parser.error("--out is needed (or --table REPORT)")
    if sorted(args.snapshots) != args.snapshots or args.snapshots[0] < 1:
        parser.error("--snapshots must be ascending iteration counts >= 1")
    report = run(args)
    print(tables(report, ("all",) + tuple(args.kinds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
