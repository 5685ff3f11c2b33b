#!/usr/bin/env bash
# One device call of prior work (bench/prior/NOTES.md lists the calls that were made).
#   bash bench/prior/gpu_session.sh ablation      throughput bench + loss-weighting ablation (two short runs, gates)
#   bash bench/prior/gpu_session.sh throughput VARIANTS   bench/prior/throughput.py --variants VARIANTS --profile
#   bash bench/prior/gpu_session.sh train ARGS    continue training the shipped prior (ARGS go to dreammotion.prior.train)
#   bash bench/prior/gpu_session.sh step VARIANT  the short-attention kernels alone (frame_attention.py, batch $BATCH,
#                                                 default 1024), then the step VARIANT at their fastest setting
#   bash bench/prior/gpu_session.sh tests         the GPU tests of the kernels and the training step
# Runs on the lent GPU machine: carries diffusers as a wheel (.whl), writes everything under $OUT.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
OUT=${OUT:?}
mode=$1; shift
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv | tee "$OUT/gpu.txt"
case "$mode" in
throughput)
  python3 bench/prior/throughput.py --out "$OUT/throughput.json" --variants "${1:-all}" --profile 2>&1 | tee "$OUT/throughput.log"
  ;;
ablation)
  python3 bench/prior/throughput.py --out "$OUT/throughput.json" --profile 2>&1 | tee "$OUT/throughput.log"
  for gamma in 5 0; do
    python3 -m dreammotion.prior.train --out /tmp/ablation_snr$gamma --minutes "${ABLATION_MINUTES:-1.6}" \
      --snr-gamma $gamma --warmup 100 --log-every 100 "$@" 2>&1 | tee "$OUT/train_snr$gamma.log"
    python3 -m dreammotion.prior.gates --model /tmp/ablation_snr$gamma --n 24 --out "$OUT/gates_snr$gamma.json" \
      2>&1 | tee -a "$OUT/train_snr$gamma.log"
  done
  # Keep the weights of the cleaner variant (lower background noise), to continue from.
  winner=$(python3 -c "
import json
noise = {g: json.load(open('$OUT/gates_snr%s.json' % g))['background_noise_std'] for g in ('5', '0')}
print(min(noise, key=noise.get))")
  echo "winner: snr_gamma=$winner" | tee -a "$OUT/throughput.log"
  python3 -c "
from pathlib import Path; from dreammotion.prior.train import write_archive
write_archive(Path('/tmp/ablation_snr$winner'), Path('$OUT/prior'))"
  ;;
train)
  python3 -m dreammotion.prior.train --out /tmp/prior "$@" --archive "$OUT/prior" 2>&1 | tee "$OUT/train.log"
  python3 -m dreammotion.prior.gates --model /tmp/prior --n 48 --out "$OUT/gates.json" 2>&1 | tee -a "$OUT/train.log" || true
  ;;
step)
  # Time limits that fit one call (10 minutes); both scripts write their JSON as they go.
  timeout 190 python3 bench/prior/frame_attention.py --out "$OUT/frame_attention.json" --batch "${BATCH:-1024}" \
    2>&1 | tee "$OUT/frame_attention.log"
  setting=$(python3 -c "import json; print(json.load(open('$OUT/frame_attention.json'))['fastest_fused_config'])") \
    || { setting=""; echo "no kernel timing came back: the step runs the shipped kernel setting" | tee -a "$OUT/frame_attention.log"; }
  timeout 400 python3 bench/prior/throughput.py --out "$OUT/throughput.json" --steps 10 --profile \
    ${setting:+--frame-attention "$setting"} --variants "${1:?a throughput.py variant}" 2>&1 | tee "$OUT/throughput.log"
  ;;
tests)
  timeout "${TESTS_TIMEOUT:-500}" python3 -m pytest -q -p no:cacheprovider --tb=short -rfE \
    tests/frame_attention_interpreted.py tests/test_prior_cuda.py 2>&1 | tee "$OUT/tests.log"
  ;;
*) echo "unknown mode $mode" >&2; exit 2 ;;
esac
ls -la "$OUT"
