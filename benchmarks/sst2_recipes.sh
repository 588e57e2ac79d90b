# The SST-2 benchmarks' shared pieces (sourced by sst2_frontier.sh, sst2_to_imdb.sh and sst2_fast_end.sh, after
# lib.sh): the student recipes, the replace+rules transfer set (and with the IMDB half), the export of a student to a
# bundle, and a GPU run's files unpacked.
GLOVE=${KDEDGE_GLOVE:-glove.6B.100d.txt}
BERT_TINY=${KDEDGE_BERT_TINY:-../shared/models/bert-tiny-splade}

# The students, cheapest first: recipe name -> distill arguments. Each recipe's comment says what it is and which
# run's README (benchmarks/results/<run>/README.md) explains why it exists and what it scored.
pruned=(--config configs/sst2-frontier.yaml --init prune)
shape() { echo --layers "$1" --hidden "$2" --heads "$3" --intermediate "$4"; }
long=(--epochs 2 --intermediate-samples 50000 --trim-min-count 10)  # round 2's long recipe: sst2_frontier_r2
tuned=(--temperature 5 --alpha 0.1)  # the tuning studies' soft loss (issue 20), tried in round 3: sst2_frontier_r3
declare -A RECIPES=(
  # round 1: pruned from the teacher, 2L-128 (sst2_frontier)
  [pruned-2l-128]="${pruned[*]} $(shape 2 128 4 512)"
  # round 1: pruned, 2L-192 (sst2_frontier)
  [pruned-2l-192]="${pruned[*]} $(shape 2 192 6 768)"
  # round 1: pruned, 2L-256 (sst2_frontier)
  [pruned-2l-256]="${pruned[*]} $(shape 2 256 8 1024)"
  # round 1: pruned, 3L-256, prediction stage on a 100,000-row sample (sst2_frontier)
  [pruned-3l-256]="${pruned[*]} $(shape 3 256 8 1024) --max-train-samples 100000"
  # round 1: pruned, 3L-384 (the teacher's width) on less, at the teacher's fine-tuning rate (sst2_frontier)
  [pruned-3l-384]="${pruned[*]} $(shape 3 384 12 1536) --max-train-samples 50000 --intermediate-samples 10000 --lr 1e-4"
  # the init comparison: 2L-128 (2 heads) from the BERT-Tiny-sized checkpoint (sst2_frontier_inits)
  [pretrained-2l-128]="--config configs/sst2-frontier.yaml --init pretrained:$BERT_TINY"
  # the init comparison: 2L-128 from random weights (sst2_frontier_inits)
  [random-2l-128]="--config configs/sst2-frontier.yaml --init random $(shape 2 128 4 512)"
  # the trimming comparison: pruned 2L-128 with the full vocabulary (sst2_frontier_inits)
  [pruned-2l-128-fullvocab]="${pruned[*]} $(shape 2 128 4 512) --no-trim-vocab"
  # target 3's GloVe BiLSTM, vocabulary capped to fit 1.5 MB (sst2_frontier; today's figures: sst2_frontier_r9)
  [bilstm-glove]="--config configs/sst2-bilstm.yaml --word-vectors $GLOVE --max-vocab 8000"
  # round 2: the long recipe at 2L-128 (sst2_frontier_r2)
  [pruned-2l-128-long]="${pruned[*]} $(shape 2 128 4 512) ${long[*]}"
  # round 2: the long recipe at 3L-256, vocabulary trimmed at count 15 to fit 6 MB (sst2_frontier_r2)
  [pruned-3l-256-long]="${pruned[*]} $(shape 3 256 8 1024) ${long[*]} --trim-min-count 15"
  # round 2: the long recipe at 3L-192, for 5x (sst2_frontier_r2)
  [pruned-3l-192-long]="${pruned[*]} $(shape 3 192 6 768) ${long[*]}"
  # round 3's soft loss at FFN 512, timed in its latency probe (sst2_frontier_r3, sst2_latency_probe_r3)
  [pruned-2l-128-t5-long]="${pruned[*]} $(shape 2 128 4 512) ${long[*]} ${tuned[*]}"
  # round 3: the tuned soft loss at FFN 256 (sst2_frontier_r3)
  [pruned-2l-128-ffn256-t5-long]="${pruned[*]} $(shape 2 128 4 256) ${long[*]} ${tuned[*]}"
  # round 3: the same, vocabulary trimmed at count 5 (sst2_frontier_r3)
  [pruned-2l-128-ffn256-t5-c5-long]="${pruned[*]} $(shape 2 128 4 256) ${long[*]} ${tuned[*]} --trim-min-count 5"
  # round 3: the same, the intermediate stage over the whole transfer set (sst2_frontier_r3)
  [pruned-2l-128-ffn256-t5-fullint]="${pruned[*]} $(shape 2 128 4 256) ${long[*]} ${tuned[*]} --intermediate-samples 300000"
  # round 4: round 2's loss (T 1) at FFN 256, target 2's student (sst2_frontier_r4; today's figures: sst2_frontier_r9)
  [pruned-2l-128-ffn256-long]="${pruned[*]} $(shape 2 128 4 256) ${long[*]}"
  # round 4: the same at FFN 384 (sst2_frontier_r4)
  [pruned-2l-128-ffn384-long]="${pruned[*]} $(shape 2 128 4 384) ${long[*]}"
  # round 4: one epoch of QAT on each seed's pruned-2l-128-ffn256-long (@SEED@: the seed being trained; the frontier
  # config's options spelt out, since --recipe prediction refuses the intermediate stage it sizes) (sst2_frontier_r4)
  [pruned-2l-128-ffn256-long-qat]="--task sst2 --student tinybert --init pretrained:$RUN/frontier/pruned-2l-128-ffn256-long-s@SEED@
    --recipe prediction --epochs 0 --qat --soft-loss soft_ce --temperature 1 --alpha 0 --batch-size 32 --lr 3e-4
    --warmup-ratio 0.1 --max-length 128 --eval-steps 2000 --save-steps 1000"
  # round 5: round 4's FFN-256 recipe on the 4+4 transfer set of TRANSFER_SETS (sst2_frontier_r5)
  [pruned-2l-128-ffn256-x4-long]="${pruned[*]} $(shape 2 128 4 256) ${long[*]}"
  # round 6: 3L-192 at FFN 512, target 1's student (sst2_frontier_r6; today's figures: sst2_frontier_r9)
  [pruned-3l-192-ffn512-long]="${pruned[*]} $(shape 3 192 6 512) ${long[*]}"
  # the fast end: fastText's architecture distilled from the teacher's soft labels (issue 49; sst2_fast_end)
  [ngram]="--config configs/sst2-ngram.yaml --max-length 128"
  # fastText's own read-out (no hidden layer) at the first recipe's table (20,000 + 20,000 rows, 5 epochs): the
  # n-gram student before the hidden layer (sst2_fast_end)
  [ngram-linear]="--config configs/sst2-ngram.yaml --max-length 128 --ngram-hidden 0 --max-vocab 20000 --ngram-buckets 20000 --epochs 5
    --patience 2"
  # the n-gram recipe with DAN's word dropout (Iyyer et al. 2015 used 0.3), given more epochs since each sees a thinned
  # text (sst2_fast_end)
  [ngram-wd3]="--config configs/sst2-ngram.yaml --max-length 128 --ngram-word-dropout 0.3 --epochs 15 --patience 4"
  # the n-gram recipe reading up to 2,048 words a text instead of 128: the shared IMDB sample's reviews hold 294 on average
  # (87 % of them more than 128, one in 2,000 more than 2,048), and fastText reads every word (sst2_fast_end_r3); the
  # config's cap since then, so the recipes above give theirs
  [ngram-long]="--config configs/sst2-ngram.yaml"
  # the n-gram recipe learning the teacher's probabilities at T 2 (soft cross-entropy, Hinton et al. 2015) instead of
  # its logits (MSE): the students overfit after 3-6 epochs, and a softer signal is the lever left in the tune space
  # (sst2_fast_end_r3)
  [ngram-sce2]="--config configs/sst2-ngram.yaml --soft-loss soft_ce --temperature 2"
  # the n-gram recipe for a set about three times as large (VARIANTS=8 in sst2_fast_end.sh): 4 epochs there see about
  # as many rows as the recipe's 10 on set (b) (sst2_fast_end_r4)
  [ngram-long-e4]="--config configs/sst2-ngram.yaml --epochs 4 --patience 2"
  # the same, run to the end of its learning-rate decay (no early stop) and evaluated four times an epoch (13,620 steps
  # on set v8), since dev accuracy swings by a point from one epoch to the next (sst2_fast_end_r4)
  [ngram-long-e4-fine]="--config configs/sst2-ngram.yaml --epochs 4 --eval-steps 3405 --patience 16"
  # ngram-long-e4 with a second hidden layer of 256 (DAN stacked up to three, Iyyer et al. 2015): on set v8 the
  # one-layer student's dev accuracy is flat near 0.84 after its first epoch (sst2_fast_end_r4)
  [ngram-long-e4-h2]="--config configs/sst2-ngram.yaml --epochs 4 --patience 2 --ngram-hidden-layers 2"
  # ngram-long-e4-fine keeping the weights' moving average (--ema-decay 0.9995: about the last 2,000 steps, a seventh
  # of an epoch of set v8) instead of each step's own: its dev accuracy swung by a point between evaluations a quarter
  # of an epoch apart, the sign of weights that move with each batch (sst2_fast_end_r5)
  [ngram-long-e4-ema]="--config configs/sst2-ngram.yaml --epochs 4 --eval-steps 3405 --patience 16 --ema-decay 0.9995"
  # capacity probes, over the 2 MB bar on purpose: does a bag of n-grams pass 0.85 on SST-2 with a larger table?
  # ngram-long-e4 with rows twice as wide and three times as many (32,000 words + 64,000 buckets of 100, 9.6 MB int8),
  # and the same starting from GloVe's 100-wide rows (sst2_fast_end_r5)
  [ngram-wide-probe]="--config configs/sst2-ngram.yaml --epochs 4 --patience 2 --ngram-dim 100 --max-vocab 32000
    --ngram-buckets 64000"
  [ngram-wide-glove-probe]="--config configs/sst2-ngram.yaml --epochs 4 --patience 2 --ngram-dim 100 --max-vocab 32000
    --ngram-buckets 64000 --word-vectors $GLOVE"
  # ngram-long-e4 with word trigrams hashed beside the bigrams in the same 16,000 buckets: the sentences it loses to the
  # teacher hold negation and contrast words more often than the rest ("not very good" is a trigram) (sst2_fast_end_r5)
  [ngram-long-e4-w3]="--config configs/sst2-ngram.yaml --epochs 4 --patience 2 --ngram-words 3"
  # ngram-long-e4 with negation scopes marked: the (at most 4) words after a negator, up to the clause's end, hashed
  # again as "not_<word>" in the same buckets (Das and Chen 2001; Pang et al. 2002); trigrams did not read "not ...
  # good" (sst2_fast_end_r5); and the same with the clause after "but" marked too ("but_<word>") (sst2_fast_end_r6)
  [ngram-long-e4-neg]="--config configs/sst2-ngram.yaml --epochs 4 --patience 2 --ngram-scopes negation"
  [ngram-long-e4-negbut]="--config configs/sst2-ngram.yaml --epochs 4 --patience 2 --ngram-scopes negation,contrast"
  # round 9, on set v8-both (reviews whole and as sentences), three levers on ngram-long-e4-negbut (sst2_fast_end_r9):
  # a fifth epoch (seed 42 still rose in its fourth); SST-2's gold labels beside the teacher's on the rows that have
  # them (alpha 0.2: cross-entropy on gold, a fifth of the loss; the augmented rows keep the teacher's alone); and the
  # same 2 MB spent on more, narrower rows (40 wide, 18,000 words + 22,000 buckets: fewer bigrams and scope words
  # share a bucket)
  [ngram-long-e5-negbut]="--config configs/sst2-ngram.yaml --epochs 5 --patience 2 --ngram-scopes negation,contrast"
  [ngram-long-e4-negbut-gold2]="--config configs/sst2-ngram.yaml --epochs 4 --patience 2 --ngram-scopes negation,contrast
    --alpha 0.2"
  [ngram-long-e4-negbut-d40]="--config configs/sst2-ngram.yaml --epochs 4 --patience 2 --ngram-scopes negation,contrast
    --ngram-dim 40 --max-vocab 18000 --ngram-buckets 22000"
)
# Recipes trained on another transfer set than the frontier's: recipe -> its folder under RUN_DIR and the augment
# options it is built with (build_transfer)
declare -A TRANSFER_SETS=(
  [pruned-2l-128-ffn256-x4-long]="transfer-x4 --variants 4"
)
# What export_bundle adds for a recipe: --optimize runs ONNX Runtime's transformer optimizer (why, and what it gains:
# sst2_frontier_r3 and sst2_latency_probe_r3); benches that use it also time the teacher exported the same way
# (teacher_bundle).
declare -A EXPORT_OPTIONS=(
  [pruned-2l-128-t5-long]="--optimize"
  [pruned-2l-128-ffn256-t5-long]="--optimize"
  [pruned-2l-128-ffn256-t5-c5-long]="--optimize"
  [pruned-2l-128-ffn256-t5-fullint]="--optimize"
  [pruned-2l-128-ffn256-long]="--optimize"
  [pruned-2l-128-ffn384-long]="--optimize"
  # the QAT weights requantized by the dynamic quantizer, the scheme QAT emulates (sst2_frontier_r4)
  [pruned-2l-128-ffn256-long-qat]="--optimize"
  [pruned-2l-128-ffn256-x4-long]="--optimize"
  [pruned-3l-192-ffn512-long]="--optimize"
)

# build_transfer OUT LOG [augment options...]: all of SST-2 train plus 2 word-replaced (GloVe) and 2 rule-based
# variants per sentence, labelled by the teacher $T (resumable; skipped when OUT is finished). Options given win
# (click keeps an option's last value): e.g. --task mrpc --variants 4.
build_transfer() {
  local out=$1 log=$2; shift 2
  [ ! -f "$out/manifest.json" ] || return 0
  local t0 resumed; t0=$(date +%s) resumed=$(resume_note "$out")
  kdedge augment --task sst2 --teacher "$T" --method replace,rules --word-vectors "$GLOVE" --variants 2 "$@" \
    --out "$out" --resume 2>&1 | without_progress > "$log"
  echo "$(basename "$out") wall_s=$(( $(date +%s) - t0 ))$resumed" | tee -a "$(dirname "$log")/times.txt"
}

# build_imdb_half IMDB_TSV W LOG [NAME [augment options...]]: the labelled reviews split with a fixed seed into 1,000
# unlabelled ones (W/unlabeled.txt, labels dropped) and the rest held out (W/eval.tsv; the split's line in LOG's
# folder, split.txt), then set (b) in W/NAME (default transfer): build_transfer's SST-2 set plus the unlabelled
# reviews and their variants, labelled by $T, the held-out half kept out of it and reviews kept whole (the models
# read their first ids); options given go to kdedge augment (e.g. --max-length 512: the teacher reads more of each).
# UNLABELED_SENTENCES=1: the unlabelled reviews split into sentences first (W/unlabeled-sentences.txt,
# benchmarks/split_sentences.py), the unit SST-2's rows come in; =both: the sentences and the whole reviews, as two
# unlabelled sources (imdb-sent and imdb)
build_imdb_half() {
  local imdb=$1 w=$2 log=$3 name=${4:-transfer} sentences=$2/unlabeled-sentences.txt
  local -a unlabeled=(--unlabeled "imdb=$2/unlabeled.txt")
  shift $(( $# < 4 ? $# : 4 ))
  case ${UNLABELED_SENTENCES:-0} in  # checked before anything is written
    0) ;;
    1) unlabeled=(--unlabeled "imdb=$sentences") ;;
    both) unlabeled+=(--unlabeled "imdb-sent=$sentences") ;;
    *) echo "UNLABELED_SENTENCES is 0, 1 or both, not ${UNLABELED_SENTENCES}" >&2; return 1 ;;
  esac
  mkdir -p "$w"
  python benchmarks/split_labelled.py "$imdb" "$w/unlabeled.txt" "$w/eval.tsv" --unlabeled-rows 1000 --seed 0 \
    | tee "$(dirname "$log")/split.txt"
  [ "${UNLABELED_SENTENCES:-0}" = 0 ] \
    || python benchmarks/split_sentences.py "$w/unlabeled.txt" "$sentences" | tee -a "$(dirname "$log")/split.txt"
  build_transfer "$w/$name" "$log" "${unlabeled[@]}" --augment-unlabeled \
    --eval-file "imdb=$w/eval.tsv" --max-words 3000 "$@"
}

# export_bundle STUDENT_DIR BUNDLES_DIR PRECISION [export options...]: the student's fp32 or int8 (--preset auto)
# bundle, once
export_bundle() {
  local out=$2/$(basename "$1")-$3 model=$1 precision=$3; shift 3
  [ -f "$out/manifest.json" ] || kdedge export --model "$model" --out "$out" \
    --quantize "$([ "$precision" = fp32 ] && echo none || echo dynamic)" "$@" 2>&1 | without_progress | tail -1
}

# unpack_from_gpu DIR: benchmarks/gpu/fast_end.sh's files (its $OUT) into this run's layout: set (b) in $RUN/imdb,
# the teacher's and students' bundles in $B, its logs and times in $RES/gpu (what is there already stays)
unpack_from_gpu() {
  local dir=$1
  mkdir -p "$RUN/imdb" "$B" "$RES/gpu"
  [ -f "$RUN/imdb/transfer/manifest.json" ] || cat "$dir"/transfer.tar.* | tar -xf - -C "$RUN/imdb"
  [ -f "$B/teacher-optimized-int8/manifest.json" ] || cat "$dir"/teacher.tar.* | tar -xf - -C "$B"
  tar -xf "$dir/students.tar" -C "$B" --skip-old-files
  tar -xzf "$dir/results.tar.gz" -C "$RES/gpu" --strip-components=1
}

# teacher_bundle BUNDLES_DIR: the teacher $T exported int8 with --optimize, once, as a bundle row beside the students,
# so that a bench with optimized students also shows what the optimizer does for the teacher
teacher_bundle() {
  local out=$1/teacher-optimized-int8
  [ -f "$out/manifest.json" ] || kdedge export --model "$T" --out "$out" --quantize dynamic --optimize 2>&1 \
    | without_progress | tail -1 >&2
  echo "$out"
}
