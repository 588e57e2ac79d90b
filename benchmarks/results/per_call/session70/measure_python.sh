#!/usr/bin/env bash
# Session 70's Python measurement: the device bench (`predict()` p50 against the model's own run, the bar's
# instrument) on the given bundles, with the Python runtime of git REV (before: a worktree, its two extensions built by
# pip as an install builds them) and with this tree's (after), back to back, twice. Run from the repository root in
# the project's venv, the machine otherwise idle.
# Usage: bash benchmarks/results/per_call/session70/measure_python.sh REV DATA.tsv BUNDLE...
set -euo pipefail
rev=$1 data=$2; shift 2
out=benchmarks/results/per_call/session70/python
mkdir -p "$out"
old=$(mktemp -d)
trap 'git worktree remove --force "$old/tree"; rm -rf "$old"' EXIT
git worktree add -q --detach "$old/tree" "$rev"
pip wheel -q --no-deps --no-build-isolation -w "$old/wheel" "$old/tree" > /dev/null
(cd "$old/wheel" && python -m zipfile -e ./*.whl "$old/site")
for run in 1 2; do
  PYTHONPATH=$old/site kdedge-device-bench "$@" --data "$data" --threads 1 --out "$out/before-$run.json" \
    > "$out/before-$run.txt"
  kdedge-device-bench "$@" --data "$data" --threads 1 --out "$out/after-$run.json" > "$out/after-$run.txt"
done
python - "$out" <<'PY' | tee "$out/summary.txt"
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
for run in (1, 2):
    for side in ("before", "after"):
        report = json.loads((out / f"{side}-{run}.json").read_text())
        for row in report["bundles"]:
            model, call = row["latency"]["1"]["p50_ms"] * 1000, row["predict"]["p50_ms"] * 1000
            print(f"run {run} {side:6} {row['name']}: model {model:.2f} µs, predict {call:.2f} µs, "
                  f"ratio {call / model:.3f} ({row['model_engine']})")
PY
