#!/usr/bin/env bash
# Issue #5 benchmark: the best SST-2 BiLSTM and TinyBERT students of the two benchmarks before as fp32 ONNX,
# dynamic int8, static int8 and (transformer) QAT int8, with file sizes and dev accuracy through ONNX Runtime.
# Usage: bash benchmarks/sst2_export.sh [RUN_DIR] [BILSTM_NAME] [TINYBERT_NAME]
. "$(dirname "$0")/lib.sh"
RUN=${1:-benchmarks/runs/sst2}
BILSTM=${2:-bilstm-glove}
TINY=${3:-tinybert-3l-twostage}
RES=benchmarks/results/sst2_export
mkdir -p "$RES"

bundle() {  # name student extra-args...
  local name=$1 student=$2; shift 2
  [ -f "$RUN/bundles/$name/manifest.json" ] && return
  local t0; t0=$(date +%s)
  kdedge export --model "$student" --out "$RUN/bundles/$name" "$@" 2>&1 | without_progress > "$RES/$name.log"
  echo "$name wall_s=$(( $(date +%s) - t0 ))" | tee -a "$RES/times.txt"
}

for q in none dynamic static; do
  bundle "$BILSTM-$q" "$RUN/$BILSTM" --quantize $q
  bundle "$TINY-$q" "$RUN/$TINY" --quantize $q
done
bundle "$TINY-optimized-dynamic" "$RUN/$TINY" --optimize --quantize dynamic

# QAT: one epoch of quantization-aware fine-tuning of the distilled transformer, teacher still in the loss.
stage "$TINY-qat" "$RUN/$TINY-qat" "$RES" kdedge distill --config configs/sst2-tinybert.yaml \
  --teacher "$RUN/teacher" --init "pretrained:$RUN/$TINY" --epochs 0 --qat --qat-epochs 1 --max-train-samples 20000
bundle "$TINY-qat-int8" "$RUN/$TINY-qat" --quantize qat

python benchmarks/collect_bundles.py "$RUN/bundles" > "$RES/summary.md"
cat "$RES/summary.md"
