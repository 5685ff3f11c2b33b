"""Long clips: seams at window borders, and memory against clip length (issue 19).

    python bench/long/seams.py seams --model data/models/dreammotion-shapes-t2v --frames 32 --window 8 \
        --overlap 4 --n 3 --out bench/long/seams.json
    python bench/long/seams.py memory --model data/models/dreammotion-shapes-t2v --lengths 8 32 128 \
        --window 8 --out bench/long/memory_prior.json
    python bench/long/seams.py memory --model zeroscope-random --device cuda --lengths 24 96 384 \
        --window 24 --overlap 8 --iterations 3 --out bench/long/memory_zeroscope.json   # on the GPU
    python bench/long/seams.py merge a.json b.json --out seams.json   # runs over other --clips, as one

`seams`: synthetic colour edits rendered at `--frames` frames with their ground truth; each edited
twice, jointly over overlapping windows (``edit.window``) and by the naive route (each window apart,
then cross-faded). Per frame: PSNR to the ground truth and flicker, |mean((e_t - e_{t-1})^2) -
mean((g_t - g_{t-1})^2)| (how much more or less the edit changes between frames than the truth
does). Border frames (where a window starts or ends) are compared with the other frames (``frame_classes``)
and with their nearest non-border neighbours (``local_drops``).
`memory`: peak memory of a few windowed iterations per clip length (CUDA: max allocated; CPU: RSS).
`--model zeroscope-random` is a UNet3DConditionModel of ZeroScope v2's config with random float16
weights (weights do not change the cost) at ZeroScope's 576x320 (latents 72x40), with a small
random text encoder of its width (1024): the cost of the edit, not of a trained model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def laplacian_energy(frames: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Per frame: the mean squared 4-neighbour Laplacian (summed over channels) over `region` (T, H, W)
    bool, the frame's one-pixel rim left out: its fine detail, which blurring removes."""
    x = frames.astype(np.float64)
    lap = 4 * x[:, 1:-1, 1:-1] - x[:, :-2, 1:-1] - x[:, 2:, 1:-1] - x[:, 1:-1, :-2] - x[:, 1:-1, 2:]
    inner = region[:, 1:-1, 1:-1]
    energy = (lap**2).sum(axis=-1)
    return np.array([e[m].mean() if m.any() else np.nan for e, m in zip(energy, inner)])


def per_frame(edit: np.ndarray, truth: np.ndarray, region: np.ndarray | None = None) -> dict:
    """PSNR and flicker per frame; with `region` (the edited pixels, (T, H, W) bool) also "detail": the
    edit's fine-detail energy there over the truth's (``laplacian_energy``). Below 1 the edit is smoother
    than the truth: cross-fading two edits that disagree blurs it, which PSNR rewards and the eye does not."""
    psnrs = [psnr(e, g) for e, g in zip(edit, truth)]
    e, g = edit.astype(np.float64), truth.astype(np.float64)
    energy_e = np.mean((e[1:] - e[:-1]) ** 2, axis=(1, 2, 3))
    energy_g = np.mean((g[1:] - g[:-1]) ** 2, axis=(1, 2, 3))
    measures = {"psnr": psnrs, "flicker": [0.0] + list(np.abs(energy_e - energy_g))}
    if region is not None:
        measures["detail"] = (laplacian_energy(edit, region) / laplacian_energy(truth, region)).tolist()
    return measures


def decode(model, latents) -> np.ndarray:
    pixels = model.decode_latents(latents.to(model.device))
    return ((pixels.permute(0, 2, 3, 1) + 1) * 127.5).round().clamp(0, 255).byte().cpu().numpy()


SHIFT = 2  # frames by which the "shifted" route's clip starts later: half the stride of 8-frame windows overlapping by 4


def draw_clip(seed: int, index: int, frames: int, kind: str = "colour"):
    """Clip `index` of the bench (source and target specs): the index-th draw of one generator from `seed`,
    so that a clip is the same whether it runs alone (--clips 2) or with others (--n 3). `kind`: the edit
    (``dreammotion.synthetic.suite.EDIT_KINDS``; colour edits are drawn as before the option existed)."""
    from dreammotion.synthetic.render import OBJECT_COLOURS, colours_compatible, sample_spec
    from dreammotion.synthetic.suite import random_edit

    from dreammotion.synthetic import render

    rng = np.random.default_rng(seed)
    found = 0
    while True:
        source = sample_spec(rng, frames=frames + SHIFT)
        if kind == "colour":
            colours = [c for c in OBJECT_COLOURS if c != source.colour and colours_compatible(c, source.background)]
            target = source.replace(colour=str(rng.choice(colours)))
        else:
            target = random_edit(rng, source, kind)
        # Only clips whose object is in every frame: one that enters or leaves the frame (a fast object on a
        # long clip) has frames with nothing to edit, at 45+ dB, which say nothing about seams.
        if render(source, frames=frames + SHIFT)[1].any(axis=(1, 2)).all():
            if found == index:
                return source, target
            found += 1


def seams(args) -> dict:
    from dreammotion.edit import EditConfig, dreammotion_edit
    from dreammotion.edit.windows import Windows, independent_windows
    from dreammotion.models import load_t2v
    from dreammotion.synthetic import caption, render
    from dreammotion.synthetic.suite import edits_background

    model = load_t2v(args.model, device=args.device)
    windows = Windows.for_clip(args.frames, args.window, args.overlap)
    settings = {"iterations": args.iterations, "guidance_scale": args.guidance_scale, "lambda_s": 0.1, "lambda_t": 0.1,
                "cross_window_tssm": not args.no_cross_window_tssm, "window_weighting": args.window_weighting,
                "window_grid": args.window_grid, "window_noise": args.window_noise}
    routes = args.routes
    edits = []
    for index in (args.clips if args.clips is not None else range(args.n)):
        source, target = draw_clip(args.seed, index, args.frames, args.kind)
        # SHIFT more frames of the same motion: the "shifted" route edits frames SHIFT.. of it (see below).
        all_frames, all_masks = render(source, frames=args.frames + SHIFT)
        all_truth, _ = render(target, frames=args.frames + SHIFT)
        frames, truth = all_frames[:args.frames], all_truth[:args.frames]
        record = {"clip": index, "source": caption(source), "target": caption(target), "source_psnr": psnr(frames, truth)}
        for route in routes:
            # "shifted": the joint route on the clip that starts SHIFT frames later, so that the frames at window
            # borders of the other routes lie inside windows here (windows always start at a clip's frame 0).
            first = SHIFT if route == "shifted" else 0
            clip = slice(first, first + args.frames)
            latents = model.encode_frames(torch.tensor(all_frames[clip]).permute(0, 3, 1, 2).float() / 127.5 - 1)
            # A background or texture edit's mask is everything but the object, as the suite's masks are.
            mask = torch.tensor(~all_masks[clip] if edits_background(args.kind) else all_masks[clip], dtype=torch.float32)
            start = time.perf_counter()
            runs = []
            # The edit's seed (its timestep and noise draws): the clip's index, or each of --edit-seeds in turn.
            for seed in (args.edit_seeds if args.edit_seeds is not None else [index]):
                if route in ("joint", "shifted"):
                    config = EditConfig(seed=seed, window=args.window, window_overlap=args.overlap, **settings)
                    edited = dreammotion_edit(model, latents, caption(source), caption(target), mask, config,
                                              progress=False).latents
                else:
                    config = EditConfig(seed=seed, **settings)
                    edited = independent_windows(model, latents, caption(source), caption(target), mask, config,
                                                 windows, progress=False)
                runs.append(per_frame(decode(model, edited), all_truth[clip], mask.numpy() > 0.5))
            record[route] = {**(runs[0] if args.edit_seeds is None else over_seeds(runs, args.edit_seeds)),
                             "first_frame": first, "seconds": round(time.perf_counter() - start, 1)}
            print(index, route, json.dumps(route_summary([record[route]], windows)), flush=True)
        edits.append(record)
    # The edit kind is recorded with the settings (merge compares them) but is no EditConfig field.
    return {"windows": windows.describe(), "settings": {**settings, "edit_kind": args.kind, "edit_seeds": args.edit_seeds},
            "seed": args.seed,
            "frames": args.frames,
            "edits": edits, "summary": summarise(edits, windows)}


def over_seeds(runs: list[dict], seeds: list[int]) -> dict:
    """One route's per-frame measures over several edit seeds: "psnr" and "flicker" are the means (what the
    summaries read), each seed's values are kept beside them."""
    measures = ("psnr", "flicker", "detail") if all("detail" in r for r in runs) else ("psnr", "flicker")
    return {**{m: np.mean([r[m] for r in runs], axis=0).tolist() for m in measures}, "seeds": list(seeds),
            **{f"{m}_per_seed": [r[m] for r in runs] for m in measures}}


def frame_classes(windows) -> tuple[list[int], list[int]]:
    """(border frames: a window starts or ends there, besides the clip's own ends; interior frames: all others).

    With an overlap of half the window every window's middle is a neighbour's border, so "the middle of
    windows" would leave almost no frame (one, at 32 frames, 8/4); the border frames are therefore
    compared with every frame that is no border."""
    borders = windows.borders()
    return borders, [f for f in range(windows.frames) if f not in borders]


def local_drops(values: list[float], borders: list[int]) -> list[float]:
    """For each border frame: the mean of the nearest non-border frame on each side minus the border frame's
    value (dB). A seam is a local dip; the slow change of difficulty along a clip (the object moving into a
    harder place) is not, and would otherwise be counted as one."""
    drops = []
    border_set = set(borders)
    for b in borders:
        left = next((f for f in range(b - 1, -1, -1) if f not in border_set), None)
        right = next((f for f in range(b + 1, len(values)) if f not in border_set), None)
        neighbours = [values[f] for f in (left, right) if f is not None]
        drops.append(float(np.mean(neighbours) - values[b]))
    return drops


def route_summary(records: list[dict], windows) -> dict:
    """Border vs interior frames of one route over `records` (one per clip): mean PSNR (dB), the worst
    border frame against its clip's interior mean, the local drop at borders, and flicker."""
    borders, interior = frame_classes(windows)
    border_psnr = [r["psnr"][f] for r in records for f in borders]
    interior_psnr = [r["psnr"][f] for r in records for f in interior]
    worst = [float(np.mean([r["psnr"][f] for f in interior]) - min(r["psnr"][f] for f in borders)) for r in records]
    drops = [d for r in records for d in local_drops(r["psnr"], borders)]
    flicker_border = [r["flicker"][f] for r in records for f in borders if f > 0]
    flicker_interior = [r["flicker"][f] for r in records for f in interior if f > 0]
    return {
        "clips": len(records),
        "psnr_all": round(float(np.mean([v for r in records for v in r["psnr"]])), 2),
        "psnr_border": round(float(np.mean(border_psnr)), 2),
        "psnr_interior": round(float(np.mean(interior_psnr)), 2),
        "border_minus_interior_db": round(float(np.mean(border_psnr) - np.mean(interior_psnr)), 2),
        "worst_border_below_interior_db": round(max(worst), 2),  # over clips: interior mean - worst border frame
        "local_drop_mean_db": round(float(np.mean(drops)), 2),
        "local_drop_worst_db": round(float(np.max(drops)), 2),
        "border_frames_over_0.5db_local_drop": int(sum(d > 0.5 for d in drops)),
        "border_frames": len(drops),
        "flicker_border": round(float(np.mean(flicker_border)), 2),
        "flicker_interior": round(float(np.mean(flicker_interior)), 2),
        **({"detail_mean": round(float(np.nanmean([v for r in records for v in r["detail"]])), 3)}
           if all("detail" in r for r in records) else {}),
        "seconds": round(float(sum(r["seconds"] for r in records)), 1),
    }


def shift_pairs(edits: list[dict], windows, frames: str = "border"):
    """(edit, frame f of the joint run, the same motion frame g of the shifted run) for every border frame f
    (frames="interior": every frame off the borders) that lies off the borders in the shifted run. The frame,
    its content and its truth are the same in both runs; only where it sits in the windows (and the noise
    draws) differ. frames="interior" is the control: frames off the borders in both runs, so only the noise
    draws differ; a border cost inside its spread is not a seam."""
    borders, interior = frame_classes(windows)
    for e in edits:
        for f in (borders if frames == "border" else interior):
            g = f - SHIFT  # the same motion frame, in the shifted clip (whose windows start at its frame 0 too)
            if 0 <= g < windows.frames and g not in borders:
                yield e, f, g


def shift_drops(edits: list[dict], windows, frames: str = "border") -> list[float]:
    """Per pair of ``shift_pairs``: the frame's PSNR in the shifted run (off the window borders) minus its
    PSNR in the joint run; > 0 is what sitting on a border costs."""
    return [e["shifted"]["psnr"][g] - e["joint"]["psnr"][f] for e, f, g in shift_pairs(edits, windows, frames)]


def _standard_error(values) -> float:
    """The standard error of the mean of `values` (NaN for fewer than two)."""
    return float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")


def seeds_paired(edits: list[dict]) -> bool:
    """Whether every edit's joint and shifted runs were made over the same several edit seeds, so that a
    difference between them has a standard error over the seeds (runs with --edit-seeds only)."""
    return all(len(e[r].get("psnr_per_seed", [])) > 1 and e[r]["seeds"] == e["joint"]["seeds"]
               for e in edits for r in ("joint", "shifted"))


def shift_drop_errors(edits: list[dict], windows, frames: str = "border") -> list[float]:
    """The standard error of each of ``shift_drops``' differences, from the spread over the edit seeds of the
    per-seed difference (runs with --edit-seeds only; the two runs of one seed are a pair: a seed that edits
    the whole clip better or worse does so in both). A per-frame cost is a seam only where it stands clear."""
    errors = []
    for e, f, g in shift_pairs(edits, windows, frames):
        pairs = [s[g] - j[f] for s, j in zip(e["shifted"]["psnr_per_seed"], e["joint"]["psnr_per_seed"])]
        errors.append(_standard_error(pairs))
    return errors


def seam_pairs(edits: list[dict], windows):
    """(edit, border frame f of the joint run) for every f whose partner frame f + SHIFT is where the shifted
    run has the same border (its frame f) and the joint run none, and whose frame f - SHIFT in the shifted
    run is no border either (see ``border_seams``)."""
    borders = set(frame_classes(windows)[0])
    for e in edits:
        for f in sorted(borders):
            if f - SHIFT >= 0 and f - SHIFT not in borders and f + SHIFT < windows.frames and f + SHIFT not in borders:
                yield e, f


def _seam(joint: list[float], shifted: list[float], f: int) -> float:
    # At motion frame f the joint run sits on a border and the shifted one does not; at motion frame f + SHIFT
    # the other way round (the shifted run's frame f). Each frame's difficulty appears on both sides and cancels;
    # a drift of the runs' difference along the clip, c dB a frame, is left only as -c * SHIFT / 2; a border's
    # cost appears twice.
    return ((shifted[f - SHIFT] - joint[f]) - (shifted[f] - joint[f + SHIFT])) / 2


def border_seams(edits: list[dict], windows) -> tuple[list[float], list[float] | None]:
    """What a window border costs a frame, in dB (> 0: worse on the border), per pair of ``seam_pairs``:
    half the difference between the shifted-minus-joint PSNR of the frame on the joint run's border and
    that of the frame two later, on the shifted run's border (a difference in differences; unlike
    ``shift_drops`` it does not take a drift of the runs' difference along the clip, c dB a frame, for a
    seam: that moves it by -c * SHIFT / 2 only). With edit seeds, also
    each estimate's standard error over the seeds (paired: one seed's two runs), else None."""
    pairs = list(seam_pairs(edits, windows))
    seams = [_seam(e["joint"]["psnr"], e["shifted"]["psnr"], f) for e, f in pairs]
    if not pairs or not seeds_paired(edits):
        return seams, None
    errors = []
    for e, f in pairs:
        per_seed = [_seam(j, s, f) for j, s in zip(e["joint"]["psnr_per_seed"], e["shifted"]["psnr_per_seed"])]
        errors.append(_standard_error(per_seed))
    return seams, errors


def _spread(values: list[float]) -> dict:
    return {"mean": round(float(np.mean(values)), 2), "std": round(float(np.std(values)), 2),
            "worst": round(float(np.max(values)), 2), "over_0.5db": int(sum(v > 0.5 for v in values)),
            "frames": len(values)}


def summarise(edits: list[dict], windows) -> dict:
    routes = [route for route in ("joint", "naive", "shifted") if all(route in e for e in edits)]
    summary = {route: route_summary([e[route] for e in edits], windows) for route in routes}
    if "joint" in routes and "shifted" in routes:
        costs = shift_drops(edits, windows)
        summary["joint_border_cost_db"] = _spread(costs)
        # The same difference on frames off the borders in both runs: what the noise draws alone do.
        summary["joint_interior_control_db"] = _spread(shift_drops(edits, windows, frames="interior"))
        if seeds_paired(edits):
            errors = shift_drop_errors(edits, windows)
            # Border frames whose cost exceeds 0.5 dB by more than two standard errors: a seam, not a draw.
            summary["joint_border_cost_db"].update({
                "standard_error_mean": round(float(np.mean(errors)), 2),
                "over_0.5db_by_2_standard_errors": int(sum(c - 2 * se > 0.5 for c, se in zip(costs, errors)))})
        seams, errors = border_seams(edits, windows)
        if seams:
            summary["joint_border_seam_db"] = _spread(seams)
            if errors is not None:  # the target: every border's seam under 0.5 dB by two standard errors
                summary["joint_border_seam_db"].update({
                    "standard_error_mean": round(float(np.mean(errors)), 2),
                    "under_0.5db_by_2_standard_errors": int(sum(v + 2 * se < 0.5 for v, se in zip(seams, errors))),
                    "over_0.5db_by_2_standard_errors": int(sum(v - 2 * se > 0.5 for v, se in zip(seams, errors)))})
    if "joint" in routes and "naive" in routes:  # per border frame, joint minus naive PSNR: > 0 where joint is better
        borders, _ = frame_classes(windows)
        gains = [e["joint"]["psnr"][f] - e["naive"]["psnr"][f] for e in edits for f in borders]
        summary["joint_minus_naive_border_db"] = round(float(np.mean(gains)), 2)
        summary["border_frames_joint_better"] = int(sum(g > 0 for g in gains))
    summary["source_psnr"] = round(float(np.mean([e["source_psnr"] for e in edits])), 2)
    return summary


SETTINGS_BEFORE_THEY_EXISTED = {"window_grid": "fixed", "window_noise": "clip", "edit_kind": "colour", "edit_seeds": None}


def report_windows(report: dict):
    """The window grid a seams report was made with."""
    from dreammotion.edit.windows import Windows

    w = report["windows"]
    return Windows.for_clip(w["frames"], w["length"], w["overlap"])


def merge(args) -> dict:
    """Several seams runs of the same settings as one report (their commands listed): runs over other
    clips side by side, or runs of the same clips over other edit seeds pooled into one run over all
    their seeds (per-frame means and paired standard errors over the union)."""
    reports = [json.loads(Path(p).read_text()) for p in args.inputs]
    first = reports[0]
    for report in reports:  # runs made before a setting existed had its only value then
        report["settings"] = {**SETTINGS_BEFORE_THEY_EXISTED, **report["settings"]}
    clip_sets = [sorted(e["clip"] for e in r["edits"]) for r in reports]
    pool_seeds = len(reports) > 1 and all(c == clip_sets[0] for c in clip_sets)
    for path, report in zip(args.inputs, reports):
        for key in ("windows", "settings", "seed", "frames"):
            mine, theirs = report[key], first[key]
            if key == "settings" and pool_seeds:  # the seeds are what differs
                mine, theirs = ({k: v for k, v in d.items() if k != "edit_seeds"} for d in (mine, theirs))
            if mine != theirs:
                raise SystemExit(f"{path}: {key} {mine} differs from {args.inputs[0]}'s {theirs}")
    settings = first["settings"]
    if pool_seeds:
        seeds = [s for r in reports for s in (r["settings"]["edit_seeds"] or [])]
        if any(r["settings"]["edit_seeds"] is None for r in reports) or len(set(seeds)) != len(seeds):
            raise SystemExit("the runs share a clip: merge runs over different --clips, or over the same clips "
                             "with different --edit-seeds")
        edits = [pool_edit_seeds([next(e for e in r["edits"] if e["clip"] == clip) for r in reports])
                 for clip in clip_sets[0]]
        settings = {**settings, "edit_seeds": seeds}
    else:
        edits = sorted((e for r in reports for e in r["edits"]), key=lambda e: e["clip"])
        if len({e["clip"] for e in edits}) != len(edits):
            raise SystemExit("the runs share a clip: merge runs over different --clips, or over the same clips "
                             "with different --edit-seeds")
    windows = report_windows(first)
    return {**{k: first[k] for k in ("windows", "seed", "frames")}, "settings": settings, "edits": edits,
            "summary": summarise(edits, windows), "merged_from": provenance(args.inputs, reports)}


def provenance(paths: list[str], reports: list[dict]) -> dict:
    """Each input's command; for an input that was itself merged, its command and what it was merged
    from, nested: the chain back to the runs as far as the inputs recorded it (a merge of one file
    onto itself, to recompute its summary, keeps where it came from)."""
    return {path: {"command": report["command"], "merged_from": report["merged_from"]} if "merged_from" in report
            else report["command"] for path, report in zip(paths, reports)}


def pool_edit_seeds(records: list[dict]) -> dict:
    """One clip's records from runs over other edit seeds, as one record over all their seeds."""
    head = records[0]
    for record in records[1:]:
        for key in ("source", "target", "source_psnr"):
            if record[key] != head[key]:
                raise SystemExit(f"clip {head['clip']}: {key} differs between the runs ({record[key]} vs {head[key]})")
    pooled = {k: head[k] for k in ("clip", "source", "target", "source_psnr")}
    for route in ("joint", "naive", "shifted"):
        if not any(route in r for r in records):
            continue
        if not all(route in r for r in records):
            raise SystemExit(f"clip {head['clip']}: route {route} is in some of the runs only: pool runs of the same routes")
        # "detail" only where every run measured it (runs before it existed did not)
        measures = [m for m in ("psnr", "flicker", "detail") if all(f"{m}_per_seed" in r[route] for r in records)]
        runs = [dict(zip(measures, values)) for r in records
                for values in zip(*(r[route][f"{m}_per_seed"] for m in measures))]
        pooled[route] = {**over_seeds(runs, [s for r in records for s in r[route]["seeds"]]),
                         "first_frame": head[route]["first_frame"],
                         "seconds": round(sum(r[route]["seconds"] for r in records), 1)}
    return pooled


def compare(args) -> dict:
    """Two routes, run by run, over the seeds they share: FILE:ROUTE against FILE:ROUTE (the same clips,
    the same --edit-seeds; other settings may differ, e.g. --window-noise). Per seed, the clip's mean PSNR,
    its border frames' mean PSNR and their mean flicker; the differences (first minus second) paired by
    seed, their means and standard errors, and in how many seeds the first is better."""
    (path_a, route_a), (path_b, route_b) = (spec.rsplit(":", 1) for spec in args.inputs)
    a, b = (json.loads(Path(p).read_text()) for p in (path_a, path_b))
    kind = lambda report: {**SETTINGS_BEFORE_THEY_EXISTED, **report["settings"]}["edit_kind"]  # noqa: E731
    if a["windows"] != b["windows"] or a["frames"] != b["frames"] or a["seed"] != b["seed"] or kind(a) != kind(b):
        raise SystemExit(f"{path_b}: windows, frames, suite seed or edit kind differ from {path_a}'s")
    borders, _ = frame_classes(report_windows(a))
    flicker_frames = [f for f in borders if f > 0]
    edits_b = {e["clip"]: e for e in b["edits"]}
    diffs = {"psnr_clip": [], "psnr_border": [], "flicker_border": [], "detail_error_clip": []}
    for edit_a in a["edits"]:
        edit_b = edits_b.get(edit_a["clip"])
        if edit_b is None:
            continue
        ra, rb = edit_a[route_a], edit_b[route_b]
        if (edit_a["source"], edit_a["target"]) != (edit_b["source"], edit_b["target"]):
            raise SystemExit(f"clip {edit_a['clip']}: the runs edit other prompts")
        if ra.get("first_frame", 0) != rb.get("first_frame", 0):  # "shifted" edits other frames of the motion
            raise SystemExit(f"clip {edit_a['clip']}: {route_a} and {route_b} start at other frames of the clip")
        if ra.get("seeds") != rb.get("seeds") or "psnr_per_seed" not in ra:
            raise SystemExit(f"clip {edit_a['clip']}: the runs have other edit seeds ({ra.get('seeds')} vs "
                             f"{rb.get('seeds')}): compare runs made with the same --edit-seeds")
        for pa, pb, fa, fb in zip(ra["psnr_per_seed"], rb["psnr_per_seed"], ra["flicker_per_seed"], rb["flicker_per_seed"]):
            diffs["psnr_clip"].append(float(np.mean(pa) - np.mean(pb)))
            diffs["psnr_border"].append(float(np.mean([pa[f] for f in borders]) - np.mean([pb[f] for f in borders])))
            diffs["flicker_border"].append(float(np.mean([fa[f] for f in flicker_frames])
                                                 - np.mean([fb[f] for f in flicker_frames])))
        if "detail_per_seed" in ra and "detail_per_seed" in rb:
            # How far each run's mean detail ratio is from the truth's (1): lost or added fine detail alike.
            for da, db in zip(ra["detail_per_seed"], rb["detail_per_seed"]):
                diffs["detail_error_clip"].append(float(abs(1 - np.nanmean(da)) - abs(1 - np.nanmean(db))))
    if not diffs["psnr_clip"]:
        raise SystemExit(f"{path_a} and {path_b} share no clip")
    better = {"psnr_clip": 1, "psnr_border": 1, "flicker_border": -1, "detail_error_clip": -1}  # the first is better
    diffs = {key: values for key, values in diffs.items() if values}  # detail: only runs that measured it
    summary = {}
    for key, values in diffs.items():
        mean = float(np.mean(values))
        se = _standard_error(values)
        summary[f"{key}_first_minus_second"] = {
            "mean": round(mean, 3), "standard_error": round(se, 3), "runs": len(values),
            "first_better_in": int(sum(v * better[key] > 0 for v in values)),
            "first_better_by_2_standard_errors": bool(mean * better[key] > 2 * se)}
    return {"first": f"{path_a}:{route_a}", "second": f"{path_b}:{route_b}", "per_run": diffs, "summary": summary}


def memory(args) -> dict:
    """Peak memory per clip length. On the CPU the peak is the process's max RSS, which only grows over a
    process's life: each length then runs in a fresh process of its own (this script, one length)."""
    if args.device == "cpu" and len(args.lengths) > 1:
        rows = [memory_in_own_process(args, length) for length in args.lengths]
    else:
        rows = memory_rows(args, args.lengths)
    return {"window": args.window, "overlap": args.overlap, "iterations": args.iterations,
            "window_noise": args.window_noise, "rows": rows}


def memory_in_own_process(args, length: int) -> dict:
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "row.json"
        subprocess.run([sys.executable, __file__, "memory", "--model", args.model, "--device", args.device,
                        "--lengths", str(length), "--window", str(args.window), "--overlap", str(args.overlap),
                        "--iterations", str(args.iterations), "--window-noise", args.window_noise, "--out", str(out)],
                       check=True)
        return json.loads(out.read_text())["rows"][0]


def zeroscope_random(device: str):
    """A T2VModel of ZeroScope v2 576w's UNet config with random float16 weights (see the module docstring)."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet3DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from dreammotion_bench import ZEROSCOPE_UNET  # noqa: E402  (the config bench/dreammotion_bench.py times)

    from dreammotion.models import T2VModel
    from dreammotion.models.tiny import TINY_WORDS
    from dreammotion.models.tokenizer import build_word_tokenizer

    torch.manual_seed(0)
    tokenizer = build_word_tokenizer(TINY_WORDS, max_length=77)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=1024, intermediate_size=1024, num_hidden_layers=1,
        num_attention_heads=16, max_position_embeddings=77, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id))
    vae = AutoencoderKL(block_out_channels=(8,), norm_num_groups=4, latent_channels=4)  # unused: latents are given
    scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                              clip_sample=False, set_alpha_to_one=False)
    model = T2VModel(UNet3DConditionModel(**ZEROSCOPE_UNET), vae, text_encoder, tokenizer, scheduler,
                     source="zeroscope-random")
    return model.to(device, torch.float16 if device != "cpu" else torch.float32)


def memory_rows(args, lengths) -> list[dict]:
    import resource

    from dreammotion.edit import EditConfig, dreammotion_edit
    from dreammotion.models import load_t2v

    if args.model == "zeroscope-random":
        model = zeroscope_random(args.device)
        c, h, w = 4, 40, 72  # 576x320 pixels, 8x smaller latents
    else:
        model = load_t2v(args.model, device=args.device)
        c, h, w = model.unet.config.in_channels, model.unet.config.sample_size, model.unet.config.sample_size
    rows = []
    for length in lengths:
        latents = torch.randn(1, c, length, h, w) * 0.2
        if model.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(model.device)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the model loaded, no edit yet
        config = EditConfig(iterations=args.iterations, window=args.window, window_overlap=args.overlap,
                            window_noise=args.window_noise)  # clip, as when the memory rows were measured
        result = dreammotion_edit(model, latents, "a red circle", "a blue circle", None, config, progress=False)
        row = {"frames": length, "peak_memory_mib": round(result.peak_memory_mib, 1),
               "kind": result.peak_memory_kind, "seconds": round(result.runtime_s, 1),
               "latents_mib": round(latents.numel() * 4 / 2**20, 3)}
        if model.device.type != "cuda":
            row["rss_before_edit_mib"] = round(before, 1)
            row["edit_rss_increase_mib"] = round(result.peak_memory_mib - before, 1)
        rows.append(row)
        print(rows[-1], flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("seams", "memory", "merge", "compare"))
    parser.add_argument("inputs", nargs="*", help="merge: the seams JSON files to merge; compare: FILE:ROUTE FILE:ROUTE")
    parser.add_argument("--model", default="data/models/dreammotion-shapes-t2v")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--lengths", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--overlap", type=int, default=4)
    parser.add_argument("--n", type=int, default=3, help="seams: clips 0..n-1")
    parser.add_argument("--clips", type=int, nargs="+", default=None, help="seams: these clips instead (e.g. 3 4)")
    parser.add_argument("--routes", nargs="+", choices=("joint", "naive", "shifted"), default=["joint", "naive", "shifted"])
    parser.add_argument("--no-cross-window-tssm", action="store_true", help="seams: joint route without cross-window T-SSM")
    parser.add_argument("--window-weighting", default="taper", choices=("uniform", "taper"),
                        help="seams: how the joint routes weigh a frame's windows (edit.window_weighting)")
    parser.add_argument("--window-grid", default="fixed", choices=("fixed", "random"),
                        help="seams: the joint routes' window starts, fixed or moved at random each iteration (edit.window_grid)")
    parser.add_argument("--window-noise", default="clip", choices=("clip", "window"),
                        help="seams: the joint routes' noise, one draw for the clip or one window's draw for every window "
                             "(edit.window_noise; the library's default is window since 2026-12-07, this script's stays "
                             "clip so that the commands in bench/long/README.md run as they ran)")
    parser.add_argument("--kind", default="colour", choices=("colour", "texture", "background"),
                        help="seams: the edit (a texture or background edit's mask is all but the object)")
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--guidance-scale", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0, help="seams: the suite's seed (which clips are drawn)")
    parser.add_argument("--edit-seeds", type=int, nargs="+", default=None,
                        help="seams: edit each clip once per seed (timestep and noise draws) and measure the means, "
                             "so that a per-frame difference is not one draw's luck (default: one edit, seed = clip index)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    report = {"seams": seams, "memory": memory, "merge": merge, "compare": compare}[args.mode](args)
    report["command"] = "python bench/long/seams.py " + " ".join(sys.argv[1:] if argv is None else argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(args.out.suffix + ".tmp")  # a finished report is never left half-written
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
