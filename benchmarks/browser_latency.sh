#!/usr/bin/env bash
# Issue #18: the students in the browser, next to the Python and Node runtimes. For the GloVe BiLSTM and the best
# small transformer (pruned-2l-128-long, seed 42 of the frontier's round 2), fp32 and int8 bundles: cold start (page
# load to first prediction; process launch to first prediction for Python and Node) and per-call p50/p99 of
# predict() on the 872 SST-2 dev sentences one at a time, all runtimes at 1 thread, with the model-only latency of the
# same bundles from the round-2 `kdedge bench` report; a screenshot of the demo page. Needs the frontier's bundles
# (benchmarks/sst2_frontier.sh), export/node and export/web installed and built, and Debian's chromium.
# Usage: bash benchmarks/browser_latency.sh [RUN_DIR]
. "$(dirname "$0")/lib.sh"
{
RUN=${1:-benchmarks/runs/sst2}
RES=${RES:-benchmarks/results/browser}
REPORT=benchmarks/results/sst2_frontier_r2/sst2/report.json
mkdir -p "$RES"
npm run build --prefix export/web > /dev/null
for b in bilstm-glove-s42-fp32 bilstm-glove-s42-int8 pruned-2l-128-long-s42-fp32 pruned-2l-128-long-s42-int8; do
  extra=(); [ "$b" = bilstm-glove-s42-int8 ] && extra=(--screenshot "$RES/demo.png")
  python benchmarks/runtime_latency.py "$RUN/frontier-bundles/$b" --runtimes python,node,browser --threads 1 \
    --bench-report "$REPORT" "${extra[@]}" > "$RES/$b.json"
  echo "$b: done"
done
kdedge doctor > "$RES/doctor.txt"
python benchmarks/collect_latency.py "$RES"/*.json > "$RES/summary.md"
cat "$RES/summary.md"
exit
}
