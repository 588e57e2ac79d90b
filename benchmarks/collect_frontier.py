"""Summarise benchmarks/sst2_frontier.sh (and glue_pair_frontier.sh): one row per student recipe and precision (mean
and spread over seeds) from the task's `kdedge bench` report (RESULTS_DIR/TASK/report.json) and, for SST-2, the IMDB
one (RESULTS_DIR/imdb), an issue's targets (#14's, #15's with --targets base-teacher, or #45's per small task with
--targets small-data) checked against the int8 rows, and frontier.png (the task's main metric against batch-1 p50 latency, marker area = bundle size).

Bundles are named RECIPE-sSEED-PRECISION (e.g. pruned-2l-128-s42-int8); the teacher's are teacher, teacher-int8, and
teacher-optimized-int8 where the bench timed the teacher exported with --optimize too: the speed-ups are then taken
against the faster of the two int8 teachers.
Usage: python benchmarks/collect_frontier.py RESULTS_DIR BUNDLES_DIR [--task sst2|mrpc|stsb|rte|cola]
                                           [--targets frontier|base-teacher|small-data]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from kdedge_runtime.cpu import cpu_name

NAME = re.compile(r"^(?P<recipe>.+)-s(?P<seed>\d+)-(?P<precision>fp32|int8)$")


@dataclass(frozen=True)
class Target:
    """A bar an int8 student (mean over seeds) must clear: retention at least, and where set, a speed-up vs the
    int8 teacher at least, a bundle size and a parameter count at most."""
    kind: str  # "transformer" or "bilstm"
    retention: float
    speedup: float | None = None
    max_mb: float | None = None
    max_parameters: float | None = None
    beat: str | None = None  # a recipe (a baseline, not a kdedge student) whose int8 mean metric must be exceeded
    against: str = "fp32"  # retention of which teacher: "fp32", or "int8" (the most accurate int8 teacher benched)

    def describe(self) -> str:
        return ", ".join([f"retention ≥ {self.retention:.1%}"]
                         + ([f"≥ {self.speedup:g}× the int8 teacher"] if self.speedup else [])
                         + ([f"≤ {self.max_mb:g} MB"] if self.max_mb else [])
                         + ([f"≤ {self.max_parameters / 1e6:g}M parameters"] if self.max_parameters else [])
                         + ([f"above {self.beat} int8"] if self.beat else []))

    def inside_bars(self, g: dict) -> bool:
        """Within every bar but retention's."""
        return ((self.speedup is None or statistics.mean(g["speedup_int8"]) >= self.speedup)
                and (self.max_mb is None or max(g["bundle_mb"]) <= self.max_mb)
                and (self.max_parameters is None or max(g["parameters"]) <= self.max_parameters))


# --targets: whose bars the SST-2 int8 rows are checked against.
TARGETS = {
    "frontier": [Target("transformer", 0.985, 5.0, 6.0), Target("transformer", 0.97, 12.0, 2.5),  # issue #14
                 Target("bilstm", 0.97, max_mb=1.5)],
    "base-teacher": [Target("transformer", 0.97, 10.0, max_parameters=15e6),  # issue #15
                     Target("bilstm", 0.95, 10.0)],
}
# --targets small-data (issue #45), per task: against the int8 base teacher, and above all-MiniLM-L6-v2 fine-tuned
# directly on the task (bundles minilm-direct-s<seed>-int8)
SMALL_DATA_RETENTION = {"mrpc": 0.98, "stsb": 0.98, "rte": 0.95}
BASELINE = "minilm-direct"
TASK_NAMES = {"sst2": "SST-2", "mrpc": "MRPC", "stsb": "STS-B", "rte": "RTE", "cola": "CoLA"}


def task_targets(name: str, task: str) -> list[Target]:
    if name == "small-data":
        return [Target("transformer", SMALL_DATA_RETENTION[task], 10.0, 6.0, beat=BASELINE, against="int8")] \
            if task in SMALL_DATA_RETENTION else []
    return TARGETS[name] if task == "sst2" else []  # #14's and #15's bars are SST-2's


def bundle_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def spread(values: list[float], digits: int = 4) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f} (1 seed)"
    return (f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f} "
            f"({min(values):.{digits}f}–{max(values):.{digits}f})")


def ort_rows(report: dict) -> dict[str, dict]:
    return {r["model"]: r for r in report["rows"] if r["status"] == "ok" and r["backend"] == "ort-cpu"}


def groups(sst2: dict[str, dict], imdb: dict[str, dict], bundles: Path, faster_teacher: float = 1.0
           ) -> dict[tuple[str, str], dict]:
    """(recipe, precision) -> lists over seeds of the measured values (`accuracy`: the task's main metric).
    `faster_teacher` (at most 1) scales the bench's speed-ups against its int8 teacher to the fastest int8 teacher."""
    out: dict[tuple[str, str], dict] = defaultdict(lambda: defaultdict(list))
    for name, row in sst2.items():
        m = NAME.match(name)
        if not m:
            continue
        g = out[(m["recipe"], m["precision"])]
        g["seeds"].append(int(m["seed"]))
        g["accuracy"].append(row["metric"])
        for key, value in row["metrics"].items():
            g[f"metric:{key}"].append(value)
        g["retention"].append(row["retention"])
        g["p50_ms"].append(row["p50_ms"])
        g["speedup_int8"].append(row["speedup_vs_teacher_int8"] * faster_teacher)
        g["speedup_fp32"].append(row["speedup_vs_teacher_fp32"])
        g["bundle_mb"].append(bundle_mb(bundles / name))
        g["parameters"].append(row["parameters"])
        if name in imdb:
            g["imdb_accuracy"].append(imdb[name]["metric"])
            g["imdb_retention"].append(imdb[name]["retention"])
    return out


def table(found: dict, teachers: dict, imdb_teachers: dict, metrics: list[str], task: str) -> list[str]:
    """The main metric (mean ± sd over seeds) and its retention, the task's other metrics, IMDB when it was run,
    then latency, speed-ups, size and parameters."""
    others, imdb = metrics[1:], bool(imdb_teachers)
    head = ([f"{task} {metrics[0]}, mean ± sd (min–max)", "retention"] + [f"{task} {m}" for m in others]
            + (["IMDB accuracy", "IMDB retention"] if imdb else [])
            + ["p50 ms (b=1)", "**speed-up vs int8 teacher**", "vs fp32 teacher", "bundle MB", "parameters"])
    lines = ["| student | precision | seeds | " + " | ".join(head) + " |",
             "|---|---|---:|" + "".join("---|" if h.startswith((task, "IMDB accuracy")) else "---:|" for h in head)]
    for name, row in teachers.items():
        cells = [f"{row['metric']:.4f}", f"{row['retention']:.3f}"] + [f"{row['metrics'][m]:.4f}" for m in others]
        if imdb:
            t = imdb_teachers.get(name)
            cells += [f"{t['metric']:.4f}", f"{t['retention']:.3f}"] if t else ["–", "–"]
        cells += [f"{row['p50_ms']:.2f}", f"{row['speedup_vs_teacher_int8']:.1f}×",
                  f"{row['speedup_vs_teacher_fp32']:.1f}×", f"{row['size_mb']:.2f} (model.onnx)",
                  f"{row['parameters'] / 1e6:.2f}M"]
        lines.append(f"| {name} | {row['precision']} | – | " + " | ".join(cells) + " |")
    mean = statistics.mean
    for (recipe, precision), g in sorted(found.items(), key=lambda kv: -statistics.median(kv[1]["p50_ms"])):
        cells = [spread(g["accuracy"]), f"{mean(g['retention']):.3f}"] + [spread(g[f"metric:{m}"]) for m in others]
        if imdb:
            cells += ([spread(g["imdb_accuracy"]), f"{mean(g['imdb_retention']):.3f}"] if g["imdb_accuracy"]
                      else ["–", "–"])
        cells += [f"{statistics.median(g['p50_ms']):.3f}", f"{mean(g['speedup_int8']):.1f}×",
                  f"{mean(g['speedup_fp32']):.1f}×", f"{max(g['bundle_mb']):.2f}", f"{g['parameters'][0] / 1e6:.2f}M"]
        lines.append(f"| {recipe} | {precision} | {len(g['seeds'])} | " + " | ".join(cells) + " |")
    return lines


def other_backends(report: dict, metric: str) -> list[str]:
    """The rows of every backend but ort-cpu: each model's p50 and speed-up against the int8 teacher on that same
    backend (students grouped over seeds), or why the backend could not run."""
    lines = []
    for backend in dict.fromkeys(r["backend"] for r in report["rows"] if r["backend"] != "ort-cpu"):
        rows = [r for r in report["rows"] if r["backend"] == backend]
        ok = [r for r in rows if r["status"] == "ok"]
        if not ok:
            lines.append(f"- {backend}: {rows[0]['status']} ({rows[0].get('why', '')})")
            continue
        found: dict[str, dict] = defaultdict(lambda: defaultdict(list))
        for r in ok:
            m = NAME.match(r["model"])
            g = found[f"{m['recipe']} {m['precision']}" if m else r["model"]]
            for key, value in (("accuracy", r["metric"]), ("p50_ms", r["p50_ms"]),
                               ("speedup_int8", r["speedup_vs_teacher_int8"])):
                g[key].append(value)
        lines += [f"\n{backend}, same run (seeds averaged):\n",
                  f"| model | seeds | {metric} | p50 ms (b=1) | speed-up vs int8 teacher, same backend |",
                  "|---|---:|---:|---:|---:|"]
        for name, g in sorted(found.items(), key=lambda kv: -statistics.median(kv[1]["p50_ms"])):
            speedups = [x for x in g["speedup_int8"] if x is not None]
            lines.append(f"| {name} | {len(g['accuracy'])} | {statistics.mean(g['accuracy']):.4f} "
                         f"| {statistics.median(g['p50_ms']):.3f} "
                         f"| {f'{statistics.mean(speedups):.1f}×' if speedups else '–'} |")
    return lines


def check_targets(found: dict, targets: list[Target], teacher_metric: dict[str, float]) -> list[str]:
    """Each target met or not. `teacher_metric` maps "fp32" and "int8" to the teacher's metric each target's
    retention is taken against; the verdict names that teacher and gives the other reading beside it."""
    lines = []
    for target in targets:
        kind, bar = target.kind, target.describe()
        reference = teacher_metric.get(target.against)
        if reference is None:
            lines.append(f"- {kind} int8, {bar}: no {target.against} teacher in this run to take retention against")
            continue
        bar += f" (retention of the {target.against} teacher, {reference:.4f})"
        other = {"fp32": "int8", "int8": "fp32"}[target.against]
        candidates = [(recipe, g) for (recipe, precision), g in found.items()
                      if precision == "int8" and recipe.startswith("bilstm") == (kind == "bilstm")
                      and recipe != BASELINE]
        if not candidates:  # e.g. a run of transformer students alone
            lines.append(f"- {kind} int8, {bar}: no {kind} student in this run")
            continue
        baseline = found.get((target.beat, "int8"))
        if target.beat and not baseline:
            lines.append(f"- {kind} int8, {bar}: no {target.beat} int8 rows in this run to compare with")
            continue
        above = statistics.mean(baseline["accuracy"]) if baseline else float("-inf")
        inside = [(statistics.mean(g["accuracy"]), recipe) for recipe, g in candidates
                  if target.inside_bars(g) and statistics.mean(g["accuracy"]) > above]
        met = [recipe for metric, recipe in inside if metric / reference >= target.retention]
        best = max(inside, default=None)  # the closest miss: the most retention inside the other bars
        verdict = (f"met by {', '.join(sorted(met))}" if met else "NOT met" + (
            f"; inside the other bars the best is {best[1]} at retention {best[0] / reference:.4f}" if best
            else "; no student is inside the other bars"))
        if best and teacher_metric.get(other):
            verdict += (f" ({best[1]} keeps {best[0] / teacher_metric[other]:.4f} of the {other} teacher, "
                        f"{teacher_metric[other]:.4f})")
        lines.append(f"- {kind} int8, {bar}: {verdict}")
    return lines


def checkpoint_choice(bundles: Path, metric_key: str) -> list[str]:
    """Each recipe's kept checkpoint (its metrics.json) beside its last evaluation, PyTorch fp32, mean over
    seeds, from the students' train logs: how much of the reported figure is the choice of checkpoint on dev."""
    found: dict[str, dict] = defaultdict(lambda: defaultdict(list))
    for folder in sorted(bundles.glob("*-int8")):
        m = NAME.match(folder.name)
        student = json.loads((folder / "manifest.json").read_text()).get("student", {}).get("path", "")
        log, metrics = Path(student) / "train_log.jsonl", Path(student) / "metrics.json"
        if not m or not log.is_file() or not metrics.is_file():
            continue
        evals = [r for r in map(json.loads, log.read_text().splitlines()) if r.get("dev")]
        if evals:
            g = found[m["recipe"]]
            g["kept"].append(json.loads(metrics.read_text())["dev"][metric_key])  # the checkpoint the run kept
            g["last"].append(evals[-1]["dev"][metric_key])
    if not found:
        return []
    lines = ["| student | seeds | kept checkpoint | last evaluation |", "|---|---:|---|---|"]
    for recipe, g in sorted(found.items()):
        lines.append(f"| {recipe} | {len(g['kept'])} | {spread(g['kept'])} | {spread(g['last'])} |")
    return lines


def plot(found: dict, teachers: dict, task: str, metric: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, NullLocator

    from kdedge.bench.report import log_ticks

    fig, ax = plt.subplots(figsize=(9, 5.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    recipes = sorted({recipe for recipe, _ in found})
    for i, recipe in enumerate(recipes):
        for precision in ("fp32", "int8"):
            g = found.get((recipe, precision))
            if not g:
                continue
            acc = statistics.mean(g["accuracy"])
            err = [[acc - min(g["accuracy"])], [max(g["accuracy"]) - acc]]
            x = statistics.median(g["p50_ms"])
            ax.errorbar(x, acc, yerr=err, fmt="none", ecolor=colours[i % len(colours)], alpha=0.6)
            ax.scatter(x, acc, s=30 + 25 * max(g["bundle_mb"]), color=colours[i % len(colours)],
                       marker="o" if precision == "int8" else "D", alpha=0.85 if precision == "int8" else 0.35,
                       label=recipe if precision == "int8" else None, edgecolors="black", linewidths=0.5)
    greys = ("0.15", "0.35", "0.55", "0.75")  # the teacher's exports sit on top of each other: named in the legend
    for i, (name, row) in enumerate(teachers.items()):
        ax.scatter(row["p50_ms"], row["metric"], s=30 + 25 * row["size_mb"], color=greys[i % len(greys)], marker="s",
                   alpha=0.5, label=name, edgecolors="black", linewidths=0.5)
    xs = [statistics.median(g["p50_ms"]) for g in found.values()] + [r["p50_ms"] for r in teachers.values()]
    lo, hi = min(xs) / 1.5, max(xs) * 1.5
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.xaxis.set_major_locator(FixedLocator(log_ticks(lo, hi)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:g}")
    ax.set_xlabel(f"p50 latency, batch 1, real-length {task} dev rows, ort-cpu, 1 thread (ms, log scale)")
    ax.set_ylabel(f"{metric} (mean over seeds; bars: min–max)")
    ax.set_title("kdedge students and the teacher (squares): circles int8, diamonds fp32, area ∝ bundle MB")
    ax.grid(alpha=0.3)
    legend = ax.legend(fontsize=8, loc="lower right")
    for handle in legend.legend_handles:  # one marker size in the legend: the plot's sizes are bundle MB
        handle.set_sizes([40])
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(results: str, bundles: str, task: str, targets: str) -> None:
    res = Path(results)
    report = json.loads((res / task / "report.json").read_text())
    rows = ort_rows(report)
    imdb = ort_rows(json.loads((res / "imdb" / "report.json").read_text())) if (res / "imdb").is_dir() else {}
    teachers = {n: r for n, r in rows.items() if r["role"] == "teacher" or n.startswith("teacher-")}
    int8_p50 = [r["p50_ms"] for r in teachers.values() if r["precision"] == "int8"]
    faster_teacher = min(int8_p50) / rows["teacher-int8"]["p50_ms"] if "teacher-int8" in rows else 1.0
    found = groups(rows, imdb, Path(bundles), faster_teacher)
    imdb_teachers = {n: r for n, r in imdb.items() if r["role"] == "teacher"}
    name = TASK_NAMES.get(task, task)
    metric = f"{name} {report['task']['metrics'][0]}"
    env = report["environment"]
    cpu = env["cpu"]
    print(f"Hardware: {cpu_name(cpu)}, {cpu['usable_cpus']} CPUs, flags "
          + ", ".join(f for f, v in cpu["flags"].items() if v) + f"; GPU: {', '.join(env['gpus']) or 'none'}.")
    print("Versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()) + ".")
    print(f"Threads: {report['config']['threads']}. Latency: batch 1, real-length {name} dev rows. "
          "Bundle MB: every file of the bundle (model, tokenizer or vocabulary, manifest). Retention: against the "
          "teacher's fp32 bundle on the same data. Speed-ups: against the teacher's bundles on ort-cpu, same run"
          + (f"; vs int8: against teacher-optimized-int8, the faster int8 teacher here ({min(int8_p50):.2f} ms)"
             if faster_teacher < 1 else "") + ".\n")
    print("\n".join(table(found, teachers, imdb_teachers, report["task"]["metrics"], name)))
    if chosen := task_targets(targets, task):
        print(f"\nTargets (int8, ort-cpu, {name} dev, mean over seeds):\n")
        teacher_metric = {precision: max((r["metric"] for r in teachers.values() if r["precision"] == precision),
                                         default=None) for precision in ("fp32", "int8")}
        print("\n".join(check_targets(found, chosen, teacher_metric)))
    choice = checkpoint_choice(Path(bundles), report["task"]["metrics"][0])
    if choice:
        print("\nCheckpoint choice (PyTorch fp32 dev, the students' train logs): each student keeps its best dev "
              "evaluation, so the figures above include that choice; the last evaluation is the run without it.\n")
        print("\n".join(choice))
    others = other_backends(report, metric)
    if others:
        print("\nOther backends:")
        print("\n".join(others))
    plot(found, teachers, name, metric, res / "frontier.png")
    print("\n![frontier](frontier.png)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("bundles")
    parser.add_argument("--task", default="sst2", help="the bench report's folder under RESULTS_DIR")
    parser.add_argument("--targets", default="frontier", choices=[*TARGETS, "small-data"],
                        help="the issue's bars to check")
    args = parser.parse_args()
    main(args.results, args.bundles, args.task, args.targets)
