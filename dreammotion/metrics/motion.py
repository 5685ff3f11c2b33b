"""Motion fidelity score (Yatim et al., CVPR 2024, "Space-Time Diffusion Features for Zero-Shot
Text-Driven Motion Transfer"), on CoTracker tracklets or, as a named substitute, on OpenCV
pyramidal Lucas-Kanade tracklets.

Definition (paper, Sec. "Metrics"; official ``motion_fidelity_score.py``): track points in the input
video, tracklets T = {tau_1..tau_n}, and in the edit, T~ = {tau~_1..tau~_m}. Two tracklets are
compared by their displacement sequences v_k = tau(k+1) - tau(k):

    corr(tau, tau~) = 1/(F-1) * sum_k  <v_k, v~_k> / (|v_k| |v~_k|)

and the score pairs every tracklet with its most similar tracklet of the other video, in both
directions (the paper's symmetric form); we report the mean of the two directional terms,

    MFS = 1/2 * ( 1/m sum_{tau~} max_{tau} corr(tau, tau~)  +  1/n sum_{tau} max_{tau~} corr(tau, tau~) )

so that the score lies in [-1, 1] and identical motion gives 1. Both directional terms are written
out too: ``edit_to_input`` is the one direction the official script computes (that script also
subtracts an identity matrix from the similarity matrix, which only makes sense for a video
compared with itself; we do not). As in the official script, query points are restricted to the
bounding box of the first frame's mask when ``use_mask`` is on, and each video is tracked on its own.

The paper leaves corr undefined for a step where a point does not move (zero displacement; the
official script divides by zero). We use a stated convention: a step whose displacement is shorter
than ``min_displacement_px`` has no direction; two such steps agree (similarity 1), one such step
against a moving one scores 0.

Against the truth (synthetic rows with the ground truth's object masks): the input's tracklets are
themselves estimates, so ``<name>_vs_truth`` scores the edit's tracklets against the *true*
trajectories of their own start points instead (a point on the object moves with the true object's
centroid, the rest of the synthetic scene is still: ``TRUE_TRACKS``), with the same formula; its
``track_error_px`` is the mean distance between each tracklet and its true trajectory. The edit is
still tracked by the configured tracker, whose name the metric keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dreammotion.metrics.results import MetricUnavailable, from_exception, ok

COTRACKER = "cotracker"
LUCAS_KANADE = "lucas-kanade"
AUTO = "auto"  # CoTracker when its checkpoint is configured, else Lucas-Kanade
TRACKERS = (AUTO, COTRACKER, LUCAS_KANADE)
METRIC_NAMES = {COTRACKER: "motion_fidelity_cotracker", LUCAS_KANADE: "motion_fidelity_lucas_kanade"}


@dataclass
class MotionSettings:
    tracker: str = AUTO
    use_mask: bool = True
    min_displacement_px: float = 0.1
    # Lucas-Kanade substitute
    max_points: int = 400
    window_px: int = 15
    pyramid_levels: int = 3
    forward_backward_px: float = 1.0
    # CoTracker
    cotracker_checkpoint: str | None = None
    cotracker_grid_size: int = 55


# -- the score ------------------------------------------------------------------------------------


def _unit_displacements(tracks: np.ndarray, min_displacement_px: float) -> tuple[np.ndarray, np.ndarray]:
    """tracks (N, F, 2) -> unit displacement vectors (N, F-1, 2) and a 'moving' flag (N, F-1)."""
    steps = np.diff(np.asarray(tracks, dtype=np.float64), axis=1)
    lengths = np.linalg.norm(steps, axis=-1)
    moving = lengths >= min_displacement_px
    units = np.where(moving[..., None], steps / np.maximum(lengths, 1e-12)[..., None], 0.0)
    return units, moving


def displacement_similarity(tracks_a: np.ndarray, tracks_b: np.ndarray, min_displacement_px: float = 0.1) -> np.ndarray:
    """(N, M) matrix of corr(a_i, b_j): mean over steps of the cosine between displacement vectors."""
    tracks_a, tracks_b = np.asarray(tracks_a), np.asarray(tracks_b)
    if tracks_a.shape[1] != tracks_b.shape[1]:
        raise ValueError(f"tracklets cover {tracks_a.shape[1]} and {tracks_b.shape[1]} frames; they must match")
    if tracks_a.shape[1] < 2:
        raise ValueError("tracklets need at least 2 frames to have a displacement")
    units_a, moving_a = _unit_displacements(tracks_a, min_displacement_px)
    units_b, moving_b = _unit_displacements(tracks_b, min_displacement_px)
    cosines = np.einsum("ntc,mtc->nmt", units_a, units_b)
    both_still = ~moving_a[:, None, :] & ~moving_b[None, :, :]
    cosines = np.where(both_still, 1.0, cosines)  # see the module docstring: still vs still agrees
    return np.clip(cosines.mean(axis=-1), -1.0, 1.0)


def motion_fidelity(input_tracks: np.ndarray, edit_tracks: np.ndarray, min_displacement_px: float = 0.1) -> dict:
    """Motion fidelity score of edit tracklets (m, F, 2) against input tracklets (n, F, 2)."""
    if len(input_tracks) == 0 or len(edit_tracks) == 0:
        raise ValueError(f"no tracklets to compare (input: {len(input_tracks)}, edit: {len(edit_tracks)})")
    similarity = displacement_similarity(edit_tracks, input_tracks, min_displacement_px)  # (m, n)
    edit_to_input = float(similarity.max(axis=1).mean())
    input_to_edit = float(similarity.max(axis=0).mean())
    return {
        "score": 0.5 * (edit_to_input + input_to_edit),
        "edit_to_input": edit_to_input,
        "input_to_edit": input_to_edit,
    }


# -- trackers -------------------------------------------------------------------------------------


def mask_box(mask: np.ndarray) -> np.ndarray:
    """Bool (H, W): the bounding box of mask > 0.5 (all True if the mask is empty or absent)."""
    box = np.zeros(mask.shape, dtype=bool)
    ys, xs = np.nonzero(mask > 0.5)
    if len(ys) == 0:
        box[:] = True
        return box
    box[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = True
    return box


def track_lucas_kanade(frames: np.ndarray, query_region: np.ndarray | None, settings: MotionSettings) -> tuple[np.ndarray, int]:
    """OpenCV pyramidal Lucas-Kanade tracklets (N, F, 2) in (x, y) pixels, and the number of query points.

    Query points are Shi-Tomasi corners of the first frame (inside `query_region`); a point is kept
    only if it is tracked through every frame and each step passes the forward-backward check
    (tracking back lands within ``forward_backward_px`` of where it started).
    """
    import cv2

    gray = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in frames]
    region = None if query_region is None else query_region.astype(np.uint8) * 255
    corners = cv2.goodFeaturesToTrack(
        gray[0], maxCorners=settings.max_points, qualityLevel=0.01, minDistance=3, mask=region
    )
    if corners is None:
        return np.zeros((0, len(frames), 2), dtype=np.float32), 0
    points = corners.reshape(-1, 1, 2).astype(np.float32)
    lk = dict(
        winSize=(settings.window_px, settings.window_px),
        maxLevel=settings.pyramid_levels,
        criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01),
    )
    height, width = gray[0].shape
    alive = np.ones(len(points), dtype=bool)
    path = [points.reshape(-1, 2).copy()]
    for t in range(len(frames) - 1):
        forward, status, _ = cv2.calcOpticalFlowPyrLK(gray[t], gray[t + 1], points, None, **lk)
        backward, status_back, _ = cv2.calcOpticalFlowPyrLK(gray[t + 1], gray[t], forward, None, **lk)
        round_trip = np.linalg.norm((backward - points).reshape(-1, 2), axis=-1)
        xy = forward.reshape(-1, 2)
        inside = (xy[:, 0] >= 0) & (xy[:, 0] <= width - 1) & (xy[:, 1] >= 0) & (xy[:, 1] <= height - 1)
        alive &= status.ravel().astype(bool) & status_back.ravel().astype(bool)
        alive &= (round_trip < settings.forward_backward_px) & inside
        path.append(xy.copy())
        points = forward
    tracks = np.stack(path, axis=1)[alive]  # (N, F, 2)
    return tracks, int(len(alive))


def load_cotracker(checkpoint: str | None, device: str = "cpu"):
    """CoTrackerPredictor from a local checkpoint, or MetricUnavailable saying what is missing."""
    if not checkpoint:
        raise MetricUnavailable("CoTracker weights are not configured (config cotracker.checkpoint is empty)")
    if not Path(checkpoint).expanduser().is_file():
        raise MetricUnavailable(f"CoTracker checkpoint {checkpoint} (config cotracker.checkpoint) does not exist")
    try:
        from cotracker.predictor import CoTrackerPredictor
    except ImportError as err:
        raise MetricUnavailable(
            "the cotracker package (facebookresearch/co-tracker) is not installed, so its checkpoint "
            f"{checkpoint} cannot be used ({err})"
        ) from err
    return CoTrackerPredictor(checkpoint=str(Path(checkpoint).expanduser())).to(device).eval()


def track_cotracker(model, frames: np.ndarray, query_region: np.ndarray | None, grid_size: int) -> tuple[np.ndarray, int]:
    """CoTracker grid tracklets (N, F, 2) in (x, y) pixels, as in the official motion fidelity script."""
    import torch

    device = next(model.parameters()).device
    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)[None].float().to(device)
    segm_mask = None
    if query_region is not None:
        segm_mask = torch.from_numpy(query_region.astype(np.float32))[None, None].to(device)
    with torch.no_grad():
        tracks, _visibility = model(video, grid_size=grid_size, segm_mask=segm_mask)
    tracks = tracks[0].permute(1, 0, 2).float().cpu().numpy()  # (T, N, 2) -> (N, T, 2)
    return tracks, int(tracks.shape[0])


# -- the metric -----------------------------------------------------------------------------------


def _score(track, input_frames, edit_frames, region, settings: MotionSettings, **details) -> tuple[dict, np.ndarray]:
    """The motion fidelity result of the edit against the input, and the edit's tracklets (N, F, 2)."""
    input_tracks, input_queries = track(input_frames, region)
    edit_tracks, edit_queries = track(edit_frames, region)
    if len(input_tracks) == 0 or len(edit_tracks) == 0:
        raise RuntimeError(
            f"no tracklet survived the whole clip (input: {len(input_tracks)} of {input_queries} query points, "
            f"edit: {len(edit_tracks)} of {edit_queries})"
        )
    score = motion_fidelity(input_tracks, edit_tracks, settings.min_displacement_px)
    result = ok(
        score["score"],
        edit_to_input=score["edit_to_input"],
        input_to_edit=score["input_to_edit"],
        input_tracklets=int(len(input_tracks)),
        edit_tracklets=int(len(edit_tracks)),
        query_region="bounding box of the first frame's mask" if region is not None else "whole frame",
        min_displacement_px=settings.min_displacement_px,
        **details,
    )
    return result, edit_tracks


# -- against the true trajectories (synthetic rows) -------------------------------------------------

TRUE_TRACKS = (
    "a point on the ground truth's object in the first frame (its mask dilated by 1 px, so that corners "
    "on the object's outline count) moves with the object's centroid; every other point stays still"
)


def _dilated(mask: np.ndarray) -> np.ndarray:
    """Bool (H, W) mask grown by one pixel in each of the 8 directions."""
    grown = mask.copy()
    padded = np.pad(mask, 1)
    height, width = mask.shape
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            grown |= padded[dy : dy + height, dx : dx + width]
    return grown


def true_tracks(start_points: np.ndarray, gt_object: np.ndarray) -> np.ndarray:
    """(N, F, 2) true trajectories of `start_points` (N, 2) (x, y at frame 0) in a synthetic clip whose
    only moving thing is the rigid object of `gt_object` (F, H, W) bool (see ``TRUE_TRACKS``)."""
    from dreammotion.metrics.groundtruth import centroid

    centres = [centroid(frame) for frame in gt_object]
    if any(c is None for c in centres):
        empty = [i for i, c in enumerate(centres) if c is None]
        raise MetricUnavailable(f"the ground-truth object mask is empty in frame(s) {empty}: no true trajectory")
    offsets = np.asarray(centres, dtype=np.float64) - np.asarray(centres[0], dtype=np.float64)  # (F, 2)
    height, width = gt_object.shape[1:]
    xs = np.clip(np.rint(start_points[:, 0]).astype(int), 0, width - 1)
    ys = np.clip(np.rint(start_points[:, 1]).astype(int), 0, height - 1)
    on_object = _dilated(gt_object[0])[ys, xs].astype(np.float64)  # (N,)
    return start_points[:, None, :].astype(np.float64) + on_object[:, None, None] * offsets[None, :, :]


def fidelity_to_truth(edit_tracks: np.ndarray, gt_object: np.ndarray, settings: MotionSettings, **details) -> dict:
    """Motion fidelity of the edit's tracklets against the true trajectories of their own start points,
    and the mean distance between each tracklet and its true trajectory (``track_error_px``)."""
    truth = true_tracks(edit_tracks[:, 0, :], gt_object)
    score = motion_fidelity(truth, edit_tracks, settings.min_displacement_px)
    error = float(np.linalg.norm(edit_tracks - truth, axis=-1).mean())
    return ok(
        score["score"],
        edit_to_truth=score["edit_to_input"],
        truth_to_edit=score["input_to_edit"],
        track_error_px=error,
        tracklets=int(len(edit_tracks)),
        true_trajectories=TRUE_TRACKS,
        **details,
    )


def _ground_truth_score(track, gt_frames, gt_object, region, settings) -> float | None:
    """The vs-truth score of the ground-truth clip (None if no tracklet survives in it)."""
    gt_tracks, _ = track(gt_frames, region)
    if len(gt_tracks) == 0:
        return None
    return float(fidelity_to_truth(gt_tracks, gt_object, settings)["value"])


def truth_metric_name(name: str) -> str:
    """``motion_fidelity_<tracker>`` -> ``motion_fidelity_<tracker>_vs_truth``."""
    return f"{name}_vs_truth"


def _tracked(name, track, input_frames, edit_frames, region, settings, gt_masks, gt_frames=None, **details) -> dict:
    """The named motion fidelity score and, with ground-truth object masks, its form against the truth
    (with the same score of the ground-truth clip itself, ``ground_truth_score``: the tracker's own
    accuracy, the best an edit can get)."""
    results = {}
    try:
        results[name], edit_tracks = _score(track, input_frames, edit_frames, region, settings, **details)
    except Exception as err:  # recorded as failed with its reason, never dropped
        results[name] = from_exception(err)
        edit_tracks = None
    if gt_masks is not None:
        truth_name = truth_metric_name(name)
        if edit_tracks is None:
            results[truth_name] = from_exception(RuntimeError(f"{name} failed, so the edit has no tracklets: {results[name]['reason']}"))
        else:
            try:
                results[truth_name] = fidelity_to_truth(edit_tracks, gt_masks > 0.5, settings, tracker=details.get("tracker"))
                if gt_frames is not None:
                    results[truth_name]["ground_truth_score"] = _ground_truth_score(track, gt_frames, gt_masks > 0.5, region, settings)
            except Exception as err:
                results[truth_name] = from_exception(err)
    return results


def resolved_tracker(settings: MotionSettings) -> str:
    """``auto`` is CoTracker when its checkpoint is configured, else the Lucas-Kanade substitute."""
    if settings.tracker == AUTO:
        return COTRACKER if settings.cotracker_checkpoint else LUCAS_KANADE
    return settings.tracker


def compute_motion_metrics(
    input_frames: np.ndarray, edit_frames: np.ndarray, masks: np.ndarray, settings: MotionSettings, device: str = "cpu",
    gt_masks: np.ndarray | None = None, gt_frames: np.ndarray | None = None,
) -> dict:
    """The motion fidelity score under the name of the tracker that produced it, and with ground-truth
    object masks (`gt_masks`, (F, H, W)) also ``<name>_vs_truth`` against the true trajectories.

    ``tracker="auto"``: CoTracker with a configured checkpoint (a checkpoint that fails to load is
    reported missing/failed, nothing else is computed in its place), else the Lucas-Kanade substitute.
    ``tracker="cotracker"`` and CoTracker unavailable: ``motion_fidelity_cotracker`` is reported
    missing (with the reason) and ``motion_fidelity_lucas_kanade`` is computed as the named substitute.
    """
    if settings.tracker not in TRACKERS:
        raise ValueError(f"motion tracker must be one of {sorted(TRACKERS)}, got {settings.tracker!r}")
    tracker = resolved_tracker(settings)
    region = mask_box(masks[0]) if settings.use_mask else None
    results = {}
    substitute_for = None
    if tracker == COTRACKER:
        name = METRIC_NAMES[COTRACKER]
        try:
            model = load_cotracker(settings.cotracker_checkpoint, device)
            track = lambda frames, reg: track_cotracker(model, frames, reg, settings.cotracker_grid_size)  # noqa: E731
            return _tracked(
                name, track, input_frames, edit_frames, region, settings, gt_masks, gt_frames,
                tracker="CoTracker", checkpoint=settings.cotracker_checkpoint, grid_size=settings.cotracker_grid_size,
            )
        except MetricUnavailable as err:
            results[name] = from_exception(err)
            if settings.tracker == AUTO:  # a configured checkpoint that cannot be used: said so, no stand-in
                return results
            substitute_for = name
        except Exception as err:  # recorded as failed with its reason, never dropped
            results[name] = from_exception(err)
            return results
    name = METRIC_NAMES[LUCAS_KANADE]
    track = lambda frames, reg: track_lucas_kanade(frames, reg, settings)  # noqa: E731
    details = dict(
        tracker="OpenCV pyramidal Lucas-Kanade with forward-backward check (not CoTracker)",
        forward_backward_px=settings.forward_backward_px,
    )
    if substitute_for:
        details["substitute_for"] = substitute_for
    try:
        results.update(_tracked(name, track, input_frames, edit_frames, region, settings, gt_masks, gt_frames, **details))
    except Exception as err:
        results[name] = from_exception(err)
    return results
