#!/usr/bin/env bash
# The fuzz targets of issue 48, run for longer than CI does: FUZZ_MINUTES per target (default 30).
# - Python (tests/test_fuzz.py): unseeded (Hypothesis profile "long"), in rounds of KDEDGE_FUZZ_EXAMPLES cases;
#   the cases tried and what was found per target go to $FUZZ_OUT (default benchmarks/results/fuzz): stats.json,
#   summary.md, pytest.log. Each failing case Hypothesis prints (shrunk, with @reproduce_failure) becomes a regular
#   test in tests/test_untrusted_input.py and gets fixed.
# - JavaScript (export/node/test/fuzz.test.js: export/core's parsers, Node, the browser's loader, serve.js): seeded
#   (FUZZ_SEED, default 10), one target after another; the cases per target are added to summary.md, the log is
#   node.log. A failure names its seed and case (KDEDGE_FUZZ_SEED=... KDEDGE_FUZZ_CASE=... replays it). Needs
#   `npm ci` in export/node.
#
#   benchmarks/fuzz.sh                      # 30 minutes per target (8.5 hours for the 10 + 7 targets)
#   FUZZ_MINUTES=0.2 benchmarks/fuzz.sh     # a short run
#   FUZZ_TARGETS=manifest benchmarks/fuzz.sh   # the Python targets whose test name matches (pytest -k)
#   FUZZ_JS_TARGETS="parseManifest|a bundle URL" benchmarks/fuzz.sh   # the JS targets matching (--test-name-pattern)
#   FUZZ_LANGS=node benchmarks/fuzz.sh      # one language (python, node; default both)
set -uo pipefail
cd "$(dirname "$0")/.."
[ -f .venv/bin/activate ] && . .venv/bin/activate
[ -f scripts/offline-env.sh ] && source scripts/offline-env.sh
MINUTES=${FUZZ_MINUTES:-30}
OUT=${FUZZ_OUT:-benchmarks/results/fuzz}
mkdir -p "$OUT"
export HYPOTHESIS_PROFILE=long
export KDEDGE_FUZZ_SECONDS=$(python -c "print(float('$MINUTES') * 60)")
export KDEDGE_FUZZ_EXAMPLES=${KDEDGE_FUZZ_EXAMPLES:-100}
export KDEDGE_FUZZ_STATS="$OUT/stats.json"
LANGS=" ${FUZZ_LANGS:-python node} "
status=0
: > "$OUT/summary.md"
if [[ $LANGS == *" python "* ]]; then
started=$(date +%s)
python -m pytest -q tests/test_fuzz.py -p no:cacheprovider -k "test_fuzz_ and ${FUZZ_TARGETS:-fuzz}" \
    > "$OUT/pytest.log" 2>&1
status=$?
wall=$(( $(date +%s) - started ))
python - "$OUT" "$MINUTES" "$wall" "$status" <<'PY'
import json, platform, sys, datetime
out, minutes, wall, status = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
stats = json.load(open(f"{out}/stats.json"))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
lines = [f"# Fuzz run, {datetime.date.today()}", "",
         f"`FUZZ_MINUTES={sys.argv[2]} benchmarks/fuzz.sh` on {cpu}; {wall} s wall in all (fixtures included); "
         f"pytest exit {status}.", "", "| target | cases tried | finding |", "|---|---:|---|"]
for target, cases in stats["cases"].items():
    lines.append(f"| {target} | {cases} | {stats['findings'].get(target, 'none')} |")
lines.append(f"| **all** | **{sum(stats['cases'].values())}** | {len(stats['findings'])} target(s) with a finding |")
open(f"{out}/summary.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
fi
if [[ $LANGS == *" node "* ]]; then
  seed=${FUZZ_SEED:-10}
  (cd export/node && KDEDGE_FUZZ_SEED=$seed node --test --test-name-pattern="${FUZZ_JS_TARGETS:-.}" \
    test/fuzz.test.js) > "$OUT/node.log" 2>&1
  node_status=$?
  # each JS target prints "# NAME: {"cases":N,...}"
  { echo; echo "JavaScript, seed $seed, $MINUTES minutes a target; node exit $node_status:"; echo
    echo "| target | cases tried |"; echo "|---|---:|"
    sed -n 's/^# \([^:]*\): {"cases":\([0-9]*\).*/| \1 | \2 |/p' "$OUT/node.log"; } | tee -a "$OUT/summary.md"
  [ "$node_status" = 0 ] || status=$node_status
fi
exit $status
