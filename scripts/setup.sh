#!/usr/bin/env bash
# Create .venv with dreammotion, Snakemake and the test tools. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
if ! command -v "$PYTHON" >/dev/null; then
  echo "setup: $PYTHON not found; dreammotion needs Python 3.11 (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
stamp=.venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)
if [ -f "$stamp" ]; then
  exit 0
fi
echo "setup: creating .venv with $PYTHON and installing dreammotion, Snakemake and the test tools"
echo "setup: a few minutes and ~6 GB the first time (torch 2.14.1 is PyPI's CUDA build, ~3 GB of CUDA"
echo "       libraries; it runs on CPUs too; README 'Install notes' says why there is no CPU-only install)"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# torch/torchvision are pinned in pyproject.toml (2.14.1 / 0.29.1).
.venv/bin/python -m pip install --quiet --progress-bar off -e '.[workflow,test]'
rm -f .venv/.installed-*
touch "$stamp"
echo "setup: .venv ready ($(.venv/bin/python -c 'import torch, diffusers, snakemake; print("torch", torch.__version__, "diffusers", diffusers.__version__, "snakemake", snakemake.__version__)'))"
