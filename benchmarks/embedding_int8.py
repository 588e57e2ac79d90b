"""How an int8 bundle stores its embedding tables, measured: ONNX Runtime's uint8 per-tensor tables, kdedge's int8
per-row tables (kdedge.onnx.embeddings), and float tables, everything else the same dynamic int8.

For each fp32 bundle (an `kdedge export` without --quantize, --optimize or not), the three int8 graphs are made from
its model.onnx with the preset of this CPU and compared with the fp32 graph:
- fidelity on SST-2 training sentences (a seeded sample, so nothing is chosen on dev): mean |logit - fp32 logit| and
  how many predictions differ from fp32's;
- SST-2 dev: sentences right, one at a time (as dynamic int8 is scored);
- model.onnx size, and p50 at batch 1 over the dev sentences (1 thread, kdedge_runtime's session options, rounds
  interleaved).

Writes OUT/results.json and OUT/report.md. Time it with the machine otherwise idle.
Usage: python benchmarks/embedding_int8.py --out DIR [--glue GLUE_DIR] [--train-sample 3000] [--rounds 5] FP32_BUNDLE...
"""

import argparse
import csv
import itertools
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort

from kdedge.bench.environment import environment
from kdedge.onnx.quantize import quantize
from kdedge_runtime import Classifier
from kdedge_runtime.cpu import preset_for, read_cpu
from kdedge_runtime.session import session_options
from kdedge_runtime.timing import measure, summarize

CPU = ["CPUExecutionProvider"]
SCHEMES = {"onnxruntime": "uint8 per-tensor (ONNX Runtime's quantizer)", "rows": "int8 per-row (kdedge)",
           "float": "float"}


def read_tsv(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def feeds(clf: Classifier, texts: list[str]) -> list[dict]:
    encoded = clf.encode(texts, None)
    return [clf.pad([{k: v[i] for k, v in encoded.items() if k != "lengths"}]) for i in range(len(texts))]


def logits(session: ort.InferenceSession, inputs: list[dict]) -> np.ndarray:
    return np.concatenate([session.run(["logits"], f)[0] for f in inputs])


def bundle_rows(bundle: Path, train: list[str], dev: list[str], labels: np.ndarray, rounds: int, work: Path) -> list[dict]:
    clf = Classifier(bundle)
    preset = preset_for(*read_cpu())
    models = {"fp32": bundle / "model.onnx"}
    for scheme in SCHEMES:
        models[scheme] = work / f"{bundle.name}-{scheme}.onnx"
        quantize("dynamic", bundle / "model.onnx", models[scheme], architecture=clf.manifest["architecture"],
                 preset=preset, embeddings=scheme)
    options = session_options(CPU, 1)
    sessions = {name: ort.InferenceSession(str(path), options, providers=CPU) for name, path in models.items()}
    train_feeds, dev_feeds = feeds(clf, train), feeds(clf, dev)
    reference = logits(sessions["fp32"], train_feeds)
    p50 = {name: [] for name in sessions}
    for _ in range(rounds):
        for name, session in sessions.items():
            batches = itertools.cycle(dev_feeds)  # every sentence once per round, after 20 untimed
            calls = measure(lambda: session.run(["logits"], next(batches)), warmup=20, min_runs=len(dev_feeds),
                            min_time=0, max_runs=len(dev_feeds))
            p50[name].append(summarize(calls, 1)["p50_ms"])
    rows = []
    for name, session in sessions.items():
        on_train = logits(session, train_feeds)
        rows.append({"bundle": bundle.name, "tables": SCHEMES.get(name, "fp32 model"), "scheme": name,
                     "train_mean_abs_logit_diff": float(np.abs(on_train - reference).mean()),
                     "train_flips": int((on_train.argmax(1) != reference.argmax(1)).sum()),
                     "dev_correct": int((logits(session, dev_feeds).argmax(1) == labels).sum()),
                     "model_mb": models[name].stat().st_size / 1e6, "p50_ms": statistics.median(p50[name]),
                     "rounds_p50_ms": p50[name]})
    return rows


def markdown(results: dict) -> str:
    lines = ["| bundle | embedding tables | mean abs logit diff vs fp32 (train) | predictions unlike fp32 (train) | "
             "dev right | model MB | p50 ms |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in results["rows"]:
        lines.append(f"| {r['bundle']} | {r['tables']} | {r['train_mean_abs_logit_diff']:.4f} | {r['train_flips']} | "
                     f"{r['dev_correct']} / {results['dev']} | {r['model_mb']:.2f} | {r['p50_ms']:.3f} |")
    totals = {}
    for r in results["rows"]:
        totals.setdefault(r["scheme"], [0, 0])
        totals[r["scheme"]][0] += r["dev_correct"]
        totals[r["scheme"]][1] += r["train_flips"]
    lines += ["", "| embedding tables | dev right, all bundles | predictions unlike fp32 (train), all bundles |",
              "|---|---:|---:|"]
    lines += [f"| {SCHEMES.get(s, 'fp32 model')} | {d} | {f} |" for s, (d, f) in totals.items()]
    env = results["environment"]
    lines += ["", f"CPU: {env['cpu']['model']}; preset {results['preset']}; onnxruntime {ort.__version__}; 1 thread; "
              f"{results['train']} SST-2 training sentences (seed 0) for fidelity; p50 over the {results['dev']} dev "
              f"sentences at batch 1, median of {results['rounds']} interleaved rounds."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("bundles", nargs="+", type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--glue", default="../shared/data/glue", type=Path)
    parser.add_argument("--train-sample", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    dev_rows, train_rows = read_tsv(args.glue / "SST-2" / "dev.tsv"), read_tsv(args.glue / "SST-2" / "train.tsv")
    picked = np.random.default_rng(0).choice(len(train_rows), args.train_sample, replace=False)
    train = [train_rows[i]["sentence"] for i in picked]
    dev, labels = [r["sentence"] for r in dev_rows], np.array([int(r["label"]) for r in dev_rows])
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for bundle in args.bundles:
            rows += bundle_rows(bundle, train, dev, labels, args.rounds, Path(work))
    results = {"environment": environment(), "preset": preset_for(*read_cpu()), "rounds": args.rounds,
               "train": len(train), "dev": len(dev), "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "report.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
