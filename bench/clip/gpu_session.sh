#!/usr/bin/env bash
# One device call: train dreammotion-shapes-clip, evaluate it, hand back the weights and the card.
#   bash bench/clip/gpu_session.sh MINUTES [ARGS]   ARGS go to dreammotion.clip.train (e.g. --batch 1024)
# Runs on the lent GPU machine; carry .whl (importing dreammotion.models imports diffusers, which
# the machine gets from the wheel). Writes under $OUT:
#   clip.tar.part*    the model folder dreammotion-shapes-clip/ (weights, tokenizer, processor,
#                     training.json, evaluation.json, README.md); unpack: cat clip.tar.part* | tar x
#   train.log, evaluate.log, training.json, evaluation.json, gpu.txt
# If the evaluation fails, the archive written by the training's last checkpoint is left in $OUT.
# Test of the whole path on a CPU (seconds):
#   OUT=/tmp/x CLIP_DEVICE=cpu CLIP_EVAL_N=4 PYTHON=.venv/bin/python SITE=/tmp/x-site \
#     bash bench/clip/gpu_session.sh 0.1 --preset tiny --batch 16
set -uo pipefail
PYTHON=${PYTHON:-python3}
SITE=${SITE:-/tmp/site}
"$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl || exit 1
export PYTHONPATH=$SITE:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
OUT=${OUT:?}
minutes=${1:?usage: gpu_session.sh MINUTES [train args]}; shift
device=${CLIP_DEVICE:-auto}
n=${CLIP_EVAL_N:-200}
model=${CLIP_WORK:-/tmp/clip}/dreammotion-shapes-clip
mkdir -p "$OUT"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv | tee "$OUT/gpu.txt"
else
  echo "no nvidia-smi (device: $device)" | tee "$OUT/gpu.txt"
fi
if ! "$PYTHON" -m dreammotion.clip.train --out "$model" --minutes "$minutes" --device "$device" \
    --archive "$OUT/clip" "$@" 2>&1 | tee "$OUT/train.log"; then
  echo "training failed" | tee -a "$OUT/train.log"; ls -la "$OUT"; exit 1
fi
cp "$model/training.json" "$OUT/training.json"
if ! "$PYTHON" -m dreammotion.clip.accuracy --model "$model" --out "$model/evaluation.json" --n "$n" \
    --device "$device" 2>&1 | tee "$OUT/evaluate.log"; then
  echo "evaluation failed: $OUT/clip.tar.part* holds the weights without the card" | tee -a "$OUT/evaluate.log"
  ls -la "$OUT"; exit 1
fi
cp "$model/evaluation.json" "$OUT/evaluation.json"
# Archive again, now with README.md and evaluation.json in the folder.
rm -f "$OUT"/clip.tar.part*
"$PYTHON" -c "
import sys; from pathlib import Path; from dreammotion.prior.train import write_archive
print('archive:', *write_archive(Path(sys.argv[1]), Path(sys.argv[2])))" "$model" "$OUT/clip" || exit 1
ls -la "$OUT"
