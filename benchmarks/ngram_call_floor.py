"""The least a Python call of an n-gram bundle can cost (issue 49): each piece of `Classifier.predict(text)` timed
alone, and the least code that still does the job (the compiled ids, a NumPy view, ONNX Runtime's `run`, the decoded
Prediction), so that the gap between predict() and the model's run can be split into what code could still save and
what any Python call pays. Best of 7 repeats of N calls each, cycling through the file's ASCII texts (the compiled
path's input), one thread.

Usage: python benchmarks/ngram_call_floor.py BUNDLE --texts dev.tsv [--calls 20000]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import itertools  # noqa: E402
import timeit  # noqa: E402

import numpy as np  # noqa: E402
from kdedge_runtime import Classifier  # noqa: E402
from kdedge_runtime.cpu import cpu_name, describe  # noqa: E402
from kdedge_runtime.data import read_labelled  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle")
    parser.add_argument("--texts", required=True, help="a GLUE-style TSV (sentence, label 0/1), e.g. SST-2 dev")
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    classifier = Classifier(args.bundle, threads=1)
    tokenizer, session = classifier._words, classifier.session
    if getattr(tokenizer, "_ascii", None) is None:
        raise SystemExit(f"{args.bundle}: not an n-gram bundle with the compiled tokenizer built")
    texts = [t for t in read_labelled(args.texts, ["sentence", "label"], True, ["0", "1"])[0] if t.isascii()]
    compiled, max_words = tokenizer._ascii, tokenizer.max_words
    feeds = itertools.cycle([{"input_ids": tokenizer.row(t)} for t in texts])
    logits = itertools.cycle([classifier.run_batch(next(feeds)) for _ in texts])
    cycle = itertools.cycle(texts)

    def least(text: str, run=session.run):
        ids = np.frombuffer(compiled.ids(text, max_words), np.int64)[None]
        return classifier._decode(run(["logits"], {"input_ids": ids})[0].tolist()[0])

    pieces = {
        "predict(text)": lambda: classifier.predict(next(cycle)),
        "the ids and the feed (row)": lambda: tokenizer.row(next(cycle)),
        "the compiled ids alone": lambda: compiled.ids(next(cycle), max_words),
        "session.run (the model run)": lambda: session.run(["logits"], next(feeds)),
        "session._sess.run (no input check)": lambda: session._sess.run(["logits"], next(feeds), None),
        "decoding": lambda: classifier._decode(next(logits).tolist()[0]),
        "the least code": lambda: least(next(cycle)),
        "the least code through _sess.run": lambda: least(next(cycle), lambda o, f: session._sess.run(o, f, None)),
    }
    print(f"{cpu_name(describe())}; {len(texts)} ASCII texts; best of 7 x {args.calls} calls")
    for name, call in pieces.items():
        print(f"{name}: {min(timeit.repeat(call, number=args.calls, repeat=7)) / args.calls * 1e6:.1f} us")


if __name__ == "__main__":
    main()
