#!/usr/bin/env bash
# Issue #3 benchmark: TinyBERT-style students distilled from the SST-2 MiniLM teacher of
# benchmarks/sst2_teacher_bilstm.sh (run that first, or this script trains the teacher itself).
#   2-layer (from bert-tiny-splade) and 3-layer (from teacher layers 2,4,6) students, each
#   fine-tuned without a teacher, with prediction-layer KD, and with the two-stage recipe;
#   plus an ablation on the 2-layer student: mapping (uniform / mean) x attention loss (mse / kl).
# Usage: bash benchmarks/sst2_tinybert.sh [RUN_DIR]
. "$(dirname "$0")/lib.sh"
RUN=${1:-benchmarks/runs/sst2}
RES=benchmarks/results/sst2_tinybert
T="$RUN/teacher"

stage teacher "$T" benchmarks/results/sst2_teacher_bilstm kdedge teacher --config configs/sst2-teacher.yaml

for size in 2l 3l; do
  cfg=configs/sst2-tinybert.yaml; [ $size = 2l ] && cfg=configs/sst2-tinybert-2l.yaml
  stage tinybert-$size-finetune "$RUN/tinybert-$size-finetune" "$RES" kdedge distill --config $cfg --teacher "$T" \
    --recipe prediction --alpha 1.0
  stage tinybert-$size-predkd "$RUN/tinybert-$size-predkd" "$RES" kdedge distill --config $cfg --teacher "$T" \
    --recipe prediction
  stage tinybert-$size-twostage "$RUN/tinybert-$size-twostage" "$RES" kdedge distill --config $cfg --teacher "$T"
done

# Ablation (2-layer, two-stage, on a fixed 20,000-row sample of SST-2 train to fit the CPU budget):
# mapping uniform / mean x attention loss mse / kl.
for mapping in uniform mean; do
  for att in mse kl; do
    stage ablation-$mapping-$att "$RUN/ablation-$mapping-$att" "$RES" kdedge distill \
      --config configs/sst2-tinybert-2l.yaml --teacher "$T" --mapping $mapping --attention-loss $att \
      --max-train-samples 20000
  done
done

python benchmarks/collect.py "$RUN" tinybert-2l-finetune tinybert-2l-predkd tinybert-2l-twostage \
  tinybert-3l-finetune tinybert-3l-predkd tinybert-3l-twostage \
  ablation-uniform-mse ablation-uniform-kl ablation-mean-mse ablation-mean-kl > "$RES/summary.md"
cat "$RES/summary.md"
