"""Turn worker results into rows (metric, retention, agreement, speed-ups), gates, and the report files."""

from __future__ import annotations

import math
from itertools import cycle
from pathlib import Path

import numpy as np

from kdedge.bench.backends import backend_device, backend_precision
from kdedge.data.metrics import compute_metrics, predictions
from kdedge.data.tasks import Task
from kdedge.errors import KdedgeError
from kdedge.outputs import write_json
from kdedge_runtime.cpu import cpu_name


def build_rows(results: list[dict], task: Task, labels: np.ndarray, device_rows: list[dict] = (),
               eval_labels: dict[str, np.ndarray] | None = None) -> list[dict]:
    """Rows of the jobs run here, then the rows measured on devices (see bench/device.py), all compared with the
    teacher: on dev, and on each evaluation set (`eval_labels`, by name) under row["eval"][name]."""
    rows = []
    for r in results:
        model = r["model"]
        row = {"model": model["name"], "role": model["role"], "format": model["kind"], "backend": r["backend"],
               "precision": backend_precision(r["backend"], model["precision"]), "size_mb": round(model["size_mb"], 2),
               "parameters": model["parameters"], "status": r["status"], "why": r.get("why")}
        if r["status"] == "ok":
            row.update(session=r["session"], latency=r["latency"], **_headline_latency(r["latency"]))
            if "logits" in r:
                row["eval_batch_size"] = r.get("eval_batch_size")
                logits = np.asarray(r["logits"], dtype=np.float32)
                row["metrics"] = compute_metrics(task, logits, labels)
                row["metric"] = row["metrics"][task.main_metric]
                row["_predictions"] = predictions(task, logits)
            if r.get("eval_logits"):
                row["eval"] = {}
                for name, set_labels in (eval_labels or {}).items():
                    metrics = compute_metrics(task, np.asarray(r["eval_logits"][name], dtype=np.float32), set_labels)
                    row["eval"][name] = {"metrics": metrics, "metric": metrics[task.main_metric]}
        rows.append(row)
    rows += [dict(r) for r in device_rows]
    _compare_with_teacher(rows, task)
    for row in rows:
        row.pop("_predictions", None)
    return rows


def _headline_latency(latency: dict) -> dict:
    real = latency["real"]
    smallest, largest = min(real, key=int), max(real, key=int)
    return {"batch": int(smallest), "p50_ms": real[smallest]["p50_ms"], "p99_ms": real[smallest]["p99_ms"],
            "throughput_batch": int(largest), "throughput": real[largest]["throughput"]}


def _compare_with_teacher(rows: list[dict], task: Task) -> None:
    """Retention against the teacher's metric; agreement with its predictions; speed-ups against the int8 and the
    fp32 teacher on the same backend (the headline is the int8 one: what a user gets without distilling) and
    against the PyTorch teacher on the same device (the usual 'x times faster' figure)."""
    ok_teachers = [r for r in rows if r["role"] == "teacher" and r["status"] == "ok"]
    teachers = {(r["backend"], r["precision"]): r for r in ok_teachers}
    torch_teachers = {r["backend"]: r for r in ok_teachers if r["format"] == "torch"}
    reference = torch_teachers.get("torch-cpu") or next(iter(ok_teachers), None)
    for row in rows:
        if row["status"] != "ok":
            continue
        device = backend_device(row["backend"])
        for precision in ("int8", "fp32"):
            same = teachers.get((row["backend"], precision))
            row[f"speedup_vs_teacher_{precision}"] = same["p50_ms"] / row["p50_ms"] if same else None
        on_device = row["backend"].startswith("device:")  # timed elsewhere: no speed-up against this host's PyTorch
        torch_teacher = None if on_device else torch_teachers.get(f"torch-{device}")
        row["speedup_vs_torch_teacher"] = torch_teacher["p50_ms"] / row["p50_ms"] if torch_teacher else None
        if reference is None or "metric" not in row or "metric" not in reference:
            continue
        row["retention"] = row["metric"] / reference["metric"] if reference["metric"] else None
        for name, scores in row.get("eval", {}).items():
            base = reference.get("eval", {}).get(name, {}).get("metric")
            scores["retention"] = scores["metric"] / base if base else None
        if "_predictions" not in row:  # a device report carries metrics, not predictions
            continue
        base = reference["_predictions"]
        if task.is_regression:
            row["teacher_pearson"] = float(np.corrcoef(row["_predictions"], base)[0, 1])
        else:
            row["agreement"] = float((row["_predictions"] == base).mean())


def parse_retention_gates(values: tuple[str, ...] | None, sets: list[str]) -> dict[str, float]:
    """--min-retention values (R for dev, NAME=R for an evaluation set) -> {set name: R}; "dev" names dev."""
    gates = {}
    for value in values or ():
        name, sep, raw = value.rpartition("=")
        name = name if sep else "dev"
        if name != "dev" and name not in sets:
            known = ", ".join(["dev", *sets])
            raise KdedgeError(f"--min-retention {value}: no evaluation set named '{name}' (known: {known})")
        try:
            gates[name] = float(raw)
        except ValueError:
            raise KdedgeError(f"--min-retention {value}: '{raw}' is not a number; write R or NAME=R") from None
        if not 0 <= gates[name]:
            raise KdedgeError(f"--min-retention {value}: a retention gate must be >= 0")
    return gates


def check_gates(rows: list[dict], min_retention: dict[str, float], max_p99_ms: float | None) -> list[str]:
    """One line per failing row and gate; the teacher is not held to the retention gates."""
    failures = []
    for row in rows:
        name = f"{row['model']} on {row['backend']}"
        if row["status"] == "error":
            failures.append(f"{name}: the benchmark job failed ({row['why']})")
            continue
        if row["status"] != "ok":
            continue
        for set_name, floor in min_retention.items():
            retention = row.get("retention") if set_name == "dev" else row.get("eval", {}).get(set_name, {}).get(
                "retention")
            if row["role"] != "teacher" and retention is not None and retention < floor:
                where = "" if set_name == "dev" else f" on {set_name}"
                failures.append(f"{name}: retention{where} {retention:.4f} < {floor}")
        if max_p99_ms is not None and row["p99_ms"] > max_p99_ms:
            failures.append(f"{name}: p99 {row['p99_ms']:.2f} ms at batch {row['batch']} > {max_p99_ms} ms")
    return failures


def write_report(folder: Path, report: dict) -> None:
    write_json(folder / "report.json", report)
    (folder / "report.md").write_text(markdown(report))
    plot(report, folder / "report.png")


def _fmt(value, spec: str, suffix: str = "") -> str:
    return "–" if value is None else f"{value:{spec}}{suffix}"


def markdown(report: dict) -> str:
    task, rows = report["task"], report["rows"]
    env = report["environment"]
    cpu = env["cpu"]
    metric = task["metrics"][0]
    ok = [r for r in rows if r["status"] == "ok"]
    sets = list(report.get("eval_sets", {}))
    set_heads = "".join(f" {name} {metric} | {name} retention |" for name in sets)
    lines = [f"# kdedge bench: {task['name']} ({report['dev_examples']} dev examples)", "",
             f"CPU: {cpu_name(cpu)}, {cpu['usable_cpus']} CPUs ("
             + ", ".join(f for f, v in cpu["flags"].items() if v) + "); GPU: " + ("; ".join(env["gpus"]) or "none"),
             f"Threads: {report['config']['threads'] or 'library default'}. Latency on real-length dev inputs "
             "(consecutive dev examples, padded to the longest in the batch)"
             + (f"; each figure the median of {report['config']['rounds']} rounds, the models interleaved."
                if report["config"].get("rounds", 1) > 1 else "."), "",
             f"| model | backend | precision | size MB | params | p50 ms (b={ok[0]['batch'] if ok else 1}) | p99 ms "
             f"| throughput ex/s (b={ok[0]['throughput_batch'] if ok else '-'}) | {metric} | retention | agreement "
             f"|{set_heads} **speed-up vs int8 teacher, same backend** | vs fp32 teacher, same backend "
             "| vs PyTorch teacher |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|" + "---:|---:|" * len(sets) + "---:|---:|---:|"]
    for r in ok:
        agreement = r.get("agreement", r.get("teacher_pearson"))
        params = f"{r['parameters'] / 1e6:.2f}M" if r["parameters"] else "–"
        per_set = [(r.get("eval", {}).get(n, {}).get("metric"), r.get("eval", {}).get(n, {}).get("retention"))
                   for n in sets]
        cells = [r["model"], r["backend"], r["precision"], f"{r['size_mb']:.1f}", params, f"{r['p50_ms']:.2f}",
                 f"{r['p99_ms']:.2f}", f"{r['throughput']:.0f}", _fmt(r.get("metric"), ".4f"),
                 _fmt(r.get("retention"), ".3f"), _fmt(agreement, ".3f"),
                 *(cell for m, k in per_set for cell in (_fmt(m, ".4f"), _fmt(k, ".3f"))),
                 _fmt(r.get("speedup_vs_teacher_int8"), ".1f", "×"), _fmt(r.get("speedup_vs_teacher_fp32"), ".1f", "×"),
                 _fmt(r.get("speedup_vs_torch_teacher"), ".1f", "×")]
        lines.append("| " + " | ".join(cells) + " |")
    if sets:
        lines += ["", "Evaluation sets: " + "; ".join(f"{n}: {d['source']} ({d['rows']} rows)"
                                                     for n, d in report["eval_sets"].items())
                  + ". Retention on each against the teacher on the same set."]
    if report.get("warnings"):
        lines += ["", "Warnings:"] + [f"- {w}" for w in report["warnings"]]
    skipped = [r for r in rows if r["status"] != "ok"]
    if skipped:
        lines += ["", "Not measured:"] + [f"- {r['model']} on {r['backend']}: {r['status']}: {r['why']}" for r in skipped]
    devices = {r["backend"]: r["device"] for r in ok if "device" in r}
    if devices:
        lines += ["", "Measured on the device itself (`kdedge-device-bench`; speed-ups against the teacher bundle timed "
                  "there, retention against this report's teacher on the same rows):"]
        lines += [f"- {name}: {cpu_name(d['cpu'])} ({d['cpu']['machine']}), {d['cpu']['usable_cpus']} CPUs, int8 flags "
                  + (", ".join(f for f, v in d["cpu"]["flags"].items() if v) or "none")
                  + f"; preset {d['cpu']['int8_preset']}; {d['os']}; onnxruntime {d['versions'].get('onnxruntime')}"
                  + ("; **emulated**: the CPU shown is the host's and the timings are not the device's"
                     if d["cpu"].get("emulated") else "")
                  for name, d in devices.items()]
    here = [r for r in ok if "padded" in r["latency"]]
    if here:
        cells = [(bs, length) for bs in here[0]["latency"]["padded"] for length in here[0]["latency"]["padded"][bs]]
        lines += ["", "p50 ms with inputs padded to length L (batch × L):", "",
                  "| model | backend | " + " | ".join(f"{b}×{L}" for b, L in cells) + " |",
                  "|---|---|" + "---:|" * len(cells)]
        for r in here:
            padded = r["latency"]["padded"]
            lines.append(f"| {r['model']} | {r['backend']} | "
                         + " | ".join(f"{padded[b][L]['p50_ms']:.2f}" for b, L in cells) + " |")
    return "\n".join(lines) + "\n"


_BACKEND_MARKERS = {"torch-cpu": "o", "ort-cpu": "s", "torch-cuda": "D", "torch-cuda-fp16": "d", "torch-cuda-bf16": "p",
                    "ort-cuda": "^", "ort-tensorrt": "v", "ort-openvino": "P", "openvino-cpu": "X"}


def log_ticks(lo: float, hi: float) -> list[float]:
    """Round tick values for a log axis from lo to hi: decades, else 1-2-5, else every digit, else three
    evenly spaced values rounded to two significant digits; never so many that their labels collide."""
    decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    for mantissas in ((1,), (1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9)):
        ticks = [m * 10.0 ** e for e in decades for m in mantissas if lo <= m * 10.0 ** e <= hi]
        if len(ticks) >= 3:
            return ticks
    return sorted({float(f"{v:.2g}") for v in np.geomspace(lo, hi, 3)})


def plot(report: dict, path: Path) -> None:
    """Accuracy vs batch-1 latency, a panel for dev and one per evaluation set: a colour per model (teachers in
    greys), a marker per backend, each explained in a legend beside the axes rather than written over the points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator, NullLocator

    rows = [r for r in report["rows"] if r["status"] == "ok" and r.get("metric") is not None]
    models = list(dict.fromkeys(r["model"] for r in rows))
    # colours repeat past 20 students (the marker and legend entry still tell them apart)
    greys, palette = cycle(("black", "dimgrey", "darkgrey", "lightgrey")), cycle(plt.get_cmap("tab20").colors)
    colours = {m: next(greys if any(r["role"] == "teacher" for r in rows if r["model"] == m) else palette)
               for m in models}
    backends = list(dict.fromkeys(r["backend"] for r in rows))
    spare = iter("Xph*<>")
    markers = {b: _BACKEND_MARKERS.get(b) or next(spare) for b in backends}
    metric = report["task"]["metrics"][0]
    teacher = next((r for r in rows if r["role"] == "teacher" and r["format"] == "torch"),
                   next((r for r in rows if r["role"] == "teacher"), None))
    # one panel per set scored: dev, then each evaluation set (same latency axis)
    panels = [("dev", lambda r: r.get("metric"))] + [
        (name, lambda r, n=name: r.get("eval", {}).get(n, {}).get("metric")) for name in report.get("eval_sets", {})]
    fig, axes = plt.subplots(1, len(panels), figsize=(6 + 4 * len(panels), 5), layout="constrained", squeeze=False)
    for ax, (set_name, score) in zip(axes[0], panels):
        for r in rows:
            if score(r) is not None:
                ax.scatter(r["p50_ms"], score(r), marker=markers[r["backend"]], s=70, color=colours[r["model"]],
                           edgecolors="white", linewidths=0.8, zorder=3)
        if teacher is not None and score(teacher) is not None:
            ax.axhline(score(teacher), color="black", linestyle=":", linewidth=1, zorder=1)
        if rows:
            lo, hi = min(r["p50_ms"] for r in rows) / 1.5, max(r["p50_ms"] for r in rows) * 1.5
            ax.set_xscale("log")
            ax.set_xlim(lo, hi)
            ax.xaxis.set_major_locator(FixedLocator(log_ticks(lo, hi)))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.xaxis.set_major_formatter(lambda v, _: f"{v:g}")
        batch = rows[0]["batch"] if rows else 1
        ax.set_xlabel(f"p50 latency, ms (log scale; batch {batch}, real-length dev inputs)")
        ax.set_ylabel(f"{set_name} {metric}")
        ax.set_title(f"{report['task']['name']}: {set_name} {metric} vs latency")
        ax.grid(True, alpha=0.3)

    def describe(model: str) -> str:
        r = next(r for r in rows if r["model"] == model)
        role = "" if model.startswith(r["role"]) else f"{r['role']}, "
        return f"{model} ({role}{r['precision']}, {r['size_mb']:.1f} MB)"

    model_key = [Line2D([], [], marker="o", linestyle="", color=colours[m], markersize=8, label=describe(m))
                 for m in models]
    if teacher is not None:
        model_key.append(Line2D([], [], color="black", linestyle=":", label=f"teacher's {metric}"))
    backend_key = [Line2D([], [], marker=markers[b], linestyle="", color="grey", markersize=8, label=b)
                   for b in backends]
    fig.legend(handles=model_key, title="model", loc="outside right upper", fontsize=8, title_fontsize=9,
               frameon=False)
    fig.legend(handles=backend_key, title="backend (marker)", loc="outside right lower", fontsize=8,
               title_fontsize=9, frameon=False)
    fig.savefig(path, dpi=120)
    plt.close(fig)
