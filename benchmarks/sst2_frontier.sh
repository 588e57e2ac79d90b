#!/usr/bin/env bash
# Issue #14 benchmark: the SST-2 size/speed/accuracy frontier of students against the teacher *and the teacher
# quantized* (what a user gets without distilling).
#   - the sst2-teacher recipe (all-MiniLM-L6-v2 fine-tuned on full SST-2);
#   - one transfer set: all of SST-2 train plus 2 word-replaced (GloVe) and 2 rule-based variants per sentence,
#     labelled by the teacher (a recipe in TRANSFER_SETS has its own, built the same way with more variants);
#   - transformer students of five shapes, 3L-384 down to 2L-128, pruned from the teacher (--init prune) with a
#     trimmed vocabulary, two-stage TinyBERT recipe on the transfer set (configs/sst2-frontier.yaml);
#   - at 2L-128, the same recipe from the pretrained BERT-Tiny-sized checkpoint and from random weights, and the
#     pruned student without vocabulary trimming;
#   - the GloVe BiLSTM on the same transfer set, its vocabulary capped at the 8,000 most frequent words;
#   - the n-gram student (fastText's architecture, configs/sst2-ngram.yaml) on the same transfer set (issue 49);
#   - every student exported fp32 and int8 (--preset auto), all bundles in ONE `kdedge bench` run with the
#     teacher's fp32 and int8 bundles (ort-cpu, real-length dev sentences, 1 thread), then scored again on IMDB
#     (../shared/data/imdb/test-2k.tsv) for the out-of-domain cost;
#   - summary.md (means and spreads over seeds, the targets checked) and frontier.png.
# Stages are cached in RUN_DIR. SEEDS (default "42 43 44") sets the seeds (fp32 bundles: FP32_SEED's alone), ONLY
# (recipe names) limits the students trained, BENCH=0 skips the bench, BUNDLES (default RUN_DIR/frontier-bundles) is
# where the bundles go and what the bench times: e.g. two workers on a 2-core CPU, then the bench alone:
#   SEEDS=42 BENCH=0 OMP_NUM_THREADS=1 bash benchmarks/sst2_frontier.sh & (same with SEEDS=43); wait
#   bash benchmarks/sst2_frontier.sh      # trains what is missing, benches everything trained
# Usage: bash benchmarks/sst2_frontier.sh [RUN_DIR]
. "$(dirname "$0")/lib.sh"
{  # read whole before it runs: editing the file during a long run cannot change what this run does
RUN=${1:-benchmarks/runs/sst2}
RES=${RES:-benchmarks/results/sst2_frontier}
T=$RUN/teacher
TS=$RUN/transfer-full
B=${BUNDLES:-$RUN/frontier-bundles}
IMDB=${KDEDGE_IMDB:-../shared/data/imdb/test-2k.tsv}
read -r -a SEEDS <<< "${SEEDS:-42 43 44}"
mkdir -p "$RES"
. benchmarks/sst2_recipes.sh  # RECIPES, build_transfer, export_bundle
ORDER=(pruned-2l-128 pretrained-2l-128 random-2l-128 pruned-2l-256 bilstm-glove pruned-2l-192 pruned-3l-256
       pruned-2l-128-fullvocab pruned-3l-384 ngram)
read -r -a ONLY <<< "${ONLY:-${ORDER[*]}}"

stage teacher "$T" "$RES" kdedge teacher --config configs/sst2-teacher.yaml

for seed in "${SEEDS[@]}"; do
  for name in "${ONLY[@]}"; do
    # the frontier's transfer set, or this recipe's own (TRANSFER_SETS); each built once, when a recipe first needs it
    ts=$TS log=$RES/transfer.log options=
    if [ -n "${TRANSFER_SETS[$name]:-}" ]; then
      read -r folder options <<< "${TRANSFER_SETS[$name]}"
      ts=$RUN/$folder log=$RES/$folder.log
    fi
    # shellcheck disable=SC2086  # the augment options are words
    build_transfer "$ts" "$log" $options
    # shellcheck disable=SC2086  # the recipe's arguments are words
    stage "$name-s$seed" "$RUN/frontier/$name-s$seed" "$RES" kdedge distill --teacher "$T" --transfer "$ts" \
      --seed "$seed" ${RECIPES[$name]//@SEED@/$seed}
    # shellcheck disable=SC2086  # the export options are words
    export_bundle "$RUN/frontier/$name-s$seed" "$B" int8 ${EXPORT_OPTIONS[$name]:-}
    # shellcheck disable=SC2086
    [ "$seed" != "${FP32_SEED:-42}" ] || export_bundle "$RUN/frontier/$name-s$seed" "$B" fp32 ${EXPORT_OPTIONS[$name]:-}
  done
done
[ "${BENCH:-1}" = 0 ] && exit 0

# Every bundle exported so far (any seed), in one bench run with the teacher's fp32 and int8 bundles.
# Students exported with the transformer optimizer are set beside the teacher exported the same way too (a bundle in
# $B, so the loop below takes it with the rest).
for name in "${ONLY[@]}"; do
  if [ -n "${EXPORT_OPTIONS[$name]:-}" ]; then teacher_bundle "$B" > /dev/null; break; fi
done
bundles=()
folder_bundles bundles "$B"
kdedge doctor > "$RES/doctor.txt"
bench=(kdedge bench --teacher "$T" "${bundles[@]}" --threads 1 --overwrite)
# OpenVINO's rows where it runs (kdedge[openvino]); ort-openvino's row says why it cannot where it cannot.
"${bench[@]}" --backends "${FRONTIER_BACKENDS:-ort-cpu,openvino-cpu,ort-openvino}" --rounds 3 --batch-sizes 1,32 \
  --seq-lens 64 --out "$RES/sst2" > "$RES/sst2.log"
# IMDB: accuracy only matters here; the latency pass is kept short.
"${bench[@]}" --backends ort-cpu --batch-sizes 1 --seq-lens 16 --min-runs 3 --min-time 0 --max-runs 3 --warmup 1 \
  --dev-file "$IMDB" --out "$RES/imdb" > "$RES/imdb.log"
python benchmarks/collect_frontier.py "$RES" "$B" > "$RES/summary.md"
cat "$RES/summary.md"
exit
}
