#!/usr/bin/env bash
# Issue #20 benchmark: `kdedge tune` on SST-2 with the MiniLM teacher and the frontier's transfer set.
#   - budget study: >= 30 trials at the frontier's 12x point (--min-speedup 12 against the int8 teacher, ort-cpu,
#     batch 1, 1 thread), the 2L-128 pruned shape, the recipe's knobs searched (configs/spaces/sst2-budget.yaml);
#   - multi-objective study: >= 30 trials, retention vs p50, shapes searched too (configs/spaces/sst2-pareto.yaml);
#   - on a 2-core CPU every trial trains on a SAMPLE of the transfer set (default 50,000 of its 270k rows, one
#     epoch, 10,000 rows for the intermediate stage): the studies compare recipes at that budget, the hand-set recipe
#     (configs/sst2-frontier.yaml) being the budget study's trial 0;
#   - the budget study's best bundle and its hand-set trial's bundle, benched together in one `kdedge bench` run.
# Usage: [TRIALS=30] [SAMPLE=50000] bash benchmarks/sst2_tune.sh [RUN_DIR]; rerun to continue (the studies resume).
. "$(dirname "$0")/lib.sh"
{  # read whole before it runs
RUN=${1:-benchmarks/runs/sst2}
RES=${RES:-benchmarks/results/sst2_tune}
T=$RUN/teacher
TS=$RUN/transfer-full
TRIALS=${TRIALS:-30}
SAMPLE=${SAMPLE:-50000}
mkdir -p "$RES"
. benchmarks/sst2_recipes.sh  # RECIPES, build_transfer, export_bundle
stage teacher "$T" "$RES" kdedge teacher --config configs/sst2-teacher.yaml
build_transfer "$TS" "$RES/transfer.log"

common=(--config configs/sst2-frontier.yaml --teacher "$T" --transfer "$TS" --max-train-samples "$SAMPLE"
        --intermediate-samples 10000 --backend ort-cpu --threads 1 --trials "$TRIALS")
for study in budget pareto; do
  if [ "$study" = budget ]; then
    args=(--space configs/spaces/sst2-budget.yaml --layers 2 --hidden 128 --heads 4 --intermediate 512 --min-speedup 12)
  else
    args=(--space configs/spaces/sst2-pareto.yaml --mode pareto --layers 2 --hidden 128 --heads 4
          --intermediate 512)
  fi
  t0=$(date +%s)
  kdedge tune "${common[@]}" "${args[@]}" --out "$RUN/tune-$study" 2>&1 | tr '\r' '\n' | grep -av '%|' \
    > "$RES/$study.log"
  echo "tune-$study wall_s=$(( $(date +%s) - t0 ))" | tee -a "$RES/times.txt"
  mkdir -p "$RES/$study"
  cp "$RUN/tune-$study"/{trials.csv,report.md,pareto.png} "$RES/$study/"
done
# bench rows are named after the folders: name the two bundles for what they are
ln -sfn "$(realpath "$RUN/tune-budget/best/bundle")" "$RUN/tune-budget/tuned-2l-128-int8"
ln -sfn "$(realpath "$RUN/tune-budget/trials/0000/bundle")" "$RUN/tune-budget/hand-set-2l-128-int8"
kdedge bench --teacher "$T" --bundle "$RUN/tune-budget/tuned-2l-128-int8" \
  --bundle "$RUN/tune-budget/hand-set-2l-128-int8" --backends ort-cpu --threads 1 --batch-sizes 1,32 --seq-lens 64 \
  --rounds 3 --out "$RES/bench" --overwrite > "$RES/bench.log"
kdedge doctor > "$RES/doctor.txt"
echo "studies written to $RES/budget and $RES/pareto"
exit
}
