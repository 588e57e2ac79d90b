#!/usr/bin/env bash
# Issue #45: the user's usual case, a base-size teacher and a few thousand labelled examples, on small GLUE tasks.
#   - teacher: all-mpnet-base-v2 (110M, its own tokenizer) fine-tuned on the task (configs/glue-base-teacher.yaml;
#     TASKS mrpc, stsb and rte by default, cola too),
#     under bfloat16 autocast where the CPU has bfloat16 instructions;
#   - minilm-direct: what a user tries first without kdedge, all-MiniLM-L6-v2 fine-tuned directly on the task
#     (configs/glue-pair-teacher.yaml), three seeds, exported fp32 and int8 (bundles minilm-direct-s<seed>-<precision>);
#   - transfer set: the task's rows plus VARIANTS word-replaced (GloVe) and VARIANTS rule-based variants of each (each
#     variant rewrites one text of a pair, in turn), near-duplicate and dev-leak filtered, labelled by the teacher;
#     for the recipes named in TRANSFER_OF a second one (transfer-pairs) with other GLUE tasks' training pairs as well
#     (UNLABELED_PAIRS, labels dropped), standing for the user's unlabelled pairs (`kdedge augment --unlabeled`);
#   - general students (once for every task): an encoder (not fine-tuned) distilled task-agnostically (`kdedge
#     distill --recipe general`) on text that stands for the user's unlabelled text: SST-2's training sentences and
#     the IMDB sample (GENERAL_ROWS of them), pruned by activation to the students' shape. Two: from the MPNet teacher's
#     own encoder, and from the pretrained all-MiniLM-L6-v2 (the assisted students' layout and tokenizer);
#   - students (RECIPES below), three seeds each, int8 bundles named <recipe>-s<seed>-int8;
#   - per task one `kdedge bench --rounds 3` (ort-cpu, batch 1 (BATCH_SIZES), 1 thread) of the teacher's fp32 and int8
#     bundles (and its int8 export with --optimize, as the students', with and without --keep-float auto, the latter
#     where int8 costs it dev accuracy), the minilm-direct bundles and the students;
#     summary.md, frontier.png and the issue's targets from collect_frontier.py --targets small-data.
# The seeds of minilm-direct and of the students train side by side, one thread each (SIDE_BY_SIDE=0: one after
# another); the teacher, the transfer set and the bench run alone on every core.
# TASKS, SEEDS, ONLY (recipe names) and VARIANTS narrow the run; BENCH=0 skips the benches; BENCH_ONLY (names) with
# BENCH_AS benches only those recipes' int8 bundles, with the teacher's and minilm-direct's, into
# benchmarks/results/glue_base_small/BENCH_AS/<task>, leaving the task's own report; every stage is cached
# in RUN_DIR and resumes, and each task's results land in benchmarks/results/glue_base_small/<task>/.
# Usage: bash benchmarks/glue_base_small.sh [RUN_DIR]
. "$(dirname "$0")/lib.sh"
{  # read whole before it runs
RUN=${1:-benchmarks/runs/glue-base-small}
RES_ROOT=${RES:-benchmarks/results/glue_base_small}
read -r -a TASKS <<< "${TASKS:-mrpc stsb rte}"
read -r -a SEEDS <<< "${SEEDS:-42 43 44}"
MODEL=${KDEDGE_MPNET:-benchmarks/runs/models/all-mpnet-base-v2}
MP=${MIXED_PRECISION:-$(python -c 'from kdedge_runtime.cpu import native_bf16, read_cpu
print("bf16" if native_bf16(read_cpu()[1]) else "no")')}
. benchmarks/sst2_recipes.sh  # shape, export_bundle, GLOVE
pair=(--config configs/glue-pair-frontier.yaml --mixed-precision "$MP")
# the teacher assistant's recipes (below): its layers come from minilm-direct seed 42
assisted=("${pair[@]}" --intermediate-teacher %W%/minilm-direct-s42)
# round 3's shape and vocabulary cut, which minilm-assisted-4l-224 and its variants add their epochs to
round3="${assisted[*]} $(shape 4 224 7 1024) --trim-min-count 10"
GEN=$RUN/general/mpnet-3l-256 GEN_MINILM=$RUN/general/minilm-4l-224
MINILM=sentence-transformers/all-MiniLM-L6-v2
IMDB=${KDEDGE_IMDB:-${KDEDGE_DATA_DIR:-../shared/data/glue}/../imdb/test-2k.tsv}
declare -A RECIPES=(
  # pruned from the MPNet teacher (whole heads of 64), the intermediate stage on a sample of the transfer set (the
  # teacher runs in every one of its steps), the prediction stage on all of it
  [mpnet-pruned-3l-256]="${pair[*]} $(shape 3 256 4 1024) --intermediate-samples 20000 --trim-min-count 5"
  # the same, started from the general student instead of pruned from the fine-tuned teacher
  [mpnet-general-3l-256]="${pair[*]} --init pretrained:$GEN --intermediate-samples 20000 --trim-min-count 5"
  # a teacher assistant (Mirzadeh et al. 2020) for the intermediate stage: pruned from the directly fine-tuned
  # MiniLM-L6 (seed 42; heads of 32, WordPiece vocabulary) and matched to its layers for 3 epochs over the small-data
  # preset's 20,000-row sample (3x mpnet-pruned's intermediate steps, each about an eighth of MPNet's cost); the
  # prediction stage learns the MPNet teacher's labels
  [minilm-assisted-3l-256]="${assisted[*]} $(shape 3 256 8 1024) --intermediate-epochs 3 --trim-min-count 5"
  # one layer more, the vocabulary cut to the pieces seen 10+ times to pay for it (it did not: 6.73 MB on MRPC,
  # where trimming at 10 instead of 5 removed only 651 of 12,396 pieces)
  [minilm-assisted-4l-256]="${assisted[*]} $(shape 4 256 8 1024) --intermediate-epochs 3 --trim-min-count 10"
  # round 3: four layers narrowed to 224 (7 heads of 32) to fit 6 MB, and a third prediction epoch (round 2's 4L kept
  # its checkpoints late: step 3,500 of 3,820)
  [minilm-assisted-4l-224]="$round3 --intermediate-epochs 3 --epochs 3"
  # round 3's student with its intermediate stage over the whole transfer set once (61,118 rows on MRPC, 1,910 steps)
  # in place of three epochs over the 20,000-row sample (1,875 steps): the same cost, whether more distinct rows
  # teach the assistant's layers better than repeats (MRPC's last 0.2 point)
  [minilm-assisted-4l-224-all1]="$round3 --intermediate-epochs 1 --intermediate-samples 1000000 --epochs 3"
  # round 3's student with a fourth prediction epoch (7,640 steps): round 3's seeds kept their checkpoints in the
  # third epoch, and seed 43 was still rising at the last step
  [minilm-assisted-4l-224-e4]="$round3 --intermediate-epochs 3 --epochs 4"
  # round 3's student keeping the weights' moving average (about the last 1,000 steps, in both stages) instead of
  # the weights of one step: on MRPC the checkpoint kept on dev carries 0.7-1.1 points and the seeds spread wider
  # than the last 0.2 point (session 73), so whether averaging steadies them
  [minilm-assisted-4l-224-ema]="$round3 --intermediate-epochs 3 --epochs 3 --ema-decay 0.999"
  # round 3's size spent on depth, as RTE's best (minilm-kd-assisted-6l-192-t15, session 70): all six of the
  # fine-tuned assistant's layers, each narrowed to 192 (6 heads of 32), the vocabulary cut at 15+ uses to stay under
  # 6 MB. Five levers on round 3's 4L-224 left MRPC at or under 0.978 of the int8 teacher (sessions 61-77); whether the
  # assistant's whole depth gives the last 0.2 point
  [minilm-assisted-6l-192-t15]="${assisted[*]} $(shape 6 192 6 1024) --intermediate-epochs 3 --epochs 3 --trim-min-count 15"
  # the same cut to two epochs in each stage so that a whole task fits one session: on RTE 57 minutes instead of 96,
  # and 2 points of accuracy
  [minilm-assisted-4l-224-e2]="$round3 --intermediate-epochs 2 --epochs 2"
  # round 3's student, two epochs a stage, with the distilled assistant (minilm-kd-s42, below) in place of
  # minilm-direct: against minilm-assisted-4l-224-e2, whether a better assistant lifts the student
  [minilm-kd-assisted-4l-224-e2]="${pair[*]} --intermediate-teacher %W%/minilm-kd-s42 $(shape 4 224 7 1024) --intermediate-epochs 2 --epochs 2 --trim-min-count 10"
  # the same from the distilled assistant with round 3's 3 + 3 epochs, its vocabulary cut to pieces seen 15+ times:
  # on RTE's transfer set 11,526 pieces instead of 13,490 at 10+ (about 0.45 MB of int8 rows), to fit 6 MB there.
  # Its options are the small-data-assisted preset's: `kdedge distill` with --intermediate-teacher alone runs the same
  [minilm-kd-assisted-4l-224-t15]="${pair[*]} --intermediate-teacher %W%/minilm-kd-s42 $(shape 4 224 7 1024) --intermediate-epochs 3 --epochs 3 --trim-min-count 15"
  # the same size spent on depth: all six of the assistant's layers kept, each narrowed to 192 (6 heads of 32), in
  # place of four layers of 224 (about 5.6M parameters against 5.8M). Whether RTE's entailment pairs gain more from
  # the assistant's depth than from width
  [minilm-kd-assisted-6l-192-t15]="${pair[*]} --intermediate-teacher %W%/minilm-kd-s42 $(shape 6 192 6 1024) --intermediate-epochs 3 --epochs 3 --trim-min-count 15"
  # round 3's student, two epochs a stage, from an assistant distilled for three epochs instead of one (minilm-kd-e3-s42):
  # on RTE the students end level with their assistant (session 70), and one epoch lifted it 5 points
  [minilm-kd3-assisted-4l-224-e2-t15]="${pair[*]} --intermediate-teacher %W%/minilm-kd-e3-s42 $(shape 4 224 7 1024) --intermediate-epochs 2 --epochs 2 --trim-min-count 15"
  # the same at two epochs a stage, on a transfer set with unlabelled pairs as well (transfer-pairs, below): whether
  # more of the teacher's outputs on real pairs lift a task as small as RTE
  [minilm-kd-assisted-4l-224-e2-t15-pairs]="${pair[*]} --intermediate-teacher %W%/minilm-kd-s42 $(shape 4 224 7 1024) --intermediate-epochs 2 --epochs 2 --trim-min-count 15"
  # what a user runs by the how-to (docs/how-to/small-labelled-set.md): --intermediate-teacher alone, so that
  # `kdedge distill` picks the small-data-assisted preset (kdedge/defaults/distill-small-data-assisted.yaml: 4L-224
  # pruned from the assistant, 3 + 3 epochs, the vocabulary cut at 15+ uses), with the fine-tuned assistant
  [small-data-assisted]="--intermediate-teacher %W%/minilm-direct-s42 --mixed-precision $MP"
  # minilm-assisted-4l-224 started from the general MiniLM student instead of pruned from the fine-tuned assistant:
  # general distillation against --init prune at the best recipe's shape, cost and tokenizer
  [minilm-general-4l-224]="${assisted[*]} --init pretrained:$GEN_MINILM --intermediate-epochs 3 --epochs 3 --trim-min-count 10"
)
read -r -a ONLY <<< "${ONLY:-mpnet-pruned-3l-256 mpnet-general-3l-256}"
# recipes trained on another transfer set than the task's own (transfer): its folder in the task's run folder
declare -A TRANSFER_OF=([minilm-kd-assisted-4l-224-e2-t15-pairs]=transfer-pairs)
# transfer-pairs stands for a user's unlabelled pairs with the training pairs of these other GLUE pair tasks (their
# labels dropped; the task's own is left out), labelled by the teacher beside the task's own transfer set
read -r -a UNLABELED_PAIRS <<< "${UNLABELED_PAIRS:-mrpc stsb}"
# the targets are batch 1; with batch 32 too the fp32 teacher alone took 11 minutes a round on RTE's long pairs (at
# batch 1 the whole bench took 5); MRPC and STS-B were benched with BATCH_SIZES=1,32
BATCH_SIZES=${BATCH_SIZES:-1}
bash benchmarks/fetch_mpnet.sh "$MODEL" > /dev/null

general() {  # general OUT TEACHER SHAPE...: a general student, once for every task
  local out=$1 teacher=$2; shift 2
  stage "general-${out##*/}" "$out" "$RES_ROOT/general" kdedge distill --recipe general --student tinybert \
    --teacher "$teacher" --unlabeled "sst2=${KDEDGE_DATA_DIR:-../shared/data/glue}/SST-2/train.tsv" \
    --unlabeled "imdb=$IMDB" --unlabeled-column sentence --max-train-samples "${GENERAL_ROWS:-40000}" --init prune \
    "$@" --epochs 2 --batch-size 32 --lr 3e-4 --max-length 128 --save-steps 200 --mixed-precision "$MP"
}

# side_by_side FUNCTION: FUNCTION SEED for every seed at once, one thread each (on 2 cores three small trainings side
# by side take about 1.5x one's time alone, where one after another they take 3x); SIDE_BY_SIDE=0: one at a time
side_by_side() {
  local seed pid pids=() failed=0
  if [ "${SIDE_BY_SIDE:-1}" = 0 ]; then
    for seed in "${SEEDS[@]}"; do "$1" "$seed"; done
    return
  fi
  for seed in "${SEEDS[@]}"; do OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 "$1" "$seed" & pids+=($!); done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  return $failed
}

# distilled_assistant NAME: a better teacher assistant. minilm-direct seed 42 (all-MiniLM-L6-v2 fine-tuned on the
# task's gold rows) taught the MPNet teacher's labels (softened at T = 2, Hinton et al. 2015) on the whole transfer
# set at a fine-tuning learning rate: NAME minilm-kd-s42 for one epoch, minilm-kd-e<N>-s42 for N. On RTE
# minilm-direct is 8 points under the teacher, and the students assisted by it end level with it (0.61). Exported
# int8 too: minilm-direct's model, distilled instead of fine-tuned on gold alone.
distilled_assistant() {
  local epochs=${1#minilm-kd-e}; epochs=${epochs%-s42}; [[ $1 == minilm-kd-s42 ]] && epochs=1
  stage "$1" "$W/$1" "$RES" kdedge distill --task "$task" --teacher "$T" --transfer "$W/transfer" \
    --seed 42 --student tinybert --init "pretrained:$W/minilm-direct-s42" --recipe prediction \
    --soft-loss soft_ce --temperature 2 --alpha 0 --epochs "$epochs" --batch-size 32 --lr 5e-5 \
    --warmup-ratio 0.1 --max-length 128 --eval-steps 250 --save-steps 250 --mixed-precision "$MP"
  export_bundle "$W/$1" "$B" int8 --optimize
}

direct_seed() {  # the baseline a user tries first: all-MiniLM-L6-v2 fine-tuned on the task, exported int8 and fp32
  stage "minilm-direct-s$1" "$W/minilm-direct-s$1" "$RES" kdedge teacher --config configs/glue-pair-teacher.yaml \
    --task "$task" --seed "$1" --mixed-precision "$MP"
  for precision in int8 fp32; do export_bundle "$W/minilm-direct-s$1" "$B" "$precision" --optimize; done
}

student_seed() {  # every recipe in ONLY, one after another, for seed $1
  local name
  for name in "${ONLY[@]}"; do
    # shellcheck disable=SC2086  # the recipe's options are words
    stage "$name-s$1" "$W/students/$name-s$1" "$RES" kdedge distill --task "$task" --teacher "$T" \
      --transfer "$W/${TRANSFER_OF[$name]:-transfer}" --seed "$1" ${RECIPES[$name]//%W%/$W}
    export_bundle "$W/students/$name-s$1" "$B" int8 --optimize
  done
}

# other_pairs FILE: the training pairs of UNLABELED_PAIRS but the task's own, as JSON lines {"text", "text_pair"}
other_pairs() {
  [ -f "$1" ] || python - "$1" "$task" "${UNLABELED_PAIRS[@]}" <<'PY'
import json, os, sys
from kdedge.config import DataOptions
from kdedge.data.loaders import load_task_data
out, own, *tasks = sys.argv[1:]
with open(out + ".partial", "w", encoding="utf-8") as f:
    for name in (t for t in tasks if t != own):
        train = load_task_data(DataOptions(task=name)).train
        for text, pair in zip(train.text, train.text_pair):
            f.write(json.dumps({"text": text, "text_pair": pair}, ensure_ascii=False) + "\n")
os.replace(out + ".partial", out)
PY
}

# bench_selection DIR NAME...: DIR holds links to the teacher's int8 bundles, to minilm-direct's fp32 and int8 bundles
# (the issue's baseline rows, in every bench) and to the int8 bundles of each NAME (a recipe, or minilm-kd: the
# distilled assistant), every seed
bench_selection() {
  local dir=$1 bundle name; shift
  mkdir -p "$dir"
  for bundle in "$B"/*/; do
    bundle=${bundle%/} name=${bundle##*/}
    [[ $name == teacher-optimized-int8* || $name == minilm-direct-s*-fp32 \
      || " minilm-direct $* " == *" ${name%-s[0-9]*-int8} "* ]] || continue
    ln -sfn "$(realpath "$bundle")" "$dir/$name"
  done
}

# int8_costs_accuracy BUNDLE: whether the bundle's dev metrics (its manifest, measured at export) are below PyTorch's
int8_costs_accuracy() {
  python - "$1/manifest.json" <<'PY'
import json, sys
dev = json.load(open(sys.argv[1]))["dev"]
sys.exit(0 if any(dev["onnx"][name] < value for name, value in dev["pytorch"].items()) else 1)
PY
}

for task in "${TASKS[@]}"; do
  W=$RUN/$task RES=$RES_ROOT/$task task_t0=$(date +%s)
  T=$W/teacher B=$W/bundles
  mkdir -p "$RES" "$B"
  stage teacher "$T" "$RES" kdedge teacher --config configs/glue-base-teacher.yaml --task "$task" --model "$MODEL" \
    --mixed-precision "$MP"
  # minilm-direct is the benches' baseline and the assistants' start; a run with neither (e.g. BENCH=0 ONLY=mpnet-*)
  # skips it: on a CPU without bfloat16 its three seeds cost about 50 minutes of the two cores
  if [ "${BENCH:-1}" != 0 ] || grep -q 'minilm-direct\|minilm-kd' <<< "$(for n in "${ONLY[@]}"; do echo "${RECIPES[$n]}"; done)"
  then side_by_side direct_seed; fi
  # the task's rows plus VARIANTS word-replaced (GloVe) and VARIANTS rule-based variants of each, teacher-labelled
  augment=(--task "$task" --variants "${VARIANTS:-8}" --mixed-precision "$MP")
  build_transfer "$W/transfer" "$RES/transfer.log" "${augment[@]}"
  sets=(); for name in "${ONLY[@]}"; do sets+=("${TRANSFER_OF[$name]:-transfer}"); done
  if [[ " ${sets[*]} " == *" transfer-pairs "* ]]; then
    other_pairs "$W/unlabeled-pairs.jsonl"
    build_transfer "$W/transfer-pairs" "$RES/transfer-pairs.log" "${augment[@]}" \
      --unlabeled "pairs=$W/unlabeled-pairs.jsonl" --unlabeled-column text --unlabeled-pair-column text_pair
  fi
  [[ " ${ONLY[*]} " != *" mpnet-general-"* ]] || general "$GEN" "$MODEL" $(shape 3 256 4 1024)
  [[ " ${ONLY[*]} " != *" minilm-general-"* ]] || general "$GEN_MINILM" "$MINILM" $(shape 4 224 7 1024)
  # the distilled assistants ONLY's recipes are taught by
  for kd in $(for name in "${ONLY[@]}"; do grep -o 'minilm-kd\(-e[0-9]*\)\?-s42' <<< "${RECIPES[$name]}" || true; done \
      | sort -u); do
    distilled_assistant "$kd"
  done
  side_by_side student_seed
  [ "${BENCH:-1}" = 0 ] && continue
  teacher_bundle "$B" > /dev/null  # the teacher exported --optimize too, as the students are: the fair int8 teacher
  # and with the MatMuls int8 hurts most left in float (--keep-float auto): the stronger int8 bar, benched beside it
  # (benchmarks/results/int8_keep_float); the speed-ups stay against the faster of the two. Where int8 costs the
  # teacher nothing on dev (RTE) it cannot be a stronger bar, so its search (about 10 minutes) is skipped.
  kf=$B/teacher-optimized-int8-keep-float
  if [ ! -f "$kf/manifest.json" ] && int8_costs_accuracy "$B/teacher-optimized-int8"; then
    kdedge export --model "$T" --out "$kf" --quantize dynamic --optimize --keep-float auto 2>&1 | without_progress \
      | tail -2 >&2
  fi
  bench_res=$RES bench_bundles=$B
  if [ -n "${BENCH_ONLY:-}" ]; then  # a later round's bench beside the task's own report, which it leaves as it is
    bench_res=$RES_ROOT/${BENCH_AS:?BENCH_ONLY needs BENCH_AS, the results folder to write}/$task
    bench_bundles=$W/bench-$BENCH_AS
    read -r -a picked <<< "$BENCH_ONLY"
    bench_selection "$bench_bundles" "${picked[@]}"
  fi
  mkdir -p "$bench_res"
  bundles=()
  folder_bundles bundles "$bench_bundles"
  kdedge bench --teacher "$T" "${bundles[@]}" --backends ort-cpu --threads 1 --rounds 3 --batch-sizes "$BATCH_SIZES" \
    --seq-lens 128 --out "$bench_res/$task" --overwrite --resume > "$bench_res/bench.log"
  kdedge doctor > "$bench_res/doctor.txt"
  python benchmarks/collect_frontier.py "$bench_res" "$bench_bundles" --task "$task" --targets small-data \
    > "$bench_res/summary.md"
  cat "$bench_res/summary.md"
  # the whole task in this call (a cached stage costs nothing): does a task fit one session from scratch?
  cpu=$(python -c 'from kdedge_runtime.cpu import cpu_identity, cpu_model; print(cpu_model(), cpu_identity(), sep=", ")')
  echo "task wall_s=$(( $(date +%s) - task_t0 )) (this call, on $cpu)" | tee -a "$RES/times.txt"
done
exit
}
