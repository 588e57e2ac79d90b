"""Each piece of an n-gram bundle's one-text predict() timed alone (session 69): the compiled tokenizer's ids, the
compiled model's top(), one() and run_batch(), predict() itself; each cycling through the dev set's ASCII sentences
(best of 9 passes), and the tokenizer and tokenizer + model on each of 300 sentences repeated (tables in cache).

It times the runtime of its session (git af96cda): `Model.top` was removed in session 70, whose
per_call/session70/ scripts time the path that replaced it.

Usage (repo root, machine idle): python benchmarks/results/per_call/session69/pieces.py BUNDLE SST-2/dev.tsv
"""
import csv
import statistics
import sys
import timeit

import numpy as np
from kdedge_runtime import Classifier

clf = Classifier(sys.argv[1], threads=1)
with open(sys.argv[2], newline="") as f:
    texts = [row[0] for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)][1:]
ids, max_words, model = clf.tokenizer.ascii_ids, clf.tokenizer.max_words, clf._compiled
texts = [t for t in texts if t.isascii() and ids(t, max_words)]  # the compiled path's inputs
packed = [ids(t, max_words) for t in texts]
feeds = [{"input_ids": np.frombuffer(p, dtype=np.int64)[None]} for p in packed]


def cycling(step, passes=9):
    """µs a call, best of `passes` passes over the texts."""
    return min(timeit.repeat(step, number=1, repeat=passes)) / len(texts) * 1e6


def repeated(call, n=200):
    return min(timeit.repeat(call, number=n, repeat=3)) / n * 1e6


print(f"{len(texts)} sentences; µs a call, cycling through them:")
print(f"  predict {cycling(lambda: [clf.predict(t) for t in texts]):.2f}")
print(f"  run_batch (the model's run the device bench times) {cycling(lambda: [clf.run_batch(f) for f in feeds]):.2f}")
print(f"  tokenizer ids {cycling(lambda: [ids(t, max_words) for t in texts]):.2f}")
print(f"  model top {cycling(lambda: [model.top(p) for p in packed]):.2f}, one {cycling(lambda: [model.one(p) for p in packed]):.2f}")
sample = texts[:300]
print("each of 300 sentences repeated, mean:")
print(f"  tokenizer ids {statistics.mean(repeated(lambda: ids(t, max_words)) for t in sample):.2f}")
print(f"  ids + top {statistics.mean(repeated(lambda: model.top(ids(t, max_words))) for t in sample):.2f}")
