"""The fast end's summary (issue 49): benchmarks/peers.py's rows, averaged over seeds, as summary.json (a list of
rows in the issue's format, with the spread over seeds beside each mean), summary.md (with the spread and the targets) and frontier.png (SST-2 accuracy against per-call time).

Usage: python benchmarks/collect_fast_end.py ROWS.json OUT_DIR
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path

SEED = re.compile(r"-s(\d+)(?=-int8$|$)")
METRICS = ("sst2_acc", "imdb_acc", "size_mb", "per_call_ms", "model_ms", "per_call_onnxruntime_ms",
           "compiled_model_ms")


def group_name(row: dict) -> str:
    """A bundle's name without its seed (ngram-s42-int8 -> ngram-int8); peers keep theirs (their seed is a field)."""
    return SEED.sub("", row["name"])


def kind_of(row: dict) -> str:
    return "teacher" if row["name"].startswith("teacher") else row["kind"]


def summarize(rows: list[dict]) -> list[dict]:
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(group_name(row), []).append(row)
    out = []
    for name, members in groups.items():
        entry = {"name": name, "kind": kind_of(members[0]), "seeds": len(members)}
        for metric in METRICS:
            values = [m[metric] for m in members if m.get(metric) is not None]
            entry[metric] = statistics.fmean(values) if values else None
            entry[f"{metric}_std"] = statistics.stdev(values) if len(values) > 1 else None
        out.append(entry)
    return sorted(out, key=lambda e: e["per_call_ms"])


def targets(summary: list[dict]) -> list[tuple[str, bool, str]]:
    """(target, met, the figures) for the issue's targets that these rows can decide; the n-gram student's for every
    n-gram recipe in the rows."""
    fasttext = next((e for e in summary if e["name"] == "fasttext-gold"), None)
    checks = []
    for ngram in [e for e in summary if e["kind"] == "kdedge" and e["name"].startswith("ngram")]:  # each recipe
        name = ngram["name"]
        checks.append((f"{name}: SST-2 dev accuracy >= 0.85", ngram["sst2_acc"] >= 0.85, f"{ngram['sst2_acc']:.4f}"))
        checks.append((f"{name}: <= 2 MB", ngram["size_mb"] <= 2.0, f"{ngram['size_mb']:.2f} MB"))
        if fasttext:
            ratio = ngram["per_call_ms"] / fasttext["per_call_ms"]
            checks.append((f"{name}: per call <= 2x fastText's", ratio <= 2.0,
                           f"{ngram['per_call_ms'] * 1000:.1f} us vs {fasttext['per_call_ms'] * 1000:.1f} us: "
                           f"{ratio:.2f}x"))
            checks.append((f"{name}: IMDB accuracy >= fastText's", ngram["imdb_acc"] >= fasttext["imdb_acc"],
                           f"{ngram['imdb_acc']:.4f} vs {fasttext['imdb_acc']:.4f}"))
    ours = [e for e in summary if e["kind"] == "kdedge"]
    beaten = [f"{p['name']} beats {k['name']}" for p in summary if p["kind"] == "peer" for k in ours
              if p["sst2_acc"] > k["sst2_acc"] and p["per_call_ms"] < k["per_call_ms"]]
    if ours:
        checks.append(("no peer point better than a kdedge point on both accuracy and per-call time", not beaten,
                       "; ".join(beaten) or "none"))
    for e in ours + [e for e in summary if e["kind"] == "teacher"]:
        if e.get("compiled_model_ms"):  # the model the call runs is the compiled one; ONNX Runtime's run beside it
            ratio = e["per_call_ms"] / e["compiled_model_ms"]
            checks.append((f"{e['name']}: predict() <= 1.3x the model's own run (compiled)", ratio <= 1.3,
                           f"{ratio:.2f}x; {e['per_call_ms'] / e['model_ms']:.2f}x ONNX Runtime's run of it"))
        elif e["model_ms"]:
            ratio = e["per_call_ms"] / e["model_ms"]
            checks.append((f"{e['name']}: predict() <= 1.3x the model's own run", ratio <= 1.3, f"{ratio:.2f}x"))
    return checks


def markdown(summary: list[dict], meta: dict) -> str:
    def cell(e, metric, digits, scale=1.0):
        if e[metric] is None:
            return "–"
        spread = f" ± {e[metric + '_std'] * scale:.{digits}f}" if e[metric + "_std"] is not None else ""
        return f"{e[metric] * scale:.{digits}f}{spread}"

    lines = [f"CPU: {meta.get('cpu')}; {meta.get('threads')} thread; command: `{meta.get('command')}`", "",
             "| row | kind | seeds | SST-2 dev acc | IMDB acc (--ood) | MB | per call µs (app) "
             "| model µs (ONNX Runtime) | per call µs, all in ONNX Runtime | compiled model µs |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for e in summary:
        lines.append(f"| {e['name']} | {e['kind']} | {e['seeds']} | {cell(e, 'sst2_acc', 4)} | "
                     f"{cell(e, 'imdb_acc', 4)} | {cell(e, 'size_mb', 2)} | {cell(e, 'per_call_ms', 1, 1000)} | "
                     f"{cell(e, 'model_ms', 1, 1000)} | {cell(e, 'per_call_onnxruntime_ms', 1, 1000)} | "
                     f"{cell(e, 'compiled_model_ms', 1, 1000)} |")
    lines += ["", "| target | met | figures |", "|---|---|---|"]
    lines += [f"| {name} | {'yes' if met else '**no**'} | {figures} |" for name, met, figures in targets(summary)]
    return "\n".join(lines) + "\n"


def plot(summary: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    colours = {"kdedge": "tab:blue", "peer": "tab:orange", "teacher": "tab:gray"}
    for e in summary:
        ax.scatter(e["per_call_ms"] * 1000, e["sst2_acc"], s=20 + 12 * e["size_mb"], color=colours[e["kind"]],
                   alpha=0.7)
        ax.annotate(e["name"], (e["per_call_ms"] * 1000, e["sst2_acc"]), fontsize=7, xytext=(4, 2),
                    textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("per call as an app sees it (µs, tokenization included, 1 thread, log scale)")
    ax.set_ylabel("SST-2 dev accuracy")
    ax.set_title("The fast end: kdedge (blue), peers (orange), teacher (grey); marker area ~ MB")
    fig.tight_layout()
    fig.savefig(path, dpi=130)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    report = json.loads(args.rows.read_text())
    summary = summarize(report["rows"])
    meta = {k: v for k, v in report.items() if k != "rows"}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")  # the CPU and command: summary.md
    (args.out / "summary.md").write_text(markdown(summary, meta))
    plot(summary, args.out / "frontier.png")


if __name__ == "__main__":
    main()
