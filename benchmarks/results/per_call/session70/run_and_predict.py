"""One n-gram bundle's compiled model run (Classifier.run_batch on feeds built beforehand: what the device bench times
as the model's run) and one-text predict(), in µs a call, best of 15 passes over the data's ASCII sentences.

Usage: python run_and_predict.py BUNDLE DATA.tsv (the runtime is whichever kdedge_runtime PYTHONPATH finds first)
"""
import csv
import sys
import timeit

import numpy as np
from kdedge_runtime import Classifier

classifier = Classifier(sys.argv[1], threads=1)
with open(sys.argv[2], newline="") as f:
    texts = [row[0] for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)][1:]
texts = [t for t in texts if t.isascii() and classifier.tokenizer.packed(t)]
feeds = [{"input_ids": np.frombuffer(classifier.tokenizer.packed(t), dtype=np.int64)[None]} for t in texts]


def best(step) -> float:
    return min(timeit.repeat(step, number=1, repeat=15)) / len(texts) * 1e6


run = best(lambda: [classifier.run_batch(feed) for feed in feeds])
call = best(lambda: [classifier.predict(text) for text in texts])
print(f"run_batch {run:.2f} µs, predict {call:.2f} µs, ratio {call / run:.3f}")
