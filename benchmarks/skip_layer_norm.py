"""ONNX Runtime's SkipLayerNormalization fusion on the CPU, measured: why kdedge_runtime.session turns it off.

1. The node alone: SkipLayerNormalization against the Add, Add and LayerNormalization it replaces, on batch-1
   tensors of the frontier's widths (ONNX Runtime's graph optimizations off, so each graph runs as written).
2. Whole bundles: each bundle's p50 at batch 1 on real SST-2 dev sentences, with ONNX Runtime's default session
   options (it fuses) and with kdedge_runtime's (`session_options`: it does not); rounds interleaved, 1 thread.
   A bundle exported with kdedge's transformer optimizer before the change has the fusion baked in: export it again.

Writes OUT/results.json and OUT/report.md. Run it with the machine otherwise idle.
Usage: python benchmarks/skip_layer_norm.py --out DIR [--data GLUE/SST-2/dev.tsv] [--rounds 5] BUNDLE...
"""

import argparse
import itertools
import json
import statistics
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from kdedge.bench.environment import environment
from kdedge_runtime import Classifier
from kdedge_runtime.session import session_options
from kdedge_runtime.timing import measure, summarize

CPU = ["CPUExecutionProvider"]
NODE_SHAPES = [(24, 128), (24, 192), (24, 384), (64, 384)]  # (tokens, hidden): SST-2's median length is about 24


def node_graph(fused: bool, hidden: int) -> bytes:
    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.standard_normal(hidden).astype(np.float32), n) for n in ("gamma", "beta", "bias")]
    if fused:
        nodes = [helper.make_node("SkipLayerNormalization", ["x", "skip", "gamma", "beta", "bias"], ["y"],
                                  domain="com.microsoft", epsilon=1e-12)]
    else:
        nodes = [helper.make_node("Add", ["x", "bias"], ["xb"]), helper.make_node("Add", ["xb", "skip"], ["sum"]),
                 helper.make_node("LayerNormalization", ["sum", "gamma", "beta"], ["y"], axis=-1, epsilon=1e-12)]
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, "tokens", hidden]) for n in ("x", "skip")]
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "tokens", hidden])
    graph = helper.make_graph(nodes, "skip_layer_norm", inputs, [output], weights)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(graph, opset_imports=opsets).SerializeToString()


def node_rows(rounds: int) -> list[dict]:
    rows = []
    for tokens, hidden in NODE_SHAPES:
        rng = np.random.default_rng(1)
        feed = {n: rng.standard_normal((1, tokens, hidden)).astype(np.float32) for n in ("x", "skip")}
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sessions = {f: ort.InferenceSession(node_graph(f, hidden), options, providers=CPU) for f in (True, False)}
        outputs = {f: s.run(None, feed)[0] for f, s in sessions.items()}
        times = {f: [] for f in sessions}
        for _ in range(rounds):
            for fused, session in sessions.items():
                calls = measure(lambda: session.run(None, feed), warmup=200, min_runs=2000, min_time=0, max_runs=2000)
                times[fused].append(summarize(calls, 1)["mean_ms"] * 1e3)
        rows.append({"tokens": tokens, "hidden": hidden, "fused_us": statistics.median(times[True]),
                     "unfused_us": statistics.median(times[False]),
                     "max_abs_diff": float(np.abs(outputs[True] - outputs[False]).max())})
    return rows


def bundle_rows(bundles: list[str], texts: list[str], rounds: int) -> list[dict]:
    settings = {"onnxruntime default": lambda: ort.SessionOptions(), "kdedge_runtime": lambda: session_options(CPU)}
    runs = {}
    for bundle in bundles:
        clf = Classifier(bundle)
        encoded = clf.encode(texts, None)
        feeds = [clf.pad([{k: v[i] for k, v in encoded.items() if k != "lengths"}]) for i in range(len(texts))]
        for name, make in settings.items():
            options = make()
            options.intra_op_num_threads = 1
            session = ort.InferenceSession(str(Path(bundle) / "model.onnx"), options, providers=CPU)
            runs[bundle, name] = (session, feeds)
    p50 = {key: [] for key in runs}
    for _ in range(rounds):
        for key, (session, feeds) in runs.items():
            batches = itertools.cycle(feeds)  # every sentence once per round, after 20 untimed
            calls = measure(lambda: session.run(["logits"], next(batches)), warmup=20, min_runs=len(feeds),
                            min_time=0, max_runs=len(feeds))
            p50[key].append(summarize(calls, 1)["p50_ms"])
    rows = []
    for bundle in bundles:
        logits = [np.concatenate([s.run(["logits"], f)[0] for f in feeds[:100]]) for s, feeds in (runs[bundle, n] for n in settings)]
        rows.append({"bundle": bundle, "p50_ms_default": statistics.median(p50[bundle, "onnxruntime default"]),
                     "p50_ms_kdedge": statistics.median(p50[bundle, "kdedge_runtime"]),
                     "rounds_default": p50[bundle, "onnxruntime default"], "rounds_kdedge": p50[bundle, "kdedge_runtime"],
                     "max_abs_logit_diff": float(np.abs(logits[0] - logits[1]).max())})
    return rows


def markdown(results: dict) -> str:
    lines = ["| tokens × hidden | SkipLayerNormalization µs | Add, Add, LayerNormalization µs | ratio | max abs diff |",
             "|---|---:|---:|---:|---:|"]
    for r in results["node"]:
        lines.append(f"| {r['tokens']} × {r['hidden']} | {r['fused_us']:.1f} | {r['unfused_us']:.1f} | "
                     f"{r['fused_us'] / r['unfused_us']:.2f} | {r['max_abs_diff']:.1e} |")
    lines += ["", "| bundle | p50 ms, onnxruntime's default options | p50 ms, kdedge_runtime's | speed-up | max abs logit diff |",
              "|---|---:|---:|---:|---:|"]
    for r in results["bundles"]:
        lines.append(f"| {r['bundle']} | {r['p50_ms_default']:.3f} | {r['p50_ms_kdedge']:.3f} | "
                     f"{r['p50_ms_default'] / r['p50_ms_kdedge']:.2f}× | {r['max_abs_logit_diff']:.1e} |")
    env = results["environment"]
    lines += ["", f"CPU: {env['cpu']['model']}; onnxruntime {ort.__version__}; 1 thread; "
              f"{results['texts']} SST-2 dev sentences, batch 1; median of {results['rounds']} rounds."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("bundles", nargs="*")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--data", default="../shared/data/glue/SST-2/dev.tsv")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    texts = [line.split("\t")[0] for line in Path(args.data).read_text().splitlines()[1:]]
    results = {"environment": environment(), "rounds": args.rounds, "texts": len(texts),
               "node": node_rows(args.rounds), "bundles": bundle_rows(args.bundles, texts, args.rounds)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "report.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
