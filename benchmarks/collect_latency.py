"""The table of benchmarks/runtime_latency.py results: one row per bundle and runtime.

Usage: python benchmarks/collect_latency.py RESULT.json [...] > summary.md
"""

import json
import sys
from pathlib import Path

RUNTIMES = {"python": "Python (kdedge_runtime)", "node": "Node (kdedge-runtime)", "browser": "browser (kdedge-web)"}


def main(files: list[str]) -> None:
    results = [json.loads(Path(f).read_text()) for f in files]
    browsers = {r["browser"]["browser"] for r in results if "browser" in r}
    print(f"Browser: {', '.join(sorted(browsers)) or '–'}. Threads: {results[0]['threads']} in every runtime. "
          f"Texts: {results[0]['texts']} SST-2 dev sentences, one per call.\n")
    print("| bundle | runtime | cold start ms (median) | of which load ms | per call p50 ms | p99 ms | "
          "model only p50 ms (`kdedge bench`, ort-cpu) | max abs logit diff vs Python | same prediction |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        name = Path(r["bundle"]).name
        model = r.get("kdedge_bench_ort_cpu", {}).get("p50_ms")
        for key, label in RUNTIMES.items():
            if key not in r:
                continue
            row = r[key]
            load = row["cold_start"].get("load_median_ms", row["load_ms"])
            vs = row.get("vs_python")
            parity = f"{vs['max_abs_logit_diff']:.1e} | {vs['same_prediction']:.2%}" if vs else "– | –"
            print(f"| {name} | {label} | {row['cold_start']['median_ms']:.0f} | {load:.0f} | "
                  f"{row['per_call']['p50_ms']:.3f} | {row['per_call']['p99_ms']:.3f} | "
                  f"{'–' if model is None else f'{model:.3f}'} | {parity} |")
    print("\nCold start: Python and Node from launching the process; the browser from navigation start of a page that "
          "imports kdedge-web and fetches the bundle and onnxruntime-web's WebAssembly without cache (a first visit), "
          "with the browser already running. Load: the bundle's load (for the browser: fetch, sha256, WebAssembly "
          "compile and session) in a warm process or page.")


if __name__ == "__main__":
    main(sys.argv[1:])
