"""Summarise the headline benchmark: each task's `kdedge bench` table, the bars of issue #6 checked against the
measured rows, and the embedded runtimes' cold start and per-call latency.

Usage: python benchmarks/collect_headline.py RESULTS_DIR
"""

import json
import sys
from pathlib import Path

from kdedge_runtime.cpu import cpu_name


def main_table(report_md: str) -> str:
    lines = report_md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| model |"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[start:end])


def bar(rows: list[dict], prefix: str, speedup: float, retention: float) -> str:
    """The int8 bundles of one student on ort-cpu, against the fp32 PyTorch teacher (batch 1, real lengths)."""
    candidates = [r for r in rows if r["status"] == "ok" and r["model"].startswith(prefix) and r["precision"] == "int8"
                  and r["backend"] == "ort-cpu"]
    if not candidates:
        return f"- {prefix}: no int8 row measured"
    lines = []
    for r in candidates:
        met = r["speedup_vs_torch_teacher"] >= speedup and r["retention"] >= retention
        lines.append(f"- {r['model']}: {r['speedup_vs_torch_teacher']:.1f}× the PyTorch teacher (bar {speedup}×), "
                     f"retention {r['retention']:.3f} (bar {retention}) — {'met' if met else 'NOT met'}")
    return "\n".join(lines)


def main(results: str) -> None:
    res = Path(results)
    sst2 = json.loads((res / "sst2" / "report.json").read_text())
    cpu = sst2["environment"]["cpu"]
    print(f"Hardware: {cpu_name(cpu)}, {cpu['usable_cpus']} CPUs, flags "
          + ", ".join(f for f, v in cpu["flags"].items() if v) + f"; GPU: {', '.join(sst2['environment']['gpus']) or 'none'}.")
    print("Versions: " + ", ".join(f"{k} {v}" for k, v in sst2["environment"]["versions"].items()) + ".\n")
    print("### SST-2 (872 dev sentences)\n")
    print(main_table((res / "sst2" / "report.md").read_text()) + "\n")
    print("Bars (ort-cpu, batch 1, real-length dev inputs, against the fp32 PyTorch teacher on torch-cpu):\n")
    print(bar(sst2["rows"], "bilstm", 20, 0.95))
    print(bar(sst2["rows"], "tinybert", 8, 0.98))
    unavailable = sorted({f"{r['backend']}: {r['why']}" for r in sst2["rows"] if r["status"] == "unavailable"})
    if unavailable:
        print("\nBackends not measured on this machine:\n\n" + "\n".join(f"- {u}" for u in unavailable))
    for task in ("mrpc", "stsb"):
        if (res / task / "report.md").is_file():
            report = json.loads((res / task / "report.json").read_text())
            print(f"\n### {task.upper()} ({report['dev_examples']} dev examples)\n")
            print(main_table((res / task / "report.md").read_text()))
    runtimes = sorted(res.glob("runtime-*.json"))
    if runtimes:
        print("\n### Embedded runtimes (single SST-2 dev sentences, one predict() per call)\n")
        print("| bundle | runtime | cold start ms (median) | model load ms | per-call p50 ms | per-call p99 ms "
              "| kdedge bench ort-cpu p50 ms (model only) |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for path in runtimes:
            r = json.loads(path.read_text())
            bench = r.get("kdedge_bench_ort_cpu", {}).get("p50_ms")
            for name in ("python", "node"):
                x = r[name]
                print(f"| {Path(r['bundle']).name} | {name} | {x['cold_start']['median_ms']:.0f} | {x['load_ms']:.0f} "
                      f"| {x['per_call']['p50_ms']:.3f} | {x['per_call']['p99_ms']:.3f} "
                      f"| {'–' if bench is None else f'{bench:.3f}'} |")


if __name__ == "__main__":
    main(sys.argv[1])
