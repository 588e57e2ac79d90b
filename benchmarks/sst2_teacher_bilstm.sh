#!/usr/bin/env bash
# Issue #2 benchmark: the all-MiniLM-L6-v2 teacher fine-tuned on full SST-2, then the BiLSTM student
# distilled from it on SST-2 train (no augmentation). Wall time of each step goes to results/.
# Usage: bash benchmarks/sst2_teacher_bilstm.sh [RUN_DIR]   (offline settings as in the README)
set -euo pipefail
RUN=${1:-benchmarks/runs/sst2}
RES=benchmarks/results/sst2_teacher_bilstm
mkdir -p "$RUN" "$RES"
: "${KDEDGE_DATA_DIR:?set KDEDGE_DATA_DIR to a GLUE folder}"

timed() {  # name, command...
  local name=$1; shift
  local t0=$(date +%s)
  "$@" 2>&1 | tr '\r' '\n' | grep -v '%|' > "$RES/$name.log"
  echo "$name wall_s=$(( $(date +%s) - t0 ))" | tee -a "$RES/times.txt"
}

[ -d "$RUN/teacher" ] || timed teacher kdedge teacher --config configs/sst2-teacher.yaml --out "$RUN/teacher"
cp "$RUN/teacher/metrics.json" "$RES/teacher_metrics.json"

[ -d "$RUN/bilstm-glove" ] || timed bilstm_glove kdedge distill --config configs/sst2-bilstm.yaml \
  --teacher "$RUN/teacher" --out "$RUN/bilstm-glove"
cp "$RUN/bilstm-glove/metrics.json" "$RES/bilstm_glove_metrics.json"

[ -d "$RUN/bilstm-wordpiece" ] || timed bilstm_wordpiece kdedge distill --config configs/sst2-bilstm.yaml \
  --word-vectors "" --teacher "$RUN/teacher" --out "$RUN/bilstm-wordpiece"
cp "$RUN/bilstm-wordpiece/metrics.json" "$RES/bilstm_wordpiece_metrics.json"
