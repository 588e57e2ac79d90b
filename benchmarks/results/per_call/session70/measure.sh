#!/usr/bin/env bash
# Session 70's Node measurements: predict() of one text against the model's run (export/node/tools/overhead.js), the
# core of git REV (before) against the working tree's (after), back to back, twice; then pieces.mjs on one bundle,
# before and after. Run from the repository root with export/node's packages installed from this tree (npm ci), the
# machine otherwise idle. Usage: bash benchmarks/results/per_call/session70/measure.sh REV DATA.tsv BUNDLE...
set -euo pipefail
rev=$1 data=$2; shift 2
out=benchmarks/results/per_call/session70
diff -r export/core/src export/node/node_modules/kdedge-runtime-core/src > /dev/null \
  || { echo "export/node/node_modules holds another core than export/core: run npm ci in export/node" >&2; exit 1; }
old=$(realpath "$(mktemp -d export/node/.core-XXXX)")  # under export/node, so that its imports resolve to export/node's packages
trap 'rm -rf "$old"' EXIT
for f in $(git ls-tree --name-only "$rev" export/core/src/); do git show "$rev:$f" > "$old/${f##*/}"; done
bundles=(); for b in "$@"; do bundles+=("$(realpath "$b")"); done
data=$(realpath "$data")
for run in 1 2; do
  echo "== run $run, before ($rev's core)"
  (cd export/node && node tools/overhead.js --data "$data" --seconds 4 --threads 1 --core "$old/index.js" "${bundles[@]}")
  echo "== run $run, after (this tree's core)"
  (cd export/node && node tools/overhead.js --data "$data" --seconds 4 --threads 1 "${bundles[@]}")
done | tee "$out/node_overhead.txt"
{
  echo "== before ($rev's core)"
  node "$out/pieces.mjs" "$data" "${bundles[0]}" "$old/index.js"
  echo "== after (this tree's core)"
  node "$out/pieces.mjs" "$data" "${bundles[0]}"
} | tee "$out/pieces.txt"
