#!/usr/bin/env bash
# What kdedge.onnx.first_token buys: each model exported int8 (--optimize, --preset auto) twice, with the rewrite
# (the default) and with --no-first-token (every position through the last layer), all in one `kdedge bench` run
# (ort-cpu, 1 thread, batch 1 on real-length SST-2 dev rows, rounds interleaved). The logits are the same both ways
# (each export's parity check); only the latency moves.
# Usage: bash benchmarks/first_token.sh MODEL_DIR...  (the teacher folder first: it is the bench's --teacher too)
# Env: RES (default benchmarks/results/first_token), BUNDLES (default benchmarks/runs/first-token-bundles).
. "$(dirname "$0")/lib.sh"
{
[ $# -ge 1 ] || { echo "usage: bash benchmarks/first_token.sh TEACHER_DIR [STUDENT_DIR...]" >&2; exit 2; }
RES=${RES:-benchmarks/results/first_token}
B=${BUNDLES:-benchmarks/runs/first-token-bundles}
mkdir -p "$RES" "$B"
bundles=()
for model in "$@"; do
  for variant in first-token no-first-token; do
    out=$B/$(basename "$model")-int8-$variant
    [ -f "$out/manifest.json" ] || kdedge export --model "$model" --out "$out" --quantize dynamic --optimize \
      "--$variant" 2>&1 | without_progress | tail -1
    bundles+=(--bundle "$out")
  done
done
kdedge doctor > "$RES/doctor.txt"
kdedge bench --teacher "$1" "${bundles[@]}" --threads 1 --backends ort-cpu --rounds 3 --batch-sizes 1 --seq-lens 64 \
  --overwrite --out "$RES/sst2" > "$RES/sst2.log"
cat "$RES/sst2/report.md"
exit
}
