"""summary.md (and summary.json) of a benchmarks/gpu/run.sh run: rows per second per stage against the 2-core CPU's
recorded runs of the same recipes, dev accuracy against the CPU seeds, and the bench's figures.

The CPU side is read from benchmarks/results/sst2_frontier_r8 (session 44, Intel Xeon with AMX, 2 cores: the teacher,
the frontier's transfer set, pruned-2l-128-ffn256-long and bilstm-glove, seeds 42-44; its README says a CI run shared
the cores during the teacher and the transfer set, so those two CPU figures are slow by an unknown factor): wall
times from times.txt, steps and dev accuracies from the stage logs. Rows are training examples processed (steps x
batch size; the intermediate stage's --intermediate-samples), or for the transfer set the rows written.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path

CPU_RUN = Path(__file__).resolve().parents[1] / "results" / "sst2_frontier_r8"
# the recorded recipes' batch sizes and intermediate samples (configs/sst2-*.yaml, sst2_recipes.sh)
CPU_RECIPES = {
    "teacher": {"log": "teacher.log", "times": "teacher", "batch": 32},
    "transfer": {"log": "transfer.log", "times": "transfer-full"},
    "pruned-2l-128-ffn256-long": {"batch": 32, "intermediate_samples": 50000},
    "bilstm-glove": {"batch": 64},
}
TEACHER_TOLERANCE = 0.01  # one teacher seed on record: +-0.01 (9 of 872 dev answers) stands in for its seed spread


def read_times(path: Path) -> dict[str, dict]:
    stages = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            name, *fields = line.split()
            stages[name] = dict(f.split("=", 1) for f in fields if "=" in f)
    return stages


def _last_step(log: str) -> int | None:
    steps = re.findall(r"step (\d+):", log)
    return int(steps[-1]) if steps else None


def _best_accuracy(log: str) -> float | None:
    values = [float(v) for v in re.findall(r"dev accuracy=([0-9.]+)", log)]
    return max(values) if values else None


def cpu_reference(run: Path = CPU_RUN) -> dict:
    """Per stage: wall seconds, rows and rows/s of seed 42 (the seed run at 2 threads), and per model the dev
    accuracy of every seed's kept checkpoint."""
    times = {name: float(t["wall_s"]) for name, t in read_times(run / "times.txt").items() if "wall_s" in t}
    ref = {}
    teacher_log = (run / "teacher.log").read_text()
    ref["teacher"] = {"wall_s": times["teacher"], "rows": _last_step(teacher_log) * CPU_RECIPES["teacher"]["batch"],
                      "accuracy": [_best_accuracy(teacher_log)]}
    written = re.search(r"transfer set written to \S+: (\d+) rows", (run / "transfer.log").read_text())
    ref["transfer"] = {"wall_s": times["transfer-full"], "rows": int(written.group(1)), "accuracy": []}
    for name in ("pruned-2l-128-ffn256-long", "bilstm-glove"):
        recipe = CPU_RECIPES[name]
        logs = {seed: (run / f"{name}-s{seed}.log").read_text() for seed in (42, 43, 44)}
        rows = _last_step(logs[42]) * recipe["batch"] + recipe.get("intermediate_samples", 0)
        ref[name] = {"wall_s": times[f"{name}-s42"], "rows": rows,
                     "accuracy": [_best_accuracy(log) for log in logs.values()]}
    for entry in ref.values():
        entry["rows_per_s"] = entry["rows"] / entry["wall_s"]
    return ref


def _json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def device_stages(run: Path, times: dict) -> dict:
    """The same figures for this run, from its output folders (None where a stage did not finish)."""
    out = {}
    teacher = _json(run / "teacher" / "metrics.json")
    manifest = _json(run / "teacher" / "manifest.json")
    if teacher and manifest:
        batch = manifest["config"]["batch_size"]
        out["teacher"] = {"rows": teacher["steps"] * batch, "accuracy": teacher["dev"].get("accuracy"),
                          "train_time_s": teacher.get("train_time_s")}
    transfer = _json(run / "transfer" / "manifest.json")
    if transfer:
        metrics = transfer["metrics"]
        out["transfer"] = {"rows": metrics["rows"], "accuracy": None, "rows_by_source": metrics["rows_by_source"],
                           "teacher_labelling_s": metrics["teacher_labelling_s"]}
    for name in ("pruned-2l-128-ffn256-long", "bilstm-glove"):
        metrics, manifest = _json(run / name / "metrics.json"), _json(run / name / "manifest.json")
        if not (metrics and manifest):
            continue
        config = manifest["config"]
        rows = 0
        for stage in metrics["stages"]:
            if stage["stage"] == "intermediate":
                rows += min(config.get("intermediate_samples") or 0, out.get("transfer", {}).get("rows", 0)) \
                    * config.get("intermediate_epochs", 1)
            else:
                rows += stage["steps"] * config["batch_size"]
        out[name] = {"rows": rows, "accuracy": metrics["dev"].get("accuracy"), "train_time_s": metrics["train_time_s"],
                     "teacher_dev": metrics.get("teacher_dev", {}).get("accuracy")}
    for name, entry in out.items():
        stage_time = times.get(name, {})
        entry["wall_s"] = float(stage_time["wall_s"]) if "wall_s" in stage_time else None
        entry["rows_per_s"] = entry["rows"] / entry["wall_s"] if entry["wall_s"] else None
    return out


def agreement(name: str, value: float | None, cpu: list[float]) -> tuple[bool | None, str]:
    """Whether `value` is within the CPU seeds' noise: inside [min - sd, max + sd] of the seeds (one seed on record,
    the teacher's: +-TEACHER_TOLERANCE)."""
    if value is None or not cpu:
        return None, "-"
    if len(cpu) == 1:
        lo, hi = cpu[0] - TEACHER_TOLERANCE, cpu[0] + TEACHER_TOLERANCE
        noise = f"{cpu[0]:.4f} ± {TEACHER_TOLERANCE}"
    else:
        sd = statistics.stdev(cpu)
        lo, hi = min(cpu) - sd, max(cpu) + sd
        noise = f"{statistics.mean(cpu):.4f} ± {sd:.4f} ({min(cpu):.4f}–{max(cpu):.4f}; band {lo:.4f}–{hi:.4f})"
    return lo <= value <= hi, noise


def bench_rows(report_dir: Path) -> list[dict]:
    report = _json(report_dir / "report.json")
    return report["rows"] if report else []


def _fmt(value, spec: str = ".1f", none: str = "–") -> str:
    return none if value is None else format(value, spec)


def summary(args) -> tuple[str, dict]:
    run, res = Path(args.run), Path(args.res)
    times = read_times(res / "times.txt")
    cpu = cpu_reference()
    here = device_stages(run, times)
    environment = (res / "environment.txt").read_text() if (res / "environment.txt").is_file() else ""
    gpu = re.search(r"^gpu (.+?) cpus (\d+)", environment, flags=re.M)
    lines = [f"# GPU run ({'SMOKE: tiny shapes on the CPU, no figure here means anything' if args.smoke == '1' else args.device})",
             "",
             f"Device: {gpu.group(1) if gpu else 'unknown'}, {gpu.group(2) if gpu else '?'} CPUs; mixed precision "
             f"{args.precision}; transfer set --method {args.method}; students distilled "
             f"{'side by side' if args.parallel == '1' else 'one after the other'}. CPU reference: "
             f"benchmarks/results/sst2_frontier_r8 (2 cores, Intel Xeon AMX; seed 42 for rows/s).", "",
             "## Rows per second, per stage", "",
             "| stage | wall s | rows | rows/s | CPU wall s | CPU rows | CPU rows/s | speed-up |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    result = {"stages": {}, "accuracy": {}, "times": times}
    for name in ("teacher", "transfer", "pruned-2l-128-ffn256-long", "bilstm-glove"):
        h, c = here.get(name), cpu[name]
        speedup = h["rows_per_s"] / c["rows_per_s"] if h and h.get("rows_per_s") else None
        status = times.get(name, {})
        note = "" if h else f" ({'skipped: ' + status['skipped'] if 'skipped' in status else 'rc ' + status.get('rc', '–')})"
        lines.append(f"| {name}{note} | {_fmt(h and h['wall_s'])} | {h['rows'] if h else '–'} | "
                     f"{_fmt(h and h['rows_per_s'])} | {c['wall_s']:.0f} | {c['rows']} | {c['rows_per_s']:.1f} | "
                     f"{_fmt(speedup, '.1f')}{'×' if speedup else ''} |")
        result["stages"][name] = {"here": h, "cpu": {k: v for k, v in c.items() if k != "accuracy"}, "speedup": speedup}
    lines += ["", "Stage wall times include the interpreter start, loading, tokenizing, evaluations and checkpoints, "
              "as the CPU's times.txt do. The CPU transfer set was `--method replace,rules` (GloVe neighbours over "
              "60k words); this run's is `--method " + args.method + "`, so its rows/s compare different work.", "",
              "## SST-2 dev accuracy against the CPU runs (PyTorch, kept checkpoint)", "",
              "| model | here | CPU seeds | within seed noise |", "|---|---:|---|---|"]
    for name in ("teacher", "pruned-2l-128-ffn256-long", "bilstm-glove"):
        value = (here.get(name) or {}).get("accuracy")
        ok, noise = agreement(name, value, cpu[name]["accuracy"])
        lines.append(f"| {name} | {_fmt(value, '.4f')} | {noise} | {'–' if ok is None else 'yes' if ok else 'NO'} |")
        result["accuracy"][name] = {"here": value, "cpu": cpu[name]["accuracy"], "within_noise": ok}
    lines += ["", "The students here learn from a transfer set built with --method " + args.method
              + " (the CPU students: replace,rules, 270,621 rows), so agreement is a check of the GPU path, not of "
              "a byte-identical recipe.", ""]
    for title, folder in (("torch on the device", "bench-torch"), ("ONNX Runtime", "bench-onnx")):
        rows = bench_rows(res / folder)
        result[folder] = rows
        lines += [f"## Bench: {title} ({folder}/report.md)", ""]
        if not rows:
            lines += [f"no report ({'skipped: ' + times.get(folder, {}).get('skipped', '') if 'skipped' in times.get(folder, {}) else 'rc ' + times.get(folder, {}).get('rc', '–')})", ""]
            continue
        lines += ["| model | backend | precision | batch | p50 ms | p99 ms | examples/s | dev accuracy |",
                  "|---|---|---|---:|---:|---:|---:|---:|"]
        why = []
        for r in rows:
            if r["status"] != "ok":
                why.append(f"- {r['model']} on {r['backend']}: {r['status']}: {r.get('why')}")
                continue
            for bs, t in sorted(r["latency"]["real"].items(), key=lambda kv: int(kv[0])):
                lines.append(f"| {r['model']} | {r['backend']} | {r['precision']} | {bs} | {t['p50_ms']:.3f} | "
                             f"{t['p99_ms']:.3f} | {t['throughput']:.0f} | {_fmt(r.get('metric'), '.4f')} |")
        lines += [""] + sorted(set(why)) + [""]
    lines += ["ort-cuda and ort-tensorrt: the device image's onnxruntime is the CPU-only build (no CUDA or TensorRT "
              "execution provider), and onnxruntime-gpu cannot travel: its wheel is several hundred MB against the "
              "64 MiB that a device call carries.", ""]
    return "\n".join(lines), result


def main() -> None:
    parser = argparse.ArgumentParser()
    for flag in ("run", "res", "device", "smoke", "precision", "method", "parallel"):
        parser.add_argument(f"--{flag}", required=True)
    args = parser.parse_args()
    text, result = summary(args)
    (Path(args.res) / "summary.json").write_text(json.dumps(result, indent=1, default=str))
    print(text)


if __name__ == "__main__":
    main()
