# The GPU scripts' shared pieces (sourced by run.sh and fast_end.sh, from the repository root): one run folder per
# script that a second call on the same machine resumes, the carried inputs unpacked, kdedge from this checkout on
# the PATH, and stage(), which keeps every step within the call's budget and records how it ended.
# The sourcing script sets T0, DEVICE, SMOKE, RUN, OUT, PY, CARRY, BUDGET_S and RESERVE_S, then calls gpu_setup.

# gpu_setup OPTIONS: RES (the results folder: a second call resumes the first one's), the log, the environment.
# OPTIONS is what the run was made with; a run folder resumes only a run of the same options.
gpu_setup() {
  local options=$1
  if [ -z "${RES:-}" ] && [ -f "$RUN/results-dir" ]; then RES=$(cat "$RUN/results-dir"); fi
  RES=${RES:-$RUN/results/run-$(date -u +%Y%m%d-%H%M)}
  mkdir -p "$RES" "$RUN" "$OUT"
  RES=$(cd "$RES" && pwd) RUN=$(cd "$RUN" && pwd) OUT=$(cd "$OUT" && pwd)
  if [ -f "$RUN/options" ] && [ "$(cat "$RUN/options")" != "$options" ]; then
    echo "$RUN holds a run made with other options ($(cat "$RUN/options")): remove it, or give another RUN"
    exit 1
  fi
  echo "$options" > "$RUN/options"
  echo "$RES" > "$RUN/results-dir"
  exec > >(tee -a "$RES/run.log") 2>&1
  echo "gpu run ($0): $options BUDGET_S=$BUDGET_S RES=$RES"

  # the carried wheels, kdedge from this checkout, everything offline
  if [ "$SMOKE" = 1 ] && [ ! -f "$CARRY/carry.json" ]; then
    "$PY" benchmarks/gpu/prepare.py build "$CARRY" --smoke ${PREPARE_OPTIONS:-} || exit 1
  fi
  [ -f "$CARRY/carry.json" ] || { echo "no carried folder at $CARRY: run benchmarks/gpu/prepare.sh first"; exit 1; }
  local site=${SITE:-$RUN/site} wheels=("$CARRY"/wheels/*.whl)
  if [ -e "${wheels[0]}" ]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
      "${wheels[@]}" || exit 1
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
  fi
  export PYTHONPATH="$PWD:$PWD/export/python${PYTHONPATH:+:$PYTHONPATH}"
  export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_VERBOSITY=error PYTHONUNBUFFERED=1
  export KDEDGE_CACHE_DIR=$RUN/cache KDEDGE_DATA_DIR=$RUN/inputs/glue
  if [ "$DEVICE" = cpu ]; then export CUDA_VISIBLE_DEVICES=""; fi
  "$PY" benchmarks/gpu/prepare.py unpack "$CARRY" "$RUN/inputs" || exit 1
  # an executable, not a shell function: stage() runs it under `timeout`, which cannot call functions
  mkdir -p "$RUN/bin"
  printf '#!/usr/bin/env bash\nexec %q -m kdedge.cli "$@"\n' "$PY" > "$RUN/bin/kdedge" && chmod +x "$RUN/bin/kdedge"
  export PATH="$RUN/bin:$PATH"
  {
    date -u; nvidia-smi 2>&1 | head -15; "$PY" -c "import sys, torch, transformers, onnxruntime as o
print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers',
      transformers.__version__, 'onnxruntime', o.__version__, o.get_available_providers())
print('gpu', torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, 'cpus', __import__('os').cpu_count())"
    kdedge doctor
  } > "$RES/environment.txt" 2>&1
  touch "$RES/times.txt"  # appended to by every call; the last line of each stage counts
}

# progress bars out of the logs (tqdm joins them with carriage returns)
without_progress() { tr '\r' '\n' | { grep -av '%|' || [ $? = 1 ]; }; }

# stage NAME MIN_S OUTPUT command...: run it within what is left of the budget (skipped when under MIN_S seconds are
# left); its log in $RES/NAME.log, its wall time and exit status in $RES/times.txt. A stage whose OUTPUT (a model or
# bundle folder, or a file) an earlier call finished is not run again; a bench cut off by the budget resumes in the
# next call without timing again the pairs it finished (kdedge bench --resume).
stage() {
  local name=$1 min=$2 output=$3; shift 3
  if done_ "$output" || [ -f "$output" ]; then echo "$name: done by an earlier call"; return 0; fi
  local left=$(( BUDGET_S - ($(date +%s) - T0) - RESERVE_S ))
  if (( left < min )); then
    echo "$name skipped=budget left_s=$left min_s=$min" | tee -a "$RES/times.txt"
    return 1
  fi
  local t0 rc; t0=$(date +%s.%N)
  timeout --kill-after=10 "$left" "$@" 2>&1 | without_progress > "$RES/$name.log"
  rc=${PIPESTATUS[0]}
  echo "$name wall_s=$(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $t0}") rc=$rc started_s=$(awk "BEGIN{printf \"%.1f\", $t0 - $T0}")" \
    | tee -a "$RES/times.txt"
  [ "$rc" = 0 ] || tail -5 "$RES/$name.log"
  return "$rc"
}
done_() { [ -f "$1/metrics.json" ] || [ -f "$1/manifest.json" ]; }
skip() { local why=$1; shift; for name in "$@"; do echo "$name skipped=$why" | tee -a "$RES/times.txt"; done; }

# record_total: the call's wall time in times.txt; fails where a stage's last line says it failed or was skipped (an
# earlier call's skip is superseded by a later run)
record_total() {
  echo "total wall_s=$(( $(date +%s) - T0 ))" | tee -a "$RES/times.txt"
  ! awk '{last[$1] = $0} END {for (k in last) print last[k]}' "$RES/times.txt" | grep -q " rc=[^0]\|skipped="
}
