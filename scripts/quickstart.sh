#!/usr/bin/env bash
# A small but real run on SST-2: fine-tune the all-MiniLM-L6-v2 teacher on 3,000 training rows, distil a
# GloVe BiLSTM student from it, export the student as an int8 ONNX bundle (verified against PyTorch), and
# benchmark teacher and student side by side on the CPU backends. Takes a few minutes on 2 CPU cores.
# Usage: bash scripts/quickstart.sh [RUN_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/offline-env.sh
RUN=${1:-runs/quickstart}
GLOVE=${KDEDGE_GLOVE:-glove.6B.100d.txt}
echo "kdedge quickstart: teacher -> distill -> export -> bench on SST-2, into $RUN"

kdedge teacher --task sst2 --model sentence-transformers/all-MiniLM-L6-v2 --max-train-samples 3000 \
  --epochs 1 --lr 1e-4 --batch-size 32 --out "$RUN/teacher" --overwrite

kdedge distill --config configs/sst2-bilstm.yaml --word-vectors "$GLOVE" --teacher "$RUN/teacher" \
  --max-train-samples 3000 --epochs 4 --out "$RUN/student" --overwrite

kdedge export --model "$RUN/student" --out "$RUN/bundle-int8" --quantize dynamic --overwrite

kdedge bench --teacher "$RUN/teacher" --student "$RUN/student" --bundle "$RUN/bundle-int8" \
  --backends torch-cpu,ort-cpu --batch-sizes 1,32 --seq-lens 64 --out "$RUN/bench" --overwrite

kdedge predict --bundle "$RUN/bundle-int8" "a gorgeous, witty, seductive movie" "the plot is paper-thin and the acting wooden"

python - "$RUN" <<'PY'
import json, sys
run = sys.argv[1]
t = json.load(open(f"{run}/teacher/metrics.json"))["dev"]["accuracy"]
s = json.load(open(f"{run}/student/metrics.json"))
b = json.load(open(f"{run}/bundle-int8/manifest.json"))
rows = {(r["model"], r["backend"]): r for r in json.load(open(f"{run}/bench/report.json"))["rows"]}
int8 = rows[("bundle-int8", "ort-cpu")]
print(f"SST-2 dev accuracy: teacher {t:.4f}, BiLSTM student {s['dev']['accuracy']:.4f} "
      f"(retention {s['retention']:.3f}, {s['parameters']:,} parameters), "
      f"int8 ONNX {b['dev']['onnx']['accuracy']:.4f} ({b['files']['model.onnx']['bytes'] / 1e6:.1f} MB); "
      f"int8 p50 {int8['p50_ms']:.2f} ms at batch 1: {int8['speedup_vs_teacher_int8']:.1f}x the int8 teacher on "
      f"ONNX Runtime, {int8['speedup_vs_torch_teacher']:.1f}x the PyTorch teacher (full table: {run}/bench/report.md)")
PY
