#!/usr/bin/env bash
# Why dynamic int8 costs the MPNet teacher 6.4 points of Pearson on STS-B, and `kdedge export --keep-float auto`.
#   1. the teacher's fp32 bundle, then benchmarks/int8_keep_float.py: the dev metric with each group of MatMuls (and
#      each layer's FFN output projection) left in float;
#   2. the teacher's int8 export with --optimize and --keep-float auto (the nodes found on 128 training rows);
#   3. one `kdedge bench --rounds 3` (ort-cpu, 1 thread, batch 1 and 32, as glue_base_small.sh's) of the plain int8
#      teacher, the same with --keep-float auto, and the task's int8 students: what the speed-ups become.
# Needs glue_base_small.sh's run folder for TASK (its teacher and student bundles). Every stage resumes.
# Usage: TASK=stsb bash benchmarks/int8_keep_float.sh [RUN_DIR]
. "$(dirname "$0")/lib.sh"
{  # read whole before it runs
TASK=${TASK:-stsb}
GBS=${GBS:-benchmarks/runs/glue-base-small}/$TASK
RUN=${1:-benchmarks/runs/keep-float}/$TASK
RES=benchmarks/results/int8_keep_float/$TASK
mkdir -p "$RUN" "$RES"
T=$GBS/teacher

[ -f "$RUN/teacher-fp32/manifest.json" ] || kdedge export --model "$T" --out "$RUN/teacher-fp32" --overwrite
python benchmarks/int8_keep_float.py "$RUN/teacher-fp32" --out "$RUN/ablation" \
  --variants fp32,int8,attention-products,qkv,attention-out,ffn-in,ffn-out,ffn-out-each
cp "$RUN/ablation/results.json" "$RUN/ablation/results.md" "$RES/"

for kept in none auto; do
  out=$RUN/teacher-optimized-int8-keep-float-$kept
  [ -f "$out/manifest.json" ] || kdedge export --model "$T" --out "$out" --quantize dynamic --optimize \
    --keep-float "$kept" --overwrite 2> "$RES/export-keep-float-$kept.log"
  python -c "import json, sys; m = json.load(open(sys.argv[1]))
print(json.dumps({k: m[k] for k in ('dev', 'quantization')}, indent=1))" \
    "$out/manifest.json" > "$RES/export-keep-float-$kept.json"
done

students=()
for b in "$GBS"/bundles/*-s4[234]-int8; do students+=(--bundle "$b"); done
[ -f "$RES/bench/report.json" ] || kdedge bench --bundle "$RUN/teacher-optimized-int8-keep-float-none" \
  --bundle "$RUN/teacher-optimized-int8-keep-float-auto" "${students[@]}" --backends ort-cpu --threads 1 --rounds 3 \
  --batch-sizes 1,32 --seq-lens 128 --out "$RES/bench" --resume > "$RES/bench.log" 2>&1
}
