#!/usr/bin/env bash
# Issue #2 benchmark: the all-MiniLM-L6-v2 teacher fine-tuned on full SST-2, then BiLSTM students distilled
# from it on SST-2 train (no augmentation): GloVe word vectors, and the teacher's WordPiece embeddings.
# Usage: bash benchmarks/sst2_teacher_bilstm.sh [RUN_DIR]
. "$(dirname "$0")/lib.sh"
RUN=${1:-benchmarks/runs/sst2}
RES=benchmarks/results/sst2_teacher_bilstm

stage teacher "$RUN/teacher" "$RES" kdedge teacher --config configs/sst2-teacher.yaml
stage bilstm_glove "$RUN/bilstm-glove" "$RES" kdedge distill --config configs/sst2-bilstm.yaml \
  --word-vectors "$KDEDGE_GLOVE" --teacher "$RUN/teacher"
# WordPiece variant: the config's word-vectors key is overridden by an empty value = the teacher's vocabulary.
stage bilstm_wordpiece "$RUN/bilstm-wordpiece" "$RES" kdedge distill --config configs/sst2-bilstm.yaml \
  --word-vectors "" --teacher "$RUN/teacher"
python benchmarks/collect.py "$RUN" teacher bilstm-glove bilstm-wordpiece > "$RES/summary.md"
cat "$RES/summary.md"
