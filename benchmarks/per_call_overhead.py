"""Where a predict() call's time goes in kdedge_runtime (issue 49): per bundle, one thread, cycling through the
sentences of a file, the p50 of
  - model:   the model's own run on a feed tokenized beforehand (what `kdedge bench` times),
  - predict: Classifier.predict(text), text in and label out (what an app sees),
  - tokenize: the tokenizers library's encode of the text alone,
and predict / model. Run it with another kdedge_runtime first on PYTHONPATH to compare two versions on one machine
in one sitting (e.g. a `git worktree` of an older commit: PYTHONPATH=../old/export/python).

Usage: python benchmarks/per_call_overhead.py BUNDLE [...] --texts dev.tsv [--text-column C] [--pair-column C]
       [--out result.json]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import kdedge_runtime  # noqa: E402
from kdedge_runtime import Classifier  # noqa: E402
from kdedge_runtime.cpu import cpu_name, describe  # noqa: E402
from kdedge_runtime.timing import measure, summarize  # noqa: E402

TIMING = dict(warmup=100, min_runs=3000, min_time=2.0, max_runs=50_000)


def p50_us(run) -> float:
    return summarize(measure(run, **TIMING), 1)["p50_ms"] * 1000


def measure_bundle(path: Path, texts: list[str], second: list[str] | None = None) -> dict:
    classifier = Classifier(path, threads=1)
    # a pair task reads two real sentences: the file's second column, or else the texts in reverse order
    pairs = (second or texts[::-1]) if classifier.is_pair else [None] * len(texts)
    examples = list(zip(texts, pairs))
    encoded = classifier.encode(texts, None if pairs[0] is None else pairs)
    feeds = itertools.cycle([classifier.pad([{k: encoded[k][i] for k in classifier.input_names}])
                             for i in range(len(texts))])
    calls, encodes = itertools.cycle(examples), itertools.cycle(examples)

    def tokenize() -> None:  # the batch path's tokenizer call, for one example
        text, pair = next(encodes)
        classifier.encode([text], None if pair is None else [pair])

    row = {"bundle": path.name, "architecture": classifier.manifest.get("architecture"),
           "model_us": p50_us(lambda: classifier.run_batch(next(feeds))),
           "predict_us": p50_us(lambda: classifier.predict(*next(calls))), "tokenize_us": p50_us(tokenize)}
    row["predict_over_model"] = row["predict_us"] / row["model_us"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundles", nargs="+", type=Path)
    parser.add_argument("--texts", type=Path, required=True, help="a TSV with a header row")
    parser.add_argument("--text-column", help="the column of the texts (default: the first)")
    parser.add_argument("--pair-column", help="a pair task's second texts (default: the texts in reverse order)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    header, *lines = [line.split("\t") for line in args.texts.read_text(encoding="utf-8").splitlines()]
    column = {name: i for i, name in enumerate(header)}
    for name in filter(None, (args.text_column, args.pair_column)):
        if name not in column:
            parser.error(f"{args.texts} has no column {name!r}; its header: {', '.join(header)}")
    texts = [cells[column[args.text_column] if args.text_column else 0] for cells in lines]
    second = [cells[column[args.pair_column]] for cells in lines] if args.pair_column else None
    result = {"runtime": str(Path(kdedge_runtime.__file__).parent), "cpu": cpu_name(describe()), "threads": 1,
              "texts": str(args.texts), "columns": [args.text_column, args.pair_column],
              "rows": [measure_bundle(b, texts, second) for b in args.bundles]}
    for r in result["rows"]:
        print(f"{r['bundle']:24s} model {r['model_us']:8.1f} µs  predict {r['predict_us']:8.1f} µs  "
              f"({r['predict_over_model']:.2f}x)  tokenize {r['tokenize_us']:6.1f} µs")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
