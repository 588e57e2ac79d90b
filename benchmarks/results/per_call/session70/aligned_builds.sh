#!/usr/bin/env bash
# Whether the compiled model's own run differs between the runtime of git REV and this tree's (the model's C is the
# same; only Predictor was added): both runtimes built as pip builds them, and both with their model extension
# compiled again with functions and loops aligned to 64 bytes, so that code layout is not the difference. Each
# variant's run_batch (the model's run, as the device bench times it) and predict(), best of 15 passes over the
# texts, three rounds. Run from the repository root in the project's venv, the machine otherwise idle.
# Usage: bash benchmarks/results/per_call/session70/aligned_builds.sh REV DATA.tsv BUNDLE
set -euo pipefail
rev=$1 data=$2 bundle=$3
here=$(dirname "$0")
tmp=$(mktemp -d)
trap 'git worktree remove --force "$tmp/tree"; rm -rf "$tmp"' EXIT
git worktree add -q --detach "$tmp/tree" "$rev"
inc=$(python -c "import sysconfig; print(sysconfig.get_paths()['include'])")
cflags=$(python -c "import sysconfig; print(sysconfig.get_config_var('CFLAGS'))")
so=kdedge_runtime/_ngram_modelc$(python -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")
for side in old new; do
  src=$([ $side = old ] && echo "$tmp/tree" || echo .)
  pip wheel -q --no-deps --no-build-isolation -w "$tmp/wheel-$side" "$src" > /dev/null
  (cd "$tmp/wheel-$side" && python -m zipfile -e ./*.whl "$tmp/$side")
  cp -r "$tmp/$side" "$tmp/$side-aligned"
  # shellcheck disable=SC2086  # the interpreter's own flags are words
  gcc $cflags -fPIC -shared -I"$inc" -falign-functions=64 -falign-loops=64 \
    "$src/export/python/kdedge_runtime/_ngram_modelc.c" -o "$tmp/$side-aligned/$so" -lm
done
for round in 1 2 3; do
  for variant in old new old-aligned new-aligned; do
    echo "round $round, $variant: $(PYTHONPATH=$tmp/$variant python "$here/run_and_predict.py" "$bundle" "$data")"
  done
done
