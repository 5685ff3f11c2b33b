"""bench/long/seams.py's measures of seams at window borders (the numbers in bench/long/README.md)."""

import json

import numpy as np
import pytest
from conftest import load_bench_script

from dreammotion.edit.windows import Windows


@pytest.fixture(scope="module")
def seams():
    return load_bench_script("long/seams.py", "seams_bench")


WINDOWS = Windows.for_clip(32, 8, 4)


def route(psnr, flicker=None):
    return {"psnr": list(psnr), "flicker": list(flicker or [0.0] * len(psnr)), "seconds": 1.0}


def test_a_dip_at_the_borders_is_found_and_a_slow_trend_is_not(seams):
    borders, interior = seams.frame_classes(WINDOWS)
    assert borders == WINDOWS.borders() and sorted(borders + interior) == list(range(32))
    trend = [20 + 0.3 * f for f in range(32)]  # quality changing slowly along the clip: no seam
    assert max(abs(d) for d in seams.local_drops(trend, borders)) < 0.5
    dipped = [30.0 - (2.0 if f in borders else 0.0) for f in range(32)]  # 2 dB lower on every border frame
    assert seams.local_drops(dipped, borders) == [2.0] * len(borders)
    summary = seams.route_summary([route(dipped)], WINDOWS)
    assert summary["border_minus_interior_db"] == -2.0 and summary["local_drop_worst_db"] == 2.0
    assert summary["border_frames_over_0.5db_local_drop"] == len(borders)


def test_shifted_run_prices_the_border_position_of_the_same_frame(seams):
    # The joint run is 1 dB worse on its border frames; the shifted run sees the same frames off its borders.
    joint = [30.0 - (1.0 if f in WINDOWS.borders() else 0.0) for f in range(32)]
    shifted = [30.0] * 32
    edit = {"clip": 0, "source_psnr": 10.0, "joint": route(joint), "shifted": route(shifted), "naive": route(shifted)}
    drops = seams.shift_drops([edit], WINDOWS)
    assert len(drops) == len(WINDOWS.borders()) and set(drops) == {1.0}
    summary = seams.summarise([edit], WINDOWS)
    assert summary["joint_border_cost_db"]["mean"] == 1.0 and summary["joint_minus_naive_border_db"] == -1.0
    # The control (frames off the borders in both runs) sees no cost here: only the border frames differ.
    control = summary["joint_interior_control_db"]
    assert control["mean"] == 0.0 and control["worst"] == 0.0 and control["frames"] > 0


def test_interior_control_carries_the_run_to_run_noise(seams):
    # Noise that is the same everywhere shows in the control as much as at the borders: no seam.
    rng = np.random.default_rng(0)
    joint, shifted = list(30 + rng.normal(0, 0.5, 32)), list(30 + rng.normal(0, 0.5, 32))
    edit = {"clip": 0, "source_psnr": 10.0, "joint": route(joint), "shifted": route(shifted)}
    summary = seams.summarise([edit], WINDOWS)
    assert summary["joint_interior_control_db"]["std"] > 0.2 and summary["joint_border_cost_db"]["std"] > 0.2


def test_a_border_cost_counts_as_a_seam_only_beyond_two_standard_errors_of_the_seeds(seams):
    # Four edit seeds per route. The joint run's border frames are 1 dB worse on every seed (a seam); at its
    # interior frames the seeds scatter by +-1 dB around the same mean (no seam, however large one draw's gap).
    borders = set(WINDOWS.borders())
    offsets = [1.0, -1.0, 1.0, -1.0]
    joint = [[30.0 - (1.0 if f in borders else 0.0) + (o if f not in borders else 0.0) for f in range(32)]
             for o in offsets]
    shifted = [[30.0] * 32 for _ in offsets]

    def over_seeds(runs):
        return {**seams.over_seeds([route(r) for r in runs], [0, 1, 2, 3]), "seconds": 1.0}

    edit = {"clip": 0, "source_psnr": 10.0, "joint": over_seeds(joint), "shifted": over_seeds(shifted)}
    assert edit["joint"]["psnr"][0] == 30.0 and edit["joint"]["psnr_per_seed"][1][0] == 29.0
    cost = seams.summarise([edit], WINDOWS)["joint_border_cost_db"]
    assert cost["mean"] == 1.0 and cost["standard_error_mean"] == 0.0
    assert cost["over_0.5db_by_2_standard_errors"] == cost["frames"] > 0
    # The same 1 dB at the borders, but scattered as much as the interior: not clear of the seeds' noise.
    noisy = [[v + (3 * o if f in borders else 0.0) for f, v in enumerate(r)] for r, o in zip(joint, offsets)]
    edit["joint"] = over_seeds(noisy)
    cost = seams.summarise([edit], WINDOWS)["joint_border_cost_db"]
    assert cost["mean"] == 1.0 and cost["over_0.5db_by_2_standard_errors"] == 0


def _seam_runs(seams, windows, dip=0.0, drift=0.0, difficulty=None, offset=0.0):
    """A joint and a shifted run of one clip: both `dip` dB worse on their own window borders (the same
    method, the same grid), each motion frame m as hard as `difficulty[m]` in both, and the joint run
    drifting `drift` dB a frame below the shifted one, plus `offset` on its border frames."""
    borders = set(windows.borders())
    n = windows.frames
    hard = np.zeros(n + seams.SHIFT) if difficulty is None else difficulty
    joint = [30.0 - hard[f] - dip * (f in borders) - offset * (f in borders) - drift * f for f in range(n)]
    shifted = [30.0 - hard[i + seams.SHIFT] - dip * (i in borders) for i in range(n)]  # frame i: motion i + SHIFT
    return joint, shifted


def test_border_seam_is_found_through_frame_difficulty_and_a_drift_that_fool_the_plain_shift_cost(seams):
    """The difference in differences finds a 1 dB seam at every border it can pair, whatever each motion
    frame's own difficulty; a drift of 0.1 dB a frame alone reads as -0.1 (its change over SHIFT frames,
    halved: no seam), where the plain shift cost reads it as seams of over 2 dB."""
    hard = np.random.default_rng(0).normal(0, 2.0, 32 + seams.SHIFT)
    joint, shifted = _seam_runs(seams, WINDOWS, dip=1.0, difficulty=hard)
    edit = {"clip": 0, "source_psnr": 10.0, "joint": route(joint), "shifted": route(shifted)}
    estimates, errors = seams.border_seams([edit], WINDOWS)
    assert errors is None and len(estimates) == len(WINDOWS.borders())  # 32 frames, 8/4: every border pairs
    assert np.allclose(estimates, 1.0)
    joint, shifted = _seam_runs(seams, WINDOWS, drift=0.1)
    edit = {"clip": 0, "source_psnr": 10.0, "joint": route(joint), "shifted": route(shifted)}
    assert np.allclose(seams.border_seams([edit], WINDOWS)[0], -0.1)
    assert seams.summarise([edit], WINDOWS)["joint_border_cost_db"]["worst"] > 2.0  # read as a seam by the plain cost


def test_border_seam_pairs_only_borders_whose_partner_frames_lie_off_the_borders(seams):
    # 30 frames: the last window starts at 22, so borders 20 and 22 are two apart and neither can pair.
    windows = Windows.for_clip(30, 8, 4)
    joint, shifted = _seam_runs(seams, windows, dip=1.0)
    edit = {"clip": 0, "source_psnr": 10.0, "joint": route(joint), "shifted": route(shifted)}
    paired = [f for _, f in seams.seam_pairs([edit], windows)]
    assert paired == [f for f in windows.borders() if f not in (20, 22)]
    assert np.allclose(seams.border_seams([edit], windows)[0], 1.0)


def test_border_seam_standard_error_comes_from_the_seeds(seams):
    """Per seed the joint run's borders cost another amount (the shifted run is the same): the estimate is
    their mean, its standard error their spread over the seeds; 1 dB +- 0.1 is a seam, 0.1 dB +- 0.1 is not."""
    def edit(costs):
        runs = [_seam_runs(seams, WINDOWS, dip=1.0, offset=c) for c in costs]
        return {"clip": 0, "source_psnr": 10.0,
                "joint": {**seams.over_seeds([route(j) for j, _ in runs], [0, 1, 2, 3]), "seconds": 1.0},
                "shifted": {**seams.over_seeds([route(s) for _, s in runs], [0, 1, 2, 3]), "seconds": 1.0}}

    costs = [0.0, 0.2, -0.2, 0.4]  # on top of the 1 dB seam both runs share; each seed's estimate is 1 + cost / 2
    per_seed = 1.0 + np.array(costs) / 2
    estimates, errors = seams.border_seams([edit(costs)], WINDOWS)
    assert np.allclose(estimates, per_seed.mean())
    assert np.allclose(errors, np.std(per_seed, ddof=1) / 2)  # over 4 seeds
    summary = seams.summarise([edit(costs)], WINDOWS)["joint_border_seam_db"]
    assert summary["over_0.5db_by_2_standard_errors"] == summary["frames"] == 12
    assert summary["under_0.5db_by_2_standard_errors"] == 0
    small = [c - 1.8 for c in costs]  # estimates 1 + (c - 1.8) / 2 = 0.1 + c / 2: a small seam, clear of 0.5 dB
    summary = seams.summarise([edit(small)], WINDOWS)["joint_border_seam_db"]
    assert summary["under_0.5db_by_2_standard_errors"] == 12 and summary["over_0.5db_by_2_standard_errors"] == 0


def test_merge_refuses_runs_of_other_settings_or_the_same_clip(seams, tmp_path):
    base = {"windows": WINDOWS.describe(), "settings": {"iterations": 30}, "seed": 0, "frames": 32, "command": "c"}
    edit = {"source_psnr": 10.0, "joint": route([30.0] * 32), "naive": route([29.0] * 32)}
    paths = []
    for clip in (0, 1):
        paths.append(tmp_path / f"clip{clip}.json")
        paths[-1].write_text(json.dumps({**base, "edits": [{**edit, "clip": clip}]}))
    merged = seams.merge(type("Args", (), {"inputs": [str(p) for p in paths]}))
    assert [e["clip"] for e in merged["edits"]] == [0, 1] and merged["summary"]["joint"]["clips"] == 2
    with pytest.raises(SystemExit, match="share a clip"):
        seams.merge(type("Args", (), {"inputs": [str(paths[0])] * 2}))
    paths[1].write_text(json.dumps({**base, "frames": 64, "edits": [{**edit, "clip": 1}]}))
    with pytest.raises(SystemExit, match="frames"):
        seams.merge(type("Args", (), {"inputs": [str(p) for p in paths]}))


def test_merge_pools_runs_of_the_same_clip_over_other_edit_seeds(seams, tmp_path):
    rng = np.random.default_rng(0)
    runs = {r: [list(30 + rng.normal(size=32)) for _ in range(4)] for r in ("joint", "shifted")}

    def report(seeds):
        edit = {"clip": 0, "source": "s", "target": "t", "source_psnr": 10.0}
        for r, per_seed in runs.items():
            edit[r] = {**seams.over_seeds([route(per_seed[s]) for s in seeds], seeds), "first_frame": 0,
                       "seconds": 1.0 * len(seeds)}
        return {"windows": WINDOWS.describe(), "settings": {"iterations": 30, "edit_seeds": seeds}, "seed": 0,
                "frames": 32, "edits": [edit], "command": f"seeds {seeds}"}

    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    paths[0].write_text(json.dumps(report([0, 1])))
    paths[1].write_text(json.dumps(report([2, 3])))
    merged = seams.merge(type("Args", (), {"inputs": [str(p) for p in paths]}))
    whole = report([0, 1, 2, 3])
    assert merged["settings"]["edit_seeds"] == [0, 1, 2, 3] and merged["edits"][0]["joint"]["seconds"] == 4.0
    assert merged["merged_from"] == {str(paths[0]): "seeds [0, 1]", str(paths[1]): "seeds [2, 3]"}
    # merged onto itself (to recompute the summary), twice: each step and the runs stay on record
    m = tmp_path / "m.json"
    merged["command"] = "merge a b"
    m.write_text(json.dumps(merged))
    once = {**seams.merge(type("Args", (), {"inputs": [str(m)]})), "command": "merge m onto itself"}
    m.write_text(json.dumps(once))
    twice = seams.merge(type("Args", (), {"inputs": [str(m)]}))["merged_from"]
    assert twice == {str(m): {"command": "merge m onto itself", "merged_from": {str(m): {
        "command": "merge a b", "merged_from": {str(paths[0]): "seeds [0, 1]", str(paths[1]): "seeds [2, 3]"}}}}}
    np.testing.assert_allclose(merged["edits"][0]["joint"]["psnr"], whole["edits"][0]["joint"]["psnr"])
    assert merged["summary"] == seams.summarise(whole["edits"], WINDOWS)  # standard errors over all four seeds
    # the same seeds twice, or another clip text under the same index, are refused
    with pytest.raises(SystemExit, match="share a clip"):
        seams.merge(type("Args", (), {"inputs": [str(paths[0])] * 2}))
    other = report([2, 3])
    other["edits"][0]["target"] = "u"
    paths[1].write_text(json.dumps(other))
    with pytest.raises(SystemExit, match="target differs"):
        seams.merge(type("Args", (), {"inputs": [str(p) for p in paths]}))


def test_compare_pairs_two_routes_seed_by_seed(seams, tmp_path):
    borders = set(WINDOWS.borders())
    seeds = [0, 1, 2, 3]

    def run(route_name, psnr_of, flicker_of, seed_list=seeds):
        runs = [route([psnr_of(s, f) for f in range(32)], [flicker_of(s, f) for f in range(32)]) for s in seed_list]
        edit = {"clip": 0, "source": "s", "target": "t", "source_psnr": 10.0,
                route_name: {**seams.over_seeds(runs, seed_list), "first_frame": 0, "seconds": 1.0}}
        return {"windows": WINDOWS.describe(), "settings": {}, "seed": 0, "frames": 32, "edits": [edit]}

    # the first route: the same PSNR give or take a seed's luck, 1.0 less flicker at every border frame
    first = run("joint", lambda s, f: 30.0 + (0.3 if s % 2 else -0.3), lambda s, f: 5.0 + s - (1.0 if f in borders else 0))
    second = run("naive", lambda s, f: 30.0, lambda s, f: 5.0 + s)
    paths = {name: tmp_path / f"{name}.json" for name in ("first", "second")}
    paths["first"].write_text(json.dumps(first))
    paths["second"].write_text(json.dumps(second))
    args = type("Args", (), {"inputs": [f"{paths['first']}:joint", f"{paths['second']}:naive"]})
    summary = seams.compare(args)["summary"]
    flicker = summary["flicker_border_first_minus_second"]
    assert flicker["mean"] == -1.0 and flicker["first_better_in"] == 4 and flicker["first_better_by_2_standard_errors"]
    psnr = summary["psnr_clip_first_minus_second"]
    assert psnr["mean"] == 0.0 and psnr["first_better_in"] == 2 and not psnr["first_better_by_2_standard_errors"]
    paths["second"].write_text(json.dumps(run("naive", lambda s, f: 30.0, lambda s, f: 5.0, seed_list=[4, 5, 6, 7])))
    with pytest.raises(SystemExit, match="other edit seeds"):
        seams.compare(args)
    # a route that edits other frames of the motion, or another edit, is no pair
    shifted = run("naive", lambda s, f: 30.0, lambda s, f: 5.0)
    shifted["edits"][0]["naive"]["first_frame"] = 2
    paths["second"].write_text(json.dumps(shifted))
    with pytest.raises(SystemExit, match="other frames"):
        seams.compare(args)
    other = run("naive", lambda s, f: 30.0, lambda s, f: 5.0)
    other["settings"]["edit_kind"] = "texture"
    paths["second"].write_text(json.dumps(other))
    with pytest.raises(SystemExit, match="edit kind"):
        seams.compare(args)


def test_detail_ratio_falls_when_two_disagreeing_edits_are_cross_faded(seams):
    """The "detail" measure: 1 for the truth itself, below 1 for a blend of two edits whose fine texture
    disagrees (what the naive route's cross-fade does), read only inside the edited region."""
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 256, size=(3, 16, 16, 3)).astype(np.uint8)
    other = rng.integers(0, 256, size=(3, 16, 16, 3)).astype(np.uint8)  # as detailed as the truth, but other
    region = np.zeros((3, 16, 16), bool)
    region[:, 4:12, 4:12] = True
    assert np.allclose(seams.per_frame(truth, truth, region)["detail"], 1.0)
    blend = ((truth.astype(np.float64) + other) / 2).round().astype(np.uint8)
    detail = seams.per_frame(blend, truth, region)["detail"]
    assert all(0.4 < d < 0.65 for d in detail)  # two independent textures averaged: about half the energy
    flat_outside = truth.copy()
    flat_outside[:, :2] = 0  # changes outside the region (and its rim) do not count
    assert np.allclose(seams.per_frame(flat_outside, truth, region)["detail"], 1.0)
    assert "detail" not in seams.per_frame(truth, truth)


def test_compare_and_merge_carry_detail_where_every_run_measured_it(seams, tmp_path):
    seeds = [0, 1, 2]

    def run(route_name, detail, with_detail=True, seed_list=seeds):
        runs = [{**route([30.0] * 32), **({"detail": [detail + 0.01 * s] * 32} if with_detail else {})}
                for s in seed_list]
        edit = {"clip": 0, "source": "s", "target": "t", "source_psnr": 10.0,
                route_name: {**seams.over_seeds(runs, seed_list), "first_frame": 0, "seconds": 1.0}}
        return {"windows": WINDOWS.describe(), "settings": {"edit_seeds": seed_list}, "seed": 0, "frames": 32,
                "edits": [edit], "command": "c"}

    paths = [tmp_path / f"{i}.json" for i in range(3)]
    paths[0].write_text(json.dumps(run("joint", 0.95)))
    paths[1].write_text(json.dumps(run("naive", 0.60)))
    args = type("Args", (), {"inputs": [f"{paths[0]}:joint", f"{paths[1]}:naive"]})
    detail = seams.compare(args)["summary"]["detail_error_clip_first_minus_second"]
    assert detail["mean"] == pytest.approx(0.05 - 0.40, abs=1e-3) and detail["first_better_in"] == 3
    assert seams.summarise(run("joint", 0.95)["edits"], WINDOWS)["joint"]["detail_mean"] == 0.96
    # merged with a run made before the measure existed, the pooled run has none (and compare leaves it out)
    paths[2].write_text(json.dumps(run("joint", 0.95, with_detail=False, seed_list=[3, 4])))
    merged = seams.merge(type("Args", (), {"inputs": [str(paths[0]), str(paths[2])]}))
    assert "detail" not in merged["edits"][0]["joint"] and "psnr_per_seed" in merged["edits"][0]["joint"]
    paths[2].write_text(json.dumps(run("joint", 0.95, with_detail=False)))
    args = type("Args", (), {"inputs": [f"{paths[2]}:joint", f"{paths[1]}:naive"]})
    assert "detail_error_clip_first_minus_second" not in seams.compare(args)["summary"]


@pytest.mark.parametrize("kind", ["colour", "texture"])
def test_seams_runs_end_to_end_for_each_edit_kind(seams, tmp_path, kind):
    # One iteration on the embedded prior, CPU: the run's wiring (edit kinds, masks, routes, the JSON), not its numbers.
    out = tmp_path / "seams.json"
    assert seams.main(["seams", "--frames", "12", "--window", "8", "--overlap", "4", "--iterations", "1",
                       "--clips", "0", "--kind", kind, "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["settings"]["edit_kind"] == kind
    edit = report["edits"][0]
    assert all(len(edit[route]["psnr"]) == 12 and len(edit[route]["detail"]) == 12 for route in ("joint", "naive", "shifted"))


def test_seams_with_edit_seeds_measures_each_seed_and_their_mean(seams, tmp_path):
    out = tmp_path / "seams.json"
    assert seams.main(["seams", "--frames", "12", "--window", "8", "--overlap", "4", "--iterations", "1",
                       "--clips", "0", "--routes", "joint", "shifted", "--edit-seeds", "0", "1",
                       "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    joint = report["edits"][0]["joint"]
    assert report["settings"]["edit_seeds"] == [0, 1] and joint["seeds"] == [0, 1]
    assert np.allclose(joint["psnr"], np.mean(joint["psnr_per_seed"], axis=0))
    assert joint["psnr_per_seed"][0] != joint["psnr_per_seed"][1]  # two seeds, two draws
    assert "over_0.5db_by_2_standard_errors" in report["summary"]["joint_border_cost_db"]


def test_per_frame_noise_of_the_probe_does_not_depend_on_the_clip_length():
    # noise_draw_probe.py's premise: under --noise per-frame, frames 0-7 get the same noise at any N
    # (and the same timestep as the edit's own draw), so N = 8 and N = 24 compare windowing alone.
    import torch

    from dreammotion.edit import optimizer

    probe = load_bench_script("long/noise_draw_probe.py", "noise_draw_probe_bench")
    config = type("Config", (), {"seed": 3, "t_min": 20, "t_max": 980, "window": 0, "window_noise": "clip"})()
    job = type("Job", (), {"config": config})()

    def state(frames):
        return type("State", (), {"job": job, "iteration": 5, "x": torch.zeros(1, 2, frames, 4, 4)})()

    t8, noise8, _ = probe.per_frame_draws(state(8))
    t24, noise24, _ = probe.per_frame_draws(state(24))
    own_t, _, _ = optimizer._draws(state(8))
    assert t8 == t24 == own_t
    assert noise24.shape == (1, 2, 24, 4, 4)
    assert torch.equal(noise8, noise24[:, :, :8])
    assert not torch.equal(noise24[:, :, 0], noise24[:, :, 1])
