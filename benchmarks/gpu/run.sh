#!/usr/bin/env bash
# Issue 46: the GPU run, in one call of the device tool (one H100, at most 8 minutes, nothing downloaded there).
#   1. teacher: all-MiniLM-L6-v2 (carried in float16, trained in float32 master weights under $PRECISION autocast)
#      fine-tuned on full SST-2 with configs/sst2-teacher.yaml, as the CPU runs did;
#   2. transfer: SST-2 train plus rule-based variants (--method $METHOD, 2 per sentence), labelled by that teacher;
#   3. the 2L-128 FFN-256 pruned student (round 4's recipe, sst2_recipes.sh: pruned-2l-128-ffn256-long) and the GloVe
#      BiLSTM (bilstm-glove, from the carried vectors), distilled side by side on the one GPU;
#   4. their fp32 and int8 bundles (kdedge export, as sst2_recipes.sh:export_bundle);
#   5. kdedge bench: teacher and students on torch-cuda in fp32, fp16 and bf16 (batch 1, 8, 32, 128; CUDA-event
#      timing), then the teacher's and students' bundles on ort-cpu with every core, and the ort-cuda/ort-tensorrt
#      rows with the reason they cannot run;
#   6. collect.py: rows/s per stage against the 2-core CPU's recorded runs (benchmarks/results/sst2_frontier_r8),
#      dev accuracy against the CPU seeds, the bench's figures -> summary.md.
# Everything measured goes to $RES ($RUN/results/run-<UTC time>, in the ignored run folder) and, packed, to $OUT
# (what the device tool brings back: summary.md, times.txt, run.log, results.tar.gz).
#
# On the GPU (after `bash benchmarks/gpu/prepare.sh` here; benchmarks/results/gpu/README.md has the device call):
#   bash benchmarks/gpu/run.sh
# The CPU smoke mode (tests/test_gpu_script.py): the same stages and files on a tiny teacher and a few hundred rows
#   DEVICE=cpu SMOKE=1 RUN=/tmp/gpu-smoke bash benchmarks/gpu/run.sh
# A stage that fails is recorded (times.txt: rc) and the stages that do not need its output still run; the script
# keeps to BUDGET_S seconds (stages that would start too late are skipped and said so) and always packs what it has.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
{  # read whole before it runs: editing the file during a run cannot change what the run does
T0=$(date +%s)
DEVICE=${DEVICE:-cuda}
SMOKE=${SMOKE:-0}
RUN=${RUN:-benchmarks/runs/gpu}
OUT=${OUT:-$RUN/out}
PY=${PYTHON:-python3}
SEED=${SEED:-42}
METHOD=${METHOD:-rules}
PARALLEL=${PARALLEL:-1}  # the two students distil side by side (one GPU, two processes)
RESERVE_S=${RESERVE_S:-20}  # kept for collecting and packing
if [ "$SMOKE" = 1 ]; then CARRY=${CARRY:-$RUN/carry-smoke}; else CARRY=${CARRY:-benchmarks/gpu/carry}; fi
if [ "$DEVICE" = cuda ]; then
  PRECISION=${PRECISION:-bf16} BUDGET_S=${BUDGET_S:-460}
  TORCH_BACKENDS=torch-cuda,torch-cuda-fp16,torch-cuda-bf16
else
  PRECISION=${PRECISION:-no} BUDGET_S=${BUDGET_S:-900}
  TORCH_BACKENDS=torch-cpu,torch-cuda,torch-cuda-fp16,torch-cuda-bf16  # the cuda rows say why not, here
fi
ONNX_BACKENDS=ort-cpu,ort-cuda,ort-tensorrt
THREADS=${THREADS:-$(nproc)}

. benchmarks/gpu/lib.sh  # gpu_setup, stage, done_, skip, record_total
gpu_setup "DEVICE=$DEVICE SMOKE=$SMOKE PRECISION=$PRECISION METHOD=$METHOD SEED=$SEED PARALLEL=$PARALLEL"
VECTORS=$RUN/inputs/vectors.txt

# --- sizes: the CPU runs' recipes; tiny ones for the smoke mode ------------------------------------------------------
T=$RUN/teacher TS=$RUN/transfer S2=$RUN/pruned-2l-128-ffn256-long SB=$RUN/bilstm-glove B=$RUN/bundles
common=(--seed "$SEED" --mixed-precision "$PRECISION" --overwrite)
if [ "$SMOKE" = 1 ]; then
  teacher_size=(--epochs 1 --batch-size 16)
  augment_size=(--shard-size 120)
  student_size=(--layers 1 --hidden 16 --heads 2 --intermediate 32 --epochs 1 --intermediate-samples 64
                --trim-min-count 1 --prune-samples 32 --batch-size 16)
  bilstm_size=(--epochs 1 --max-vocab 400 --lstm-hidden 16 --mlp-hidden 16)
  bench_size=(--batch-sizes 1,8 --seq-lens 16 --warmup 1 --min-runs 2 --min-time 0 --max-runs 2)
else
  teacher_size=()
  augment_size=()
  student_size=(--layers 2 --hidden 128 --heads 4 --intermediate 256 --epochs 2 --intermediate-samples 50000
                --trim-min-count 10)
  bilstm_size=(--max-vocab 8000)
  bench_size=(--batch-sizes 1,8,32,128 --seq-lens 64 --warmup 5 --min-runs 20 --min-time 0.1 --max-runs 200)
fi
replace=()
case ",$METHOD," in *,replace,*) replace=(--word-vectors "$VECTORS");; esac

# --- 1-2: teacher, transfer set -----------------------------------------------------------------------------------
stage teacher 30 "$T" kdedge teacher --config configs/sst2-teacher.yaml --model "$CARRY/teacher-base" --out "$T" \
  "${common[@]}" "${teacher_size[@]}"
if done_ "$T"; then
  stage transfer 20 "$TS" kdedge augment --task sst2 --teacher "$T" --method "$METHOD" "${replace[@]}" --variants 2 \
    --tagger none --out "$TS" "${common[@]}" "${augment_size[@]}"
else
  skip no_teacher transfer
fi

# --- 3: the students ----------------------------------------------------------------------------------------------
if done_ "$TS"; then
  distil_2l() {
    stage pruned-2l-128-ffn256-long 30 "$S2" kdedge distill --teacher "$T" --transfer "$TS" \
      --config configs/sst2-frontier.yaml --init prune "${student_size[@]}" --out "$S2" "${common[@]}"
  }
  distil_bilstm() {
    stage bilstm-glove 20 "$SB" kdedge distill --teacher "$T" --transfer "$TS" --config configs/sst2-bilstm.yaml \
      --word-vectors "$VECTORS" "${bilstm_size[@]}" --out "$SB" "${common[@]}"
  }
  if [ "$PARALLEL" = 1 ]; then
    distil_2l & first=$!
    distil_bilstm & second=$!
    wait "$first" "$second"  # by id: a bare wait would wait for the log's tee too
  else
    distil_2l; distil_bilstm
  fi
else
  skip no_transfer_set pruned-2l-128-ffn256-long bilstm-glove
fi

# --- 4: bundles (the four exports side by side: the CPU does them) -----------------------------------------------------
students=() bundles=() exports=()
for s in "$S2" "$SB"; do
  done_ "$s" || continue
  students+=(--student "$s")
  name=$(basename "$s") options=()
  [ "$s" = "$S2" ] && options=(--optimize)
  for precision in int8 fp32; do
    quantize=dynamic; [ "$precision" = fp32 ] && quantize=none
    stage "export-$name-$precision" 15 "$B/$name-$precision" kdedge export --model "$s" --out "$B/$name-$precision" \
      --quantize "$quantize" "${options[@]}" --overwrite &
    exports+=($!)
  done
done
[ ${#exports[@]} = 0 ] || wait "${exports[@]}"
for bundle in "$B"/*/; do
  [ -f "$bundle/manifest.json" ] && bundles+=(--bundle "${bundle%/}")
done

# --- 5: bench --------------------------------------------------------------------------------------------------------
if done_ "$T"; then
  stage bench-torch 30 "$RES/bench-torch/report.json" kdedge bench --teacher "$T" "${students[@]}" \
    --backends "$TORCH_BACKENDS" "${bench_size[@]}" --out "$RES/bench-torch" --overwrite --resume
  stage bench-onnx 30 "$RES/bench-onnx/report.json" kdedge bench --teacher "$T" "${bundles[@]}" \
    --backends "$ONNX_BACKENDS" --threads "$THREADS" "${bench_size[@]}" --out "$RES/bench-onnx" --overwrite --resume
else
  skip no_teacher bench-torch bench-onnx
fi

# --- 6: summary, and what comes back -------------------------------------------------------------------------------
"$PY" benchmarks/gpu/collect.py --run "$RUN" --res "$RES" --device "$DEVICE" --smoke "$SMOKE" \
  --precision "$PRECISION" --method "$METHOD" --parallel "$PARALLEL" > "$RES/summary.md"
status=$?
cat "$RES/summary.md"
record_total || status=1
cp "$RES/summary.md" "$RES/times.txt" "$OUT/" 2>/dev/null
tar -czf "$OUT/results.tar.gz" -C "$(dirname "$RES")" --exclude='*.onnx' "$(basename "$RES")"
cp "$RES/run.log" "$OUT/run.log"
exit "$status"
}
