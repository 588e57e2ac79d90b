"""The tools a user picks instead of kdedge at the fast end, measured beside kdedge's bundles (issue 49).

Peers (PEERS; their own venv, benchmarks/peers-requirements.txt):
  - fasttext: fastText supervised (Joulin et al. 2017): word unigrams and bigrams hashed into 200,000 buckets, 50
    dimensions, lr 0.5, 10 epochs, one thread, then quantize()d to a .ftz as fastText's own docs advise for small
    models (cutoff 100,000 features, retrain);
  - model2vec: static token embeddings distilled from the teacher's backbone (Tulkens & van Dongen 2024, PCA to 256
    dimensions), then model2vec's own classifier (one 512-wide hidden layer) trained on the same rows, run as its
    deployable pipeline.
Each is trained on the task's labelled rows (`gold`) and, with --transfer, on kdedge's transfer set with the
teacher's labels (`transfer`: the same text kdedge's students learn from, which these tools cannot distil from).

kdedge's bundles (--bundle) are measured the same way through kdedge_runtime: accuracy on the dev set and on the
out-of-domain set (--ood), size on disk, and the time an app sees per call, text in and label out (tokenization
included, one sentence per call, one thread, cycling through the dev sentences): p50 of MEASURE. For bundles the
model's own run in ONNX Runtime (the feed tokenized beforehand) is measured too, as `kdedge bench` measures it. Where
the runtime runs a bundle's model in its compiled code (the n-gram student's: kdedge_runtime/ngram_model.py), the row
also has that run (`compiled_model_ms`) and the call with every model in ONNX Runtime (`per_call_onnxruntime_ms`).

Usage: .venv-peers/bin/python benchmarks/peers.py --train TRAIN.tsv --dev DEV.tsv --ood IMDB.tsv \
           [--transfer DIR] [--bundle DIR ...] [--seeds 42,43,44] --out rows.json
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):  # one thread, before NumPy loads
    os.environ[_var] = "1"

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402
from kdedge_runtime import Classifier  # noqa: E402
from kdedge_runtime.cpu import cpu_name, describe  # noqa: E402
from kdedge_runtime.data import read_labelled  # noqa: E402
from kdedge_runtime.timing import measure, summarize  # noqa: E402

MEASURE = dict(warmup=200, min_runs=3000, min_time=2.0, max_runs=100_000)
BACKBONE = "sentence-transformers/all-MiniLM-L6-v2"  # the SST-2 teacher's backbone (configs/sst2-teacher.yaml)


@dataclass
class Labelled:
    texts: list[str]
    labels: list[str]


@dataclass
class Trained:
    """What a row needs from a trained model: its labels for many texts, one call as an app makes it, its size."""

    predict: Callable[[list[str]], list[str]]
    call: Callable[[str], str]
    size_mb: float
    model_ms: float | None = None  # the model's run in ONNX Runtime, for kdedge's bundles
    extra: dict = field(default_factory=dict)  # more figures of a row (a compiled model's)


def folder_mb(path: Path) -> float:
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    return sum(f.stat().st_size for f in files) / 1e6


def read_tsv(path: Path) -> Labelled:
    """A GLUE-style file (sentence, label: 0/1)."""
    texts, _, labels = read_labelled(path, ["sentence", "label"], True, ["0", "1"])
    return Labelled(texts, [str(label) for label in labels])


def read_transfer(folder: Path) -> Labelled:
    """kdedge's transfer set: every row's text with the teacher's label (the argmax of its stored logits)."""
    import pyarrow.parquet as pq

    texts, labels = [], []
    for shard in sorted(folder.glob("*.parquet")):
        table = pq.read_table(shard, columns=["text", "logits"]).to_pydict()
        texts += table["text"]
        labels += [str(int(np.argmax(row))) for row in table["logits"]]
    if not texts:
        raise SystemExit(f"--transfer {folder}: no Parquet shards (a folder from `kdedge augment`)")
    return Labelled(texts, labels)


def fasttext_line(text: str) -> str:
    """fastText reads whitespace-separated tokens, one example a line: lowercase, newlines out (its README's
    preprocessing; SST-2 is tokenized already, IMDB text is not, and gets the same treatment as an app would give)."""
    return " ".join(text.lower().split())


def train_fasttext(data: Labelled, seed: int, work: Path) -> Trained:
    import fasttext

    corpus = work / "train.txt"
    corpus.write_text("".join(f"__label__{y} {fasttext_line(t)}\n" for t, y in zip(data.texts, data.labels)))
    model = fasttext.train_supervised(str(corpus), lr=0.5, dim=50, epoch=10, wordNgrams=2, bucket=200_000,
                                      minCount=1, thread=1, seed=seed, verbose=0)
    model.quantize(input=str(corpus), qnorm=True, retrain=True, cutoff=100_000, thread=1, verbose=0)
    path = work / "model.ftz"
    model.save_model(str(path))

    def call(text: str) -> str:
        return model.predict(fasttext_line(text))[0][0].removeprefix("__label__")

    return Trained(lambda texts: [call(t) for t in texts], call, folder_mb(path))


def train_model2vec(data: Labelled, seed: int, work: Path) -> Trained:
    from model2vec.distill import distill
    from model2vec.train import StaticModelForClassification

    static = distill(BACKBONE, pca_dims=256, device="cpu")
    classifier = StaticModelForClassification.from_static_model(model=static, out_dim=len(set(data.labels)))
    classifier.fit(data.texts, data.labels, random_seed=seed, device="cpu")
    pipeline = classifier.to_pipeline()
    pipeline.save_pretrained(str(work / "pipeline"))

    def predict(texts: list[str]) -> list[str]:
        return [str(y) for y in pipeline.predict(texts)]

    return Trained(predict, lambda text: str(pipeline.predict([text])[0]), folder_mb(work / "pipeline"))


PEERS: dict[str, Callable[[Labelled, int, Path], Trained]] = {"fasttext": train_fasttext, "model2vec": train_model2vec}


def kdedge_bundle(path: Path, dev: list[str]) -> Trained:
    classifier = Classifier(path, threads=1)
    names = classifier.labels  # the bundle's label names, in the task's order: 0/1 in the GLUE files
    index = {name: str(i) for i, name in enumerate(names)}

    def predict(texts: list[str]) -> list[str]:
        return [index[p.label] for p in classifier.predict(texts, batch_size=1)]  # int8 is scored one at a time

    encoded = classifier.encode(dev, None)
    feeds = [classifier.pad([{k: encoded[k][i] for k in classifier.input_names}]) for i in range(len(dev))]

    def p50_ms(run) -> float:
        cycle = itertools.cycle(feeds)
        return summarize(measure(lambda: run(next(cycle)), **MEASURE), 1)["p50_ms"]

    model_ms = p50_ms(lambda feed: classifier.session.run(["logits"], feed))  # as `kdedge bench` times the model
    extra = {}
    if classifier.compiled:  # the n-gram student's model in the runtime's compiled code: its run, and a call without it
        plain = Classifier(path, threads=1, compiled=False)
        extra = {"compiled_model_ms": p50_ms(classifier.run_batch),
                 "per_call_onnxruntime_ms": per_call_ms(lambda text: index[plain.predict(text).label], dev)}
    return Trained(predict, lambda text: index[classifier.predict(text).label], folder_mb(path), model_ms, extra)


def per_call_ms(call: Callable[[str], str], texts: list[str]) -> float:
    cycle = itertools.cycle(texts)
    return summarize(measure(lambda: call(next(cycle)), **MEASURE), 1)["p50_ms"]


def accuracy(model: Trained, data: Labelled) -> float:
    return float(np.mean([p == y for p, y in zip(model.predict(data.texts), data.labels)]))


def row(name: str, kind: str, seed: int | None, trained_on: str, model: Trained, dev: Labelled, ood: Labelled,
        train_s: float | None = None) -> dict:
    return {"name": name, "kind": kind, "seed": seed, "trained_on": trained_on, "sst2_acc": accuracy(model, dev),
            "imdb_acc": accuracy(model, ood), "size_mb": round(model.size_mb, 3),
            "per_call_ms": per_call_ms(model.call, dev.texts), "model_ms": model.model_ms,
            "train_s": None if train_s is None else round(train_s, 1), **model.extra}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, required=True, help="the task's labelled training rows (TSV)")
    parser.add_argument("--dev", type=Path, required=True, help="the in-domain dev set (TSV)")
    parser.add_argument("--ood", type=Path, required=True, help="the out-of-domain set (TSV), e.g. the IMDB sample")
    parser.add_argument("--transfer", type=Path, help="kdedge's transfer set: the peers trained on it too")
    parser.add_argument("--bundle", type=Path, action="append", default=[], help="a kdedge bundle to measure")
    parser.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated, of {', '.join(PEERS)}")
    parser.add_argument("--seeds", default="42,43,44")
    parser.add_argument("--out", type=Path, required=True, help="JSON file of rows (rewritten after every row)")
    args = parser.parse_args(argv)

    dev, ood = read_tsv(args.dev), read_tsv(args.ood)
    sets = {"gold": read_tsv(args.train)}
    if args.transfer:
        sets["transfer"] = read_transfer(args.transfer)
    done = json.loads(args.out.read_text())["rows"] if args.out.is_file() else []  # resumes row by row
    key = lambda r: (r["name"], r["seed"], r["trained_on"])  # noqa: E731
    seen = {key(r) for r in done}
    meta = {"command": "python benchmarks/peers.py " + " ".join(argv or sys.argv[1:]),
            "cpu": cpu_name(describe()),
            "python": platform.python_version(), "threads": 1, "measure": MEASURE}

    def save(new: dict) -> None:
        done.append(new)
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps({**meta, "rows": done}, indent=1))
        os.replace(tmp, args.out)
        print(json.dumps(new), flush=True)

    for bundle in args.bundle:
        if (bundle.name, None, "kdedge") not in seen:
            save(row(bundle.name, "kdedge", None, "kdedge", kdedge_bundle(bundle, dev.texts), dev, ood))
    for name, (trained_on, data), seed in itertools.product(args.peers.split(","), sets.items(),
                                                             [int(s) for s in args.seeds.split(",")]):
        if (f"{name}-{trained_on}", seed, trained_on) in seen:
            continue
        with tempfile.TemporaryDirectory() as work:
            t0 = time.time()
            model = PEERS[name](data, seed, Path(work))
            save(row(f"{name}-{trained_on}", "peer", seed, trained_on, model, dev, ood, time.time() - t0))


if __name__ == "__main__":
    main()
