# Shared helpers for the benchmark scripts: run a stage once (skipped when its output exists),
# keep its log, and record its wall time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/offline-env.sh

# without_progress: stdin less its progress-bar lines (tqdm joins them with carriage returns); no line left is fine
without_progress() { tr '\r' '\n' | { grep -av '%|' || [ $? = 1 ]; }; }

# folder_bundles ARRAY DIR: append `--bundle FOLDER` to ARRAY for every bundle (a folder with manifest.json) in DIR
folder_bundles() {
  local -n into=$1
  local bundle
  for bundle in "$2"/*/; do
    if [ -f "$bundle/manifest.json" ]; then into+=(--bundle "${bundle%/}"); fi
  done
}

# resume_note OUT_DIR: what a wall time gets beside it when the run resumes from its checkpoints (<out>.partial),
# since it is timed from the resume only
resume_note() { [ ! -d "$1.partial" ] || echo " (resumed: from the resume only)"; }

# stage NAME OUT_DIR RESULTS_DIR command...
stage() {
  local name=$1 out=$2 res=$3; shift 3
  mkdir -p "$res"
  if [ -f "$out/metrics.json" ]; then echo "$name: cached ($out)"; return; fi
  local t0 resumed; t0=$(date +%s) resumed=$(resume_note "$out")
  "$@" --out "$out" --resume 2>&1 | without_progress > "$res/$name.log"
  echo "$name wall_s=$(( $(date +%s) - t0 ))$resumed" | tee -a "$res/times.txt"
  # the run's own record beside its log, so that it is committed with the results, not lost with the run folder
  local record
  for record in metrics.json train_log.jsonl; do [ ! -f "$out/$record" ] || cp "$out/$record" "$res/$name.$record"; done
}
