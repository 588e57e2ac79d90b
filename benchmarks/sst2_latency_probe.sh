#!/usr/bin/env bash
# Latency of the SST-2 frontier's shapes on the CPU at hand, without training them: a teacher and students of each
# shape trained for a few steps on a few hundred rows, exported int8 with --preset auto, timed in one `kdedge bench`
# run against the int8 teacher (ort-cpu, 1 thread, batch 1, real-length SST-2 dev rows, 3 rounds). Their accuracy and
# size mean nothing (the vocabulary is trimmed to those rows' tokens); their graphs, and so their p50, are the trained
# students'. The teacher exported int8 with --optimize is timed beside them (a bundle row), since some recipes'
# students are exported that way (EXPORT_OPTIONS). Tells, in minutes, which speed-ups the frontier's recipes would
# reach on this CPU; run it with the machine otherwise idle.
# Usage: bash benchmarks/sst2_latency_probe.sh [RUN_DIR]
. "$(dirname "$0")/lib.sh"
{  # read whole before it runs
RUN=${1:-benchmarks/runs/sst2-latency-probe}
RES=${RES:-benchmarks/results/sst2_latency_probe}
T=$RUN/teacher
few=(--max-train-samples 256 --max-eval-samples 64)
mkdir -p "$RES" "$RUN/bundles"
. benchmarks/sst2_recipes.sh  # RECIPES, build_transfer, export_bundle
stage teacher "$T" "$RES" kdedge teacher --config configs/sst2-teacher.yaml --epochs 1 "${few[@]}"
build_transfer "$RUN/transfer" "$RES/transfer.log" "${few[@]}"
probe=(--max-train-samples 64 --epochs 1)
probe_transformer=(--intermediate-samples 64 --prune-samples 64 --trim-min-count 1)
read -r -a ONLY <<< "${ONLY:-pruned-2l-128-long pruned-3l-192-long pruned-3l-256-long bilstm-glove}"
bundles=()
for name in "${ONLY[@]}"; do
  extra=()  # the BiLSTM has no intermediate stage, pruning or trimming to shrink
  [[ $name == bilstm* ]] || extra=("${probe_transformer[@]}")
  # shellcheck disable=SC2086  # the recipe is a list of options
  stage "$name" "$RUN/students/$name" "$RES" kdedge distill --teacher "$T" --transfer "$RUN/transfer" \
    ${RECIPES[$name]} "${probe[@]}" "${extra[@]}"
  # shellcheck disable=SC2086  # the export options are words
  export_bundle "$RUN/students/$name" "$RUN/bundles" int8 ${EXPORT_OPTIONS[$name]:-}
  bundles+=(--bundle "$RUN/bundles/$name-int8")
done
bundles+=(--bundle "$(teacher_bundle "$RUN/bundles")")
kdedge bench --teacher "$T" "${bundles[@]}" --backends ort-cpu --threads 1 --batch-sizes 1 --rounds 3 \
  --out "$RES/bench" --overwrite > "$RES/bench.log"
kdedge doctor > "$RES/doctor.txt"
cat "$RES/bench/report.md"
exit
}
