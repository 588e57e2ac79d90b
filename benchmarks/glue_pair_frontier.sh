#!/usr/bin/env bash
# Issue #14, last part: the frontier's two best transformer shapes on a sentence-pair task (MRPC: paraphrase,
# accuracy and F1) and a regression task (STS-B: Pearson and Spearman), where SST-2's BiLSTM cannot go.
#   - teacher: all-MiniLM-L6-v2 fine-tuned on the task (configs/glue-pair-teacher.yaml);
#   - transfer set: the task's training pairs plus word-replaced (GloVe) and rule-based variants of each, labelled
#     by the teacher (each variant rewrites one text of the pair and keeps the other, in turn): 4 + 4 for MRPC's
#     3,668 pairs, 2 + 2 for STS-B's 5,749, so that both sets come to about 30,000 rows (the CPU budget);
#   - students: pruned from the teacher, vocabulary trimmed, TinyBERT's two stages with the small-task budgets of
#     configs/glue-pair-frontier.yaml, at the SST-2 frontier's 2L-128 and 3L-256 shapes and at 3L-384 (the
#     teacher's width: on MRPC the narrow shapes fell under the majority class, the 3L-384 did not); seeds 42 43 44,
#     int8 (--preset auto) and seed 42 also fp32;
#   - per task, one `kdedge bench` run of every bundle with the teacher's fp32 and int8 bundles (ort-cpu, batch 1
#     and 32, 1 thread), summary.md and frontier.png from benchmarks/collect_frontier.py.
# TASKS, SEEDS and ONLY (shape names) narrow the run; BENCH=0 skips the benches; stages are cached in RUN_DIR.
# Usage: bash benchmarks/glue_pair_frontier.sh [RUN_DIR]
. "$(dirname "$0")/lib.sh"
{  # read whole before it runs
RUN=${1:-benchmarks/runs}
RES_ROOT=${RES:-benchmarks/results/glue_pair_frontier}
read -r -a TASKS <<< "${TASKS:-mrpc stsb}"
read -r -a SEEDS <<< "${SEEDS:-42 43 44}"
. benchmarks/sst2_recipes.sh  # shape, build_transfer, export_bundle
declare -A SHAPES=([pruned-2l-128]="$(shape 2 128 4 512)" [pruned-3l-256]="$(shape 3 256 8 1024)"
                 [pruned-3l-384]="$(shape 3 384 12 1536)")
declare -A VARIANTS=([mrpc]=4 [stsb]=2)
read -r -a ONLY <<< "${ONLY:-pruned-2l-128 pruned-3l-256 pruned-3l-384}"

for task in "${TASKS[@]}"; do
  W=$RUN/$task RES=$RES_ROOT/$task
  T=$W/teacher B=$W/frontier-bundles
  mkdir -p "$RES"
  stage teacher "$T" "$RES" kdedge teacher --config configs/glue-pair-teacher.yaml --task "$task"
  build_transfer "$W/transfer" "$RES/transfer.log" --task "$task" --variants "${VARIANTS[$task]:-4}"
  for seed in "${SEEDS[@]}"; do
    for name in "${ONLY[@]}"; do
      # shellcheck disable=SC2086  # the shape's options are words
      stage "$name-s$seed" "$W/frontier/$name-s$seed" "$RES" kdedge distill --config configs/glue-pair-frontier.yaml \
        --task "$task" --teacher "$T" --transfer "$W/transfer" --seed "$seed" ${SHAPES[$name]}
      export_bundle "$W/frontier/$name-s$seed" "$B" int8
      [ "$seed" != 42 ] || export_bundle "$W/frontier/$name-s$seed" "$B" fp32
    done
  done
  [ "${BENCH:-1}" = 0 ] && continue
  bundles=()
  folder_bundles bundles "$B"
  kdedge bench --teacher "$T" "${bundles[@]}" --backends ort-cpu --threads 1 --rounds 3 --batch-sizes 1,32 \
    --seq-lens 128 --out "$RES/$task" --overwrite > "$RES/bench.log"
  kdedge doctor > "$RES/doctor.txt"
  python benchmarks/collect_frontier.py "$RES" "$B" --task "$task" > "$RES/summary.md"
  cat "$RES/summary.md"
done
exit
}
