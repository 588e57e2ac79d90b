"""Cold start and per-call latency of the embedded runtimes (Python kdedge_runtime, Node kdedge-runtime, the
browser's kdedge-web in headless Chromium) for one bundle, on single SST-2 dev sentences, next to the model-only
latency `kdedge bench` measured.

Cold start = for Python and Node, from launching the process to the first prediction printed (interpreter start,
imports, model load with its sha256 check, tokenizer, first call); for the browser, from navigation start to the
first prediction of a page that imports kdedge-web, fetches the bundle and onnxruntime-web's WebAssembly over
127.0.0.1 (no cache: a first visit) and predicts (export/web/tools/latency.js); median of --repeats. Per-call = one
predict() on one text (tokenize + run + decode), over the dev sentences after a warm-up, in a warm process or page.

Usage: python benchmarks/runtime_latency.py BUNDLE [--bench-report report.json] [--repeats 5] [--texts 872]
         [--threads N] [--runtimes python,node,browser] [--screenshot demo.png]
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NODE = ROOT / "export" / "node"
WEB = ROOT / "export" / "web"

PY_COLD = ("from kdedge_runtime import Classifier; "
           "print(Classifier({bundle!r}, threads={threads!r}).predict('a gorgeous, witty film').label)")
NODE_COLD = ("import('{src}').then(async ({{ Classifier }}) => console.log((await (await Classifier.load({bundle!r}, "
             "{{ intraOpNumThreads: {threads} }})).predict('a gorgeous, witty film')).label))")
PY_CALLS = """
import json, sys, time
t0 = time.perf_counter()
from kdedge_runtime import Classifier
c = Classifier(sys.argv[1], threads=int(sys.argv[2]) or None)
loaded = time.perf_counter()
req = json.load(sys.stdin)
c.predict(req["texts"][0])
first = time.perf_counter()
for i in range(req["warmup"]):
    c.predict(req["texts"][i % len(req["texts"])])
times, logits = [], []
for t in req["texts"]:
    s = time.perf_counter(); p = c.predict(t); times.append((time.perf_counter() - s) * 1000)
    logits.append([float(v) for v in p.logits])
print(json.dumps({"load_ms": (loaded - t0) * 1000, "first_ms": (first - loaded) * 1000, "times_ms": times,
                  "logits": logits}))
"""


def cold_start(command: list[str], repeats: int) -> dict:
    walls = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        walls.append((time.perf_counter() - start) * 1000)
    return {"median_ms": statistics.median(walls), "min_ms": min(walls), "runs": repeats}


def stats(times: list[float]) -> dict:
    p50, p90, p99 = np.percentile(times, [50, 90, 99])
    return {"calls": len(times), "p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "mean_ms": float(np.mean(times))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("--bench-report", help="a kdedge bench report.json with this bundle on ort-cpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--texts", type=int, default=872)
    ap.add_argument("--data-dir", default="../shared/data/glue")
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads in every runtime (0: each one's default)")
    ap.add_argument("--runtimes", default="python,node", help="any of python, node, browser")
    ap.add_argument("--screenshot", help="with the browser: a screenshot of the demo page classifying with BUNDLE")
    args = ap.parse_args()
    bundle = str(Path(args.bundle).resolve())
    dev = Path(args.data_dir) / "SST-2" / "dev.tsv"
    texts = [line.split("\t")[0] for line in dev.read_text().splitlines()[1:]][: args.texts]
    request = json.dumps({"texts": texts, "warmup": 20})
    runtimes = args.runtimes.split(",")
    reference = None  # the Python runtime's logits, one text per call

    def agreement(logits) -> dict:  # another runtime's logits (one text per call) against the Python runtime's
        if reference is None or logits is None:
            return {}
        logits = np.asarray(logits)
        return {"vs_python": {"max_abs_logit_diff": float(np.abs(logits - reference).max()),
                              "same_prediction": float((logits.argmax(-1) == reference.argmax(-1)).mean())}}

    def calls(command) -> tuple[dict, dict]:  # the run's raw output, and its warm-process figures
        out = json.loads(subprocess.run(command, input=request, text=True, capture_output=True, check=True).stdout)
        return out, {"load_ms": out["load_ms"], "first_call_ms": out["first_ms"], "per_call": stats(out["times_ms"]),
                     **agreement(out.get("logits"))}

    result = {"bundle": bundle, "texts": len(texts), "threads": args.threads or "default"}
    if "python" in runtimes:
        cold = [sys.executable, "-c", PY_COLD.format(bundle=bundle, threads=args.threads or None)]
        result["python"] = {"cold_start": cold_start(cold, args.repeats)}
        out, warm = calls([sys.executable, "-c", PY_CALLS, bundle, str(args.threads)])
        result["python"].update(warm)
        reference = np.asarray(out["logits"])
    if "node" in runtimes:
        src = (NODE / "src" / "index.js").as_uri()
        cold = ["node", "-e", NODE_COLD.format(src=src, bundle=bundle, threads=args.threads or "undefined")]
        result["node"] = {"cold_start": cold_start(cold, args.repeats)}
        result["node"].update(calls(["node", str(NODE / "tools" / "latency.js"), bundle, str(args.threads)])[1])
    if "browser" in runtimes:
        command = ["node", str(WEB / "tools" / "latency.js"), bundle, "--repeats", str(args.repeats)]
        command += ["--threads", str(args.threads)] if args.threads else []
        command += ["--screenshot", str(Path(args.screenshot).resolve())] if args.screenshot else []
        out, warm = calls(command)
        result["browser"] = {key: out[key] for key in ("browser", "build", "threads", "cross_origin_isolated",
                                                       "cold_start")} | warm
    if args.bench_report:
        rows = json.loads(Path(args.bench_report).read_text())["rows"]
        row = next(r for r in rows if r["backend"] == "ort-cpu" and Path(bundle).name == r["model"])
        result["kdedge_bench_ort_cpu"] = {"p50_ms": row["p50_ms"], "p99_ms": row["p99_ms"], "batch": row["batch"]}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
