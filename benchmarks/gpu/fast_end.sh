#!/usr/bin/env bash
# Issue 49, the fast end's IMDB_HALF round on one GPU, in one call of the device tool (nothing downloaded there). The
# stages of `IMDB_HALF=1 bash benchmarks/sst2_fast_end.sh` up to the bundles; the peers and every measurement then run
# on the CPU machine (benchmarks/gpu/fast_end_peers.sh), where the per-call times mean something:
#   1. teacher: all-MiniLM-L6-v2 (carried in float16, float32 master weights) fine-tuned on SST-2 under bf16
#      autocast with configs/sst2-teacher.yaml, as run.sh and the CPU runs do;
#   2. set (b), as sst2_recipes.sh:build_imdb_half builds it: SST-2 train plus 2 word-replaced (GloVe: the carried
#      20,000 words, prepare.py --imdb) and 2 rule-based variants a sentence, and the 1,000 unlabelled IMDB reviews
#      (carried, split as on the CPU) with theirs, labelled by the teacher, the held-out half kept out;
#   3. the n-gram students of ONLY (recipes of sst2_recipes.sh) for every seed, all side by side (one process each), with the
#      held-out half as --eval-file, in float32 as on the CPU;
#   4. the students' int8 bundles (sst2_recipes.sh:export_bundle) and the teacher's (--optimize, teacher_bundle);
#   5. $OUT, what the device tool brings back (at most 8 files of 16 MiB): students.tar (the bundles), teacher.tar.NN
#      (the teacher's bundle, in pieces), transfer.tar.NN (set (b): fastText trains on the same rows here),
#      results.tar.gz (the logs, times, each student's metrics and train log), times.txt.
#
# On the GPU (after `bash benchmarks/gpu/prepare.sh benchmarks/gpu/carry --imdb` here):
#   bash benchmarks/gpu/fast_end.sh
# The CPU smoke mode (tests/test_gpu_script.py): the same stages and files on a tiny teacher and a few hundred rows
#   DEVICE=cpu SMOKE=1 RUN=/tmp/fast-end-smoke bash benchmarks/gpu/fast_end.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
{  # read whole before it runs
T0=$(date +%s)
DEVICE=${DEVICE:-cuda}
SMOKE=${SMOKE:-0}
RUN=${RUN:-benchmarks/runs/gpu-fast-end}
OUT=${OUT:-$RUN/out}
PY=${PYTHON:-python3}
read -r -a SEEDS <<< "${SEEDS:-42 43 44}"
read -r -a ONLY <<< "${ONLY:-ngram ngram-long}"
RESERVE_S=${RESERVE_S:-25}  # kept for packing
if [ "$SMOKE" = 1 ]; then CARRY=${CARRY:-$RUN/carry-smoke}; else CARRY=${CARRY:-benchmarks/gpu/carry}; fi
PREPARE_OPTIONS=--imdb  # the smoke mode builds its own carried folder with the IMDB halves
if [ "$DEVICE" = cuda ]; then PRECISION=${PRECISION:-bf16} BUDGET_S=${BUDGET_S:-540}
else PRECISION=${PRECISION:-no} BUDGET_S=${BUDGET_S:-900}; fi

. benchmarks/gpu/lib.sh  # gpu_setup, stage, done_, skip, record_total
gpu_setup "DEVICE=$DEVICE SMOKE=$SMOKE PRECISION=$PRECISION SEEDS=${SEEDS[*]} ONLY=${ONLY[*]}"
IN=$RUN/inputs
[ -f "$IN/imdb/unlabeled.txt" ] || { echo "$CARRY has no IMDB halves: build it with prepare.sh ... --imdb"; exit 1; }
T=$RUN/teacher TS=$RUN/transfer S=$RUN/students B=$RUN/bundles
. benchmarks/sst2_recipes.sh  # RECIPES (name -> distill options), EXPORT_OPTIONS
if [ "$SMOKE" = 1 ]; then
  teacher_size=(--epochs 1 --batch-size 16)
  augment_size=(--shard-size 120)
  student_size=(--epochs 1 --max-vocab 300 --ngram-buckets 300 --ngram-dim 8 --ngram-hidden 16)
else
  teacher_size=() augment_size=() student_size=()
fi

# --- 1-2: teacher, set (b) -----------------------------------------------------------------------------------------
stage teacher 30 "$T" kdedge teacher --config configs/sst2-teacher.yaml --model "$CARRY/teacher-base" --out "$T" \
  --seed 42 --mixed-precision "$PRECISION" --overwrite "${teacher_size[@]}"
teacher_export=
if done_ "$T"; then  # the teacher's bundle exports on the CPU while the GPU labels set (b)
  stage export-teacher 30 "$B/teacher-optimized-int8" kdedge export --model "$T" --out "$B/teacher-optimized-int8" \
    --quantize dynamic --optimize --overwrite &
  teacher_export=$!
  stage transfer 20 "$TS" kdedge augment --task sst2 --teacher "$T" --method replace,rules --word-vectors "$IN/vectors.txt" \
    --variants 2 --unlabeled "imdb=$IN/imdb/unlabeled.txt" --augment-unlabeled --eval-file "imdb=$IN/imdb/eval.tsv" \
    --max-words 3000 --mixed-precision "$PRECISION" --out "$TS" --overwrite "${augment_size[@]}"
else
  skip no_teacher transfer
fi

# --- 3: the students, side by side ------------------------------------------------------------------------------------
students=()
if done_ "$TS"; then
  pids=()
  for seed in "${SEEDS[@]}"; do
    for name in "${ONLY[@]}"; do
      student=$name-imdb-s$seed  # sst2_fast_end.sh's names for IMDB_HALF=1
      students+=("$student")
      # shellcheck disable=SC2086  # the recipe's options are words
      OMP_NUM_THREADS=2 stage "$student" 30 "$S/$student" kdedge distill --teacher "$T" --transfer "$TS" \
        --seed "$seed" --eval-file "imdb=$IN/imdb/eval.tsv" ${RECIPES[$name]} --out "$S/$student" --overwrite \
        "${student_size[@]}" &
      pids+=($!)
    done
  done
  wait "${pids[@]}"  # by id: a bare wait would wait for the log's tee too
else
  skip no_transfer_set students
fi

# --- 4: bundles -------------------------------------------------------------------------------------------------------
pids=()
for student in "${students[@]}"; do
  done_ "$S/$student" || continue
  # shellcheck disable=SC2086
  stage "export-$student" 15 "$B/$student-int8" kdedge export --model "$S/$student" --out "$B/$student-int8" \
    --quantize dynamic ${EXPORT_OPTIONS[${student%-imdb-s*}]:-} --overwrite &
  pids+=($!)
done
[ -z "$teacher_export" ] || pids+=("$teacher_export")
[ ${#pids[@]} = 0 ] || wait "${pids[@]}"

# --- 5: what comes back -----------------------------------------------------------------------------------------------
status=0
record_total || status=1
for student in "${students[@]}"; do  # each student's own record: metrics (dev, imdb), train log, config
  mkdir -p "$RES/students/$student"
  cp "$S/$student"/*.json "$S/$student"/*.jsonl "$RES/students/$student/" 2>/dev/null
done
cp "$RES/times.txt" "$OUT/"
tar -czf "$OUT/results.tar.gz" -C "$(dirname "$RES")" "$(basename "$RES")"  # run.log among them
[ ! -d "$B" ] || tar -cf "$OUT/students.tar" -C "$B" --exclude='teacher-*' .
# the device tool brings back at most 8 files of 16 MiB: the larger two in pieces (cat them back together)
if done_ "$B/teacher-optimized-int8"; then
  tar -cf - -C "$B" teacher-optimized-int8 | split -b 15M -d - "$OUT/teacher.tar."
fi
if done_ "$TS"; then  # Parquet shards, compressed already
  tar -cf - -C "$RUN" "$(basename "$TS")" | split -b 15M -d - "$OUT/transfer.tar."
fi
ls -la "$OUT"
exit "$status"
}
