#!/usr/bin/env bash
# Session 69: the compiled n-gram model (_ngram_modelc.c) built three ways, Model.one timed on one SST-2 sentence
# repeated (best of 5 runs of 100,000), round 6's -negbut s42 bundle. Run from the repo root, machine idle, in .venv.
# Measured: -O3 1.54 µs, -O3 -march=x86-64-v3 (AVX2, FMA) 1.42 µs, -O3 -march=x86-64-v4 (AVX-512) 1.59 µs.
set -euo pipefail
root=$PWD work=$(mktemp -d)
cp export/python/kdedge_runtime/_ngram_modelc.c "$work"
cd "$work"
for flags in "-O3" "-O3 -march=x86-64-v3" "-O3 -march=x86-64-v4"; do
  # shellcheck disable=SC2086  # the flags are words
  gcc -shared -fPIC $flags $(python3-config --includes) _ngram_modelc.c -o "_ngram_modelc$(python3-config --extension-suffix)"
  FLAGS=$flags ROOT=$root python - <<'PY'
import os, sys, timeit
sys.path.insert(0, ".")
import _ngram_modelc
import onnx
from kdedge_runtime import Classifier, ngram_model
bundle = os.path.join(os.environ["ROOT"], "benchmarks/runs/sst2/fast-end-bundles/ngram-long-e4-negbut-imdb-v8-s42-int8")
model = _ngram_modelc.Model(*ngram_model._match(onnx.load(os.path.join(bundle, "model.onnx")).graph))
ids = Classifier(bundle).tokenizer.packed("it is a charming and often affecting journey , not a dull moment in the whole film .")
print(os.environ["FLAGS"], round(min(timeit.repeat(lambda: model.one(ids), number=100000, repeat=5)) / 100000 * 1e6, 2), "µs")
PY
done
rm -rf "$work"
