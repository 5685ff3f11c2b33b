"""Rebuild docs/demo.gif from a finished `make demo`: per demo row, input | edit | ground truth."""

from pathlib import Path

import numpy as np

from dreammotion.io.frames import read_frames
from dreammotion.io.write import side_by_side, upscale_nearest, write_gif
from dreammotion.manifest import load_manifest

ROOT = Path(__file__).resolve().parents[1]
rows = load_manifest(ROOT / "config/manifest.csv", ROOT / "workflow/schemas/manifest.schema.yaml")
panels = []
for row in rows:
    source = upscale_nearest(read_frames(ROOT / "results/frames" / row.video_key), 128)
    edit = upscale_nearest(read_frames(ROOT / "results/edits/dreammotion" / row.id / "frames"), 128)
    truth = upscale_nearest(read_frames(ROOT / "results/ground_truth" / row.id), 128)
    panels.append(side_by_side([source, edit, truth], labels=["input", "edit", "ground truth"], gap=4))
width = max(p.shape[2] for p in panels)
panels = [np.pad(p, ((0, 0), (0, 4), (0, width - p.shape[2]), (0, 0)), constant_values=255) for p in panels]
write_gif(np.concatenate(panels, axis=1), ROOT / "docs/demo.gif", fps=4, min_size=96)
print("wrote docs/demo.gif")
