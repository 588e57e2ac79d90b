#!/usr/bin/env bash
# Issue #20 benchmark: `kdedge tune` on SST-2 with the MiniLM teacher and the frontier's transfer set.
#   - budget study: >= 30 trials at the frontier's 12x point (--min-speedup 12 against the int8 teacher, ort-cpu,
#     batch 1, 1 thread), the 2L-128 pruned shape, the recipe's knobs searched (configs/spaces/sst2-budget.yaml);
#   - on a 2-core CPU every trial trains on a sample of the transfer set (SAMPLE, default 20,000 of its 270k rows,
#     one epoch; INTERMEDIATE, default 5,000 rows for the intermediate stage; about 60 s a 2L-128 trial, so that both
#     studies fit one session after the teacher and the transfer set): the studies compare recipes at that budget,
#     the hand-set recipe (configs/sst2-frontier.yaml) being the budget study's trial 0;
#   - the budget study's winner and its hand-set trial (trial 0) on seeds 42 (the trials), 43 and 44 (retrained at the
#     study's budget), all six bundles benched together in one `kdedge bench` run (compare.md).
#   - then the multi-objective study: >= 30 trials, retention vs p50, shapes searched too
#     (configs/spaces/sst2-pareto.yaml); its front and the frontier's points (round 2's recipes: 2L-128, 3L-192,
#     3L-256, the GloVe BiLSTM) at the same budget on seeds 42-44, all benched in one run (pareto-compare.md).
# Usage: [TRIALS=30] [SAMPLE=20000] [INTERMEDIATE=5000] [STUDIES="budget pareto"] bash benchmarks/sst2_tune.sh [RUN_DIR]
# Rerun to continue: the studies resume.
. "$(dirname "$0")/lib.sh"
{  # read whole before it runs
RUN=${1:-benchmarks/runs/sst2}
RES=${RES:-benchmarks/results/sst2_tune}
T=$RUN/teacher
TS=$RUN/transfer-full
TRIALS=${TRIALS:-30}
SAMPLE=${SAMPLE:-20000}
INTERMEDIATE=${INTERMEDIATE:-5000}
STUDIES=${STUDIES:-budget pareto}  # e.g. STUDIES=pareto: the multi-objective study alone
mkdir -p "$RES"
. benchmarks/sst2_recipes.sh  # RECIPES, build_transfer, export_bundle
stage teacher "$T" "$RES" kdedge teacher --config configs/sst2-teacher.yaml
build_transfer "$TS" "$RES/transfer.log"

budget=(--config configs/sst2-frontier.yaml --teacher "$T" --transfer "$TS" --max-train-samples "$SAMPLE"
        --intermediate-samples "$INTERMEDIATE")  # the recipe's data budget in every trial
common=("${budget[@]}" --backend ort-cpu --threads 1 --trials "$TRIALS")
# study NAME ARGS...: one study into $RUN/tune-NAME, its table, report and plot copied to $RES/NAME
study() {
  local name=$1 t0; shift
  t0=$(date +%s)
  kdedge tune "${common[@]}" "$@" --out "$RUN/tune-$name" 2>&1 | without_progress > "$RES/$name.log"
  echo "tune-$name wall_s=$(( $(date +%s) - t0 ))" | tee -a "$RES/times.txt"
  mkdir -p "$RES/$name"
  cp "$RUN/tune-$name"/{trials.csv,report.md,pareto.png} "$RES/$name/"
}
shape=(--layers 2 --hidden 128 --heads 4 --intermediate 512)
# bench_together BUNDLES_DIR PREFIX: every bundle in the folder with the teacher's in one bench run (machine idle),
# summarised over seeds into $RES/PREFIXcompare.md (bench report in $RES/PREFIXbench)
bench_together() {
  local bundles=() bundle
  for bundle in "$1"/*/; do bundles+=(--bundle "${bundle%/}"); done
  kdedge bench --teacher "$T" "${bundles[@]}" --backends ort-cpu --threads 1 --batch-sizes 1,32 --seq-lens 64 \
    --rounds 3 --out "$RES/${2}bench/sst2" --overwrite > "$RES/${2}bench.log"
  python benchmarks/collect_frontier.py "$RES/${2}bench" "$1" --task sst2 > "$RES/${2}compare.md"
}
if [[ " $STUDIES " == *" budget "* ]]; then
  study budget --space configs/spaces/sst2-budget.yaml "${shape[@]}" --min-speedup 12
  # The budget study's winner against its hand-set trial on three seeds: seed 42 is the study's own pair of trials,
  # seeds 43 and 44 retrain both at the study's budget (the winner from best/recipe.yaml, the hand-set recipe from the
  # study's command line). Bench rows are named after the folders: RECIPE-sSEED-int8, for collect_frontier.py.
  B=$RUN/tune-budget/compare
  mkdir -p "$B"
  ln -sfn "$(realpath "$RUN/tune-budget/best/bundle")" "$B/tuned-2l-128-s42-int8"
  ln -sfn "$(realpath "$RUN/tune-budget/trials/0000/bundle")" "$B/hand-set-2l-128-s42-int8"
  for seed in 43 44; do
    stage "tuned-2l-128-s$seed" "$RUN/tune-budget/seeds/tuned-2l-128-s$seed" "$RES" kdedge distill \
      --config "$RUN/tune-budget/best/recipe.yaml" --seed "$seed"
    stage "hand-set-2l-128-s$seed" "$RUN/tune-budget/seeds/hand-set-2l-128-s$seed" "$RES" kdedge distill \
      "${budget[@]}" "${shape[@]}" --seed "$seed"
    export_bundle "$RUN/tune-budget/seeds/tuned-2l-128-s$seed" "$B" int8
    export_bundle "$RUN/tune-budget/seeds/hand-set-2l-128-s$seed" "$B" int8
  done
  bench_together "$B" ""
fi
# the multi-objective study last: the budget's comparison is the target, the front the wider picture
if [[ " $STUDIES " == *" pareto "* ]]; then
  study pareto --space configs/spaces/sst2-pareto.yaml --mode pareto "${shape[@]}"
  # The front against the frontier's points at the study's budget, three seeds each, all in one bench run: each front
  # trial (seed 42 the trial itself, 43 and 44 retrained from its recipe.yaml) and the frontier's recipes (round 2's
  # shapes and vocabulary trims, and its GloVe BiLSTM) on the same 20,000-row, one-epoch budget.
  P=$RUN/tune-pareto/compare
  rm -rf "$P" && mkdir -p "$P"
  for front in "$RUN/tune-pareto/best"/trial-*/; do
    name=${front%/}; name=front-${name##*/trial-}  # front-NNNN
    ln -sfn "$(realpath "$front/bundle")" "$P/$name-s42-int8"
    for seed in 43 44; do
      stage "$name-s$seed" "$RUN/tune-pareto/seeds/$name-s$seed" "$RES" kdedge distill --config "$front/recipe.yaml" \
        --seed "$seed"
      export_bundle "$RUN/tune-pareto/seeds/$name-s$seed" "$P" int8
    done
  done
  declare -A FRONTIER=(
    [frontier-2l-128]="${budget[*]} $(shape 2 128 4 512) --trim-min-count 10"
    [frontier-3l-192]="${budget[*]} $(shape 3 192 6 768) --trim-min-count 10"
    [frontier-3l-256]="${budget[*]} $(shape 3 256 8 1024) --trim-min-count 15"
    [frontier-bilstm-glove]="--config configs/sst2-bilstm.yaml --teacher $T --transfer $TS --word-vectors $GLOVE
      --max-vocab 8000 --max-train-samples $SAMPLE --epochs 1"
  )
  for name in "${!FRONTIER[@]}"; do
    for seed in 42 43 44; do
      # shellcheck disable=SC2086  # the recipe is a list of options
      stage "$name-s$seed" "$RUN/tune-pareto/seeds/$name-s$seed" "$RES" kdedge distill ${FRONTIER[$name]} --seed "$seed"
      export_bundle "$RUN/tune-pareto/seeds/$name-s$seed" "$P" int8
    done
  done
  bench_together "$P" pareto-
fi
kdedge doctor > "$RES/doctor.txt"
echo "studies ($STUDIES) written under $RES"
exit
}
