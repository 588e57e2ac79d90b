#!/usr/bin/env bash
# Issue #15 benchmark: the teacher users bring. all-mpnet-base-v2 (MPNet, 12 layers, hidden 768, 110M parameters, its
# own tokenizer; benchmarks/fetch_mpnet.sh) fine-tuned on SST-2 (configs/sst2-mpnet-teacher.yaml), the replace+rules
# transfer set labelled by it, and students from it, all int8 bundles benched in one `kdedge bench` run with the
# teacher's fp32 and int8 bundles, plain and optimized (ort-cpu, batch 1 and 32, 1 thread; summary.md from
# collect_frontier.py checks the issue's targets against the faster int8 teacher):
#   - sharing its vocabulary, pruned from it (--init prune: MPNet keeps the same heads in every layer), vocabulary
#     trimmed, TinyBERT's two stages with every intermediate loss: 4L-384 (about 12M parameters) and 2L-128;
#   - another vocabulary: BERT-Tiny (2L-128, BERT uncased; ../shared's checkpoint), two-stage across tokenizers
#     (hidden states matched by character offsets, --w-att 0), and prediction-layer distillation alone;
#   - the GloVe BiLSTM, its vocabulary capped at 8,000 words (the frontier's) and uncapped.
# The teacher's fine-tuning and the labelling want a GPU (on 2 CPU cores an epoch takes 1-2.5 h): every stage
# resumes, so on the CPU run it in the background across sessions. SMOKE=1 shrinks every stage to a few hundred rows
# (into RUN_DIR-smoke and RES-smoke): a check of the plumbing, not a result. SEEDS, ONLY and BENCH=0 as in
# sst2_frontier.sh; the bench times every bundle in RUN_DIR/bundles.
# Usage: bash benchmarks/sst2_mpnet.sh [RUN_DIR]
. "$(dirname "$0")/lib.sh"
{  # read whole before it runs
RUN=${1:-benchmarks/runs/sst2-mpnet}
RES=${RES:-benchmarks/results/sst2_mpnet}
. benchmarks/sst2_recipes.sh  # build_transfer, export_bundle, teacher_bundle, shape, GLOVE, BERT_TINY, long
# The recipes' budgets, or a few hundred rows with SMOKE=1: the frontier's round 2 (sst2_recipes.sh's `long`: 50,000
# rows for the intermediate stage, two prediction epochs over the whole transfer set, the vocabulary trimmed at count
# 10), except that the 4L-384, several times the 2L-128's cost a row, gets one prediction epoch.
small=() short=() pred=(--epochs 2 --trim-min-count 10) wide=(--epochs 1)
if [ "${SMOKE:-0}" = 1 ]; then
  RUN=$RUN-smoke RES=$RES-smoke
  small=(--max-train-samples 256 --max-eval-samples 128) short=(--epochs 1)
  long=(--epochs 1 --intermediate-epochs 1 --intermediate-samples 128 --prune-samples 64) pred=(--epochs 1) wide=()
fi
# Students train under bfloat16 autocast where the CPU has bfloat16 instructions (the frozen 110M teacher's forward in
# every intermediate step is most of their cost), fp32 elsewhere; MIXED_PRECISION=no forces fp32. The teacher and
# its labels stay fp32.
MP=${MIXED_PRECISION:-$(python -c 'from kdedge_runtime.cpu import native_bf16, read_cpu
print("bf16" if native_bf16(read_cpu()[1]) else "no")')}
MODEL=${KDEDGE_MPNET:-benchmarks/runs/models/all-mpnet-base-v2}
T=$RUN/teacher
read -r -a SEEDS <<< "${SEEDS:-42 43 44}"
mkdir -p "$RES" "$RUN/bundles"

bash benchmarks/fetch_mpnet.sh "$MODEL"
stage teacher "$T" "$RES" kdedge teacher --config configs/sst2-mpnet-teacher.yaml --model "$MODEL" "${small[@]}" \
  "${short[@]}"
build_transfer "$RUN/transfer" "$RES/transfer.log" "${small[@]}"

declare -A STUDENTS=(
  [mpnet-pruned-4l-384]="--config configs/sst2-frontier.yaml --init prune $(shape 4 384 6 1536) --lr 1e-4 ${long[*]} ${wide[*]}"
  # Seed 42 alone (not in ONLY; the bench times its bundle beside the rest): the 4L-384's int8 graph sat on the 10x
  # bar in a latency probe, where an untrained FFN-768 one was 1.4x faster; at the full budget (two prediction
  # epochs) it kept 0.8979 against the FFN-1536 one's 0.9048, so the three seeds are the FFN-1536 recipe's.
  [mpnet-pruned-4l-384-ffn768]="--config configs/sst2-frontier.yaml --init prune $(shape 4 384 6 768) --lr 1e-4 ${long[*]}"
  [mpnet-pruned-2l-128]="--config configs/sst2-frontier.yaml --init prune $(shape 2 128 2 512) ${long[*]}"
  [bert-tiny-across]="--config configs/sst2-frontier.yaml --init pretrained:$BERT_TINY --w-att 0 ${long[*]}"
  # the frontier's options without its intermediate stage (its config sets the stage's sample size)
  [bert-tiny-prediction]="--task sst2 --student tinybert --init pretrained:$BERT_TINY --recipe prediction --trim-vocab
    --soft-loss soft_ce --batch-size 32 --lr 3e-4 --warmup-ratio 0.1 --eval-steps 2000 --save-steps 1000 ${pred[*]}"
  [bilstm-glove]="--config configs/sst2-bilstm.yaml --word-vectors $GLOVE --max-vocab 8000 ${short[*]}"
  # issue #15 sets the BiLSTM no size bar: the vocabulary uncapped (the 8,000-word cap is issue #14's 1.5 MB bar)
  [bilstm-glove-fullvocab]="--config configs/sst2-bilstm.yaml --word-vectors $GLOVE ${short[*]}"
)
read -r -a ONLY <<< "${ONLY:-mpnet-pruned-4l-384 mpnet-pruned-2l-128 bert-tiny-across bert-tiny-prediction bilstm-glove bilstm-glove-fullvocab}"
for seed in "${SEEDS[@]}"; do
  for name in "${ONLY[@]}"; do
    # shellcheck disable=SC2086  # the recipe is a list of options
    stage "$name-s$seed" "$RUN/students/$name-s$seed" "$RES" kdedge distill --teacher "$T" --transfer "$RUN/transfer" \
      --seed "$seed" --mixed-precision "$MP" ${STUDENTS[$name]} "${small[@]}"
    # transformers through ONNX Runtime's transformer optimizer, as the teacher's int8 bundle below: each at its fastest
    export_bundle "$RUN/students/$name-s$seed" "$RUN/bundles" int8 $([[ $name == bilstm* ]] || echo --optimize)
  done
done
[ "${BENCH:-1}" = 0 ] && exit 0

teacher_bundle "$RUN/bundles" > /dev/null
bundles=()
folder_bundles bundles "$RUN/bundles"
kdedge doctor > "$RES/doctor.txt"
kdedge bench --teacher "$T" "${bundles[@]}" --backends ort-cpu --threads 1 --rounds 3 --batch-sizes 1,32 --seq-lens 64 \
  "${small[@]:2}" --out "$RES/sst2" --overwrite > "$RES/bench.log"  # with SMOKE=1: --max-eval-samples
python benchmarks/collect_frontier.py "$RES" "$RUN/bundles" --targets base-teacher > "$RES/summary.md"
cat "$RES/summary.md"
exit
}
