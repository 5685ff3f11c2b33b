"""Mean ground-truth PSNR (and PSNR outside the edit region) per variant and edit kind, from the
metrics records of a benchmark run: which kinds of edit each part of the method helps or hurts.

    python bench/quality/per_kind.py results/benchmark-run/metrics --out bench/quality/per_kind.json
"""

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("metrics", type=Path, help="results/<run>/metrics (one folder per variant)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    values = defaultdict(lambda: defaultdict(list))
    for path in sorted(args.metrics.glob("*/*.json")):
        record = json.loads(path.read_text())
        if record["status"] != "ok":
            continue
        kind = record["labels"].get("edit_kind", "all")
        for name in ("gt_psnr", "gt_psnr_outside_mask"):
            value = (record["metrics"].get(name) or {}).get("value")
            if value is not None and math.isfinite(value):  # an exact copy (inf dB) is left out
                values[(record["variant"], kind)][name].append(value)
    table = {f"{variant}/{kind}": {name: {"mean": round(sum(v) / len(v), 2), "n": len(v)} for name, v in metrics.items()}
             for (variant, kind), metrics in sorted(values.items())}
    text = json.dumps(table, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
