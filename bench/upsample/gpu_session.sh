#!/usr/bin/env bash
# One device call: train the conditioned 64x64 second stage, compare it with Lanczos, hand back the weights.
#   bash bench/upsample/gpu_session.sh ARGS     ARGS go to dreammotion.prior.train_refiner (e.g. --minutes 7)
# Runs on the lent GPU machine; carry .whl (diffusers comes as a wheel). Writes under $OUT:
#   refiner.tar.part*   the model folder (unpack: cat refiner.tar.part* | tar x)
#   train.log, evaluate_steps{1,4,25}.json (16 clips: PSNR / SSIM / object colour error of v2v and of resize),
#   evaluate_degraded.json (the same at 1 step on edit-like degraded 32x32 clips), gpu.txt
set -uo pipefail
PYTHON=${PYTHON:-python3}
SITE=${SITE:-/tmp/site}
"$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl || exit 1
export PYTHONPATH=$SITE:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
OUT=${OUT:?}
model=${REFINER_WORK:-/tmp/refiner}/dreammotion-shapes-refiner-64
mkdir -p "$OUT"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv | tee "$OUT/gpu.txt"
"$PYTHON" -m dreammotion.prior.train_refiner --out "$model" --archive "$OUT/refiner" "$@" 2>&1 | tee "$OUT/train.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || exit 1
# The recommended number of DDIM steps is measured, not assumed: one step from pure noise gives the
# model's posterior-mean estimate (the best PSNR a perfect model can reach), many give a sample.
for steps in ${REFINER_EVAL_STEPS:-1 4 25}; do
  "$PYTHON" -m dreammotion.prior.second_stage_quality "$model" --num-clips "${REFINER_EVAL_N:-16}" --steps "$steps" \
    --device "${REFINER_DEVICE:-auto}" --out "$OUT/evaluate_steps$steps.json" 2>&1 | grep mean_ | tee -a "$OUT/evaluate.log"
done
# The same clips degraded the way edits are (blur up to 1 px, colour offsets up to 4 levels; the truth stays clean).
"$PYTHON" -m dreammotion.prior.second_stage_quality "$model" --num-clips "${REFINER_EVAL_N:-16}" --blur 1.0 --colour-shift 4 \
  --device "${REFINER_DEVICE:-auto}" --out "$OUT/evaluate_degraded.json" 2>&1 | grep mean_ | tee -a "$OUT/evaluate.log"
ls -la "$OUT"
