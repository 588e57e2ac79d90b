"""Benchmark bundles on the device they ship to, with nothing but this runtime (onnxruntime, tokenizers, numpy):

    python -m kdedge_runtime.bench STUDENT_BUNDLE [...] --data dev.tsv [--teacher TEACHER_INT8_BUNDLE] --out device.json
    kdedge-device-bench ...                                    (the same, as a console script)

For each bundle, in a fresh process of its own: load time and time to the first prediction, batch-1 and batched
latency (p50/p90/p99, throughput) of the model on the file's real inputs, the time an app sees per `predict()`
call of one text (tokenization and decoding included), the task metric on that file, bundle size and peak RSS. The file is read with the bundle's own column rules (recorded at export; --columns for another layout).
With --teacher (the teacher's int8 bundle, say), every student gets its retention and its speed-up against it
measured on this device. The report (--out, JSON, schema `kdedge-device-report/1`, checked on read by
`load_report`) also describes the device: CPU and the flags that decide int8 speed, cores, memory, OS, versions,
providers. `kdedge bench --device-report` merges it into a host report.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import itertools
import json
import multiprocessing
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from kdedge_runtime.classifier import BundleError, Classifier, read_manifest, scoring_batch_size
from kdedge_runtime.cpu import cpu_name, describe, preset_mismatch, read_cpu, verdict
from kdedge_runtime.data import DataError, read_labelled
from kdedge_runtime.metrics import METRICS, score
from kdedge_runtime.timing import measure, summarize

SCHEMA = "kdedge-device-report/1"
_LATENCY_FIELDS = ("runs", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "throughput")


class ReportError(ValueError):
    """A device report that is not one this version can read."""


# ----------------------------------------------------------------------------- one bundle, in its own process

def _peak_rss_mb() -> float | None:
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)  # bytes on macOS, KiB on Linux


def _checked_layout(manifest: dict) -> dict:
    """The manifest's task metrics and file layout, checked (a bundle is untrusted input)."""
    where = "the bundle's manifest.json"
    metrics = manifest["task"].get("metrics")
    if not (isinstance(metrics, list) and metrics and all(m in METRICS for m in metrics)):
        raise BundleError(f"{where}: field 'task.metrics' must be a list of {', '.join(METRICS)}")
    recorded = manifest.get("file_layout") or {}
    if not isinstance(recorded, dict):
        raise BundleError(f"{where}: field 'file_layout' must be an object")
    for key, ok in (("columns", lambda v: isinstance(v, list) and 2 <= len(v) <= 3
                     and all(isinstance(c, (str, int)) and not isinstance(c, bool) for c in v)),
                    ("header", lambda v: isinstance(v, bool)),
                    ("label_values", lambda v: v is None or (isinstance(v, list) and all(isinstance(x, str) for x in v)))):
        if key in recorded and not ok(recorded[key]):
            raise BundleError(f"{where}: field 'file_layout.{key}' is malformed")
    return recorded


def layout_of(manifest: dict, columns: list[str] | None, header: bool | None) -> tuple[list, bool, list | None]:
    """The columns, header flag and raw label values to read a labelled file with for this bundle."""
    recorded = _checked_layout(manifest)
    cols = columns or recorded.get("columns")
    if not cols:
        raise DataError("this bundle does not record its data file's columns (exported before kdedge recorded "
                        "them): give --columns TEXT[,PAIR],LABEL")
    positional = [int(c) if isinstance(c, str) and c.isdigit() else c for c in cols]
    label_values = recorded.get("label_values", manifest["label_names"] or None)
    if manifest["task"]["is_regression"]:
        label_values = None
    return positional, recorded.get("header", True) if header is None else header, label_values


def measure_bundle(job: dict) -> dict:
    """Everything measured on one bundle (run in a fresh process, so load time and peak RSS are its own)."""
    start = time.perf_counter()
    classifier = Classifier(job["bundle"], threads=job["threads"])
    loaded = time.perf_counter()
    manifest = classifier.manifest
    columns, header, label_values = layout_of(manifest, job["columns"], job["header"])
    texts, pairs, labels = read_labelled(Path(job["data"]), columns, header, label_values)
    if job["max_examples"]:
        texts, labels = texts[:job["max_examples"]], labels[:job["max_examples"]]
        pairs = pairs[:job["max_examples"]] if pairs is not None else None
    if (pairs is not None) != classifier.is_pair:
        raise DataError(f"{job['data']}: the bundle {'reads' if classifier.is_pair else 'does not read'} pairs, "
                        f"but the columns {columns} give {'two texts' if pairs is not None else 'one text'}")
    classifier.predict(texts[0], pairs[0] if pairs is not None else None)
    first = time.perf_counter()

    encoded = classifier.encode(texts, pairs)
    features = [{k: encoded[k][i] for k in classifier.input_names} for i in range(len(texts))]
    timing = {k: job[k] for k in ("warmup", "min_runs", "min_time", "max_runs")}
    latency = {}
    for size in sorted({1, job["batch_size"]}):
        feeds = [classifier.pad(features[i:i + size]) for i in range(0, max(1, len(features) - size + 1), size)]
        batches = itertools.cycle(feeds)  # each timed call takes the next real batch: the file's length mix
        latency[str(size)] = summarize(measure(lambda: classifier.run_batch(next(batches)), **timing), size)
    # what an app sees: predict() of one text (and pair), tokenization and decoding included
    examples = itertools.cycle(list(zip(texts, pairs if pairs is not None else [None] * len(texts))))
    per_call = summarize(measure(lambda: classifier.predict(*next(examples)), **timing), 1)
    quantization = classifier.quantization
    eval_batch_size = scoring_batch_size(quantization.get("scheme"), job["batch_size"])
    logits = classifier.logits(texts, pairs, batch_size=eval_batch_size)
    metrics = score(list(manifest["task"]["metrics"]), logits, labels, classifier.is_regression)
    preset = quantization.get("preset")
    extra = {"logits": np.round(logits, 6).tolist()} if job.get("with_logits") else {}
    return {
        **extra,
        "name": Path(job["bundle"]).name, "role": job["role"], "path": str(job["bundle"]),
        "model_sha256": manifest["files"]["model.onnx"]["sha256"], "task": manifest["task"]["name"],
        "architecture": manifest.get("architecture"), "precision": manifest.get("precision"),
        # who ran the model that `latency` times: ONNX Runtime, or the runtime's compiled n-gram model
        "model_engine": "compiled" if classifier.compiled else "onnxruntime",
        "parameters": manifest.get("parameters"), "quantization_preset": preset, "eval_batch_size": eval_batch_size,
        "preset_warning": preset_mismatch(preset, *read_cpu()) if preset else None,
        "size_mb": round(sum(f.stat().st_size for f in Path(job["bundle"]).rglob("*") if f.is_file()) / 1e6, 3),
        "metrics": metrics, "main_metric": manifest["task"]["metrics"][0], "examples": len(texts),
        "load_ms": (loaded - start) * 1000, "first_prediction_ms": (first - start) * 1000,
        "peak_rss_mb": _peak_rss_mb(), "latency": latency, "predict": per_call,
    }


def _in_fresh_process(job: dict) -> dict:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_guarded, (job,))


def _guarded(job: dict) -> dict:
    try:
        return measure_bundle(job)
    except (BundleError, DataError, ValueError) as e:  # one line for the parent to report
        return {"error": f"{type(e).__name__}: {e}"}


# How the bundles are isolated from each other: a fresh process each (load time and peak RSS their own), or one
# process for all (where a child interpreter cannot be started, e.g. under qemu-user without binfmt).
ISOLATION = {"process": _in_fresh_process, "none": _guarded}


# ----------------------------------------------------------------------------- the report

def _versions() -> dict:
    found = {"python": platform.python_version()}
    for name in ("kdedge-runtime", "kdedge", "onnxruntime", "tokenizers", "numpy"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def describe_device(name: str | None = None) -> dict:
    import onnxruntime as ort

    return {"name": name or platform.node() or describe()["model"], "cpu": describe(), "os": platform.platform(),
            "versions": _versions(), "providers": ort.get_available_providers()}


def run(bundles: list[str], data: str, *, teacher: str | None = None, device_name: str | None = None,
        columns: list[str] | None = None,
        header: bool | None = None, batch_size: int = 32, threads: int | None = None, warmup: int = 10,
        min_runs: int = 50, min_time: float = 2.0, max_runs: int = 100_000, max_examples: int | None = None,
        isolation: str = "process", with_logits: bool = False) -> dict:
    if not Path(data).is_file():
        raise DataError(f"data file not found: {data}")
    settings = {"batch_size": batch_size, "threads": threads, "warmup": warmup, "min_runs": min_runs,
                "min_time": min_time, "max_runs": max_runs, "max_examples": max_examples, "isolation": isolation}
    rows = []
    for role, bundle in [("teacher", teacher)] * bool(teacher) + [("student", b) for b in bundles]:
        read_manifest(Path(bundle))  # a bad bundle stops the run before anything is timed
        row = ISOLATION[isolation]({**settings, "bundle": bundle, "role": role, "data": data, "columns": columns,
                                    "header": header, "with_logits": with_logits})
        if "error" in row:
            raise BundleError(f"{bundle}: {row['error']}")
        rows.append(row)
    if len({r["task"] for r in rows}) > 1:
        raise BundleError(f"the bundles are for different tasks ({', '.join(sorted({r['task'] for r in rows}))}); "
                          "benchmark one task per report")
    base = rows[0] if teacher else None
    for row in rows:
        if base is not None:
            main = base["main_metric"]
            row["retention"] = row["metrics"][main] / base["metrics"][main] if base["metrics"][main] else None
            row["speedup_vs_teacher"] = {b: base["latency"][b]["p50_ms"] / row["latency"][b]["p50_ms"]
                                         for b in row["latency"] if b in base["latency"]}
    digest = hashlib.sha256(Path(data).read_bytes()).hexdigest()
    return {"schema": SCHEMA, "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "device": describe_device(device_name), "settings": settings,
            "data": {"file": Path(data).name, "sha256": digest, "rows": rows[0]["examples"]},
            "teacher": base["name"] if base else None, "bundles": rows}


_MAX_DEPTH = 32  # a real report nests 6 levels; deeper values are refused before any reader (or repr) recurses
_MISSING = object()


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# What each field a reader uses must be: a description for the message, and the test.
_KINDS = {
    "object": ("a JSON object", lambda v: isinstance(v, dict)),
    "list": ("a JSON list", lambda v: isinstance(v, list)),
    "string": ("a string", lambda v: isinstance(v, str)),
    "string or null": ("a string or null", lambda v: v is None or isinstance(v, str)),
    "number": ("a number", _is_number),
    "number or null": ("a number or null", lambda v: v is None or _is_number(v)),
    "positive": ("a positive finite number", lambda v: _is_number(v) and 0 < v < float("inf")),
    "count": ("a non-negative integer", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0),
    "count or null": ("a positive integer or null",
                      lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v > 0)),
}
# (path, kind, required) of every field `kdedge bench --device-report` (kdedge/bench/device.py, its report rows and
# report.md) and this module's `table` read, outside the bundles
_REPORT_FIELDS = (
    ("data", "object", True), ("data.file", "string", True), ("data.sha256", "string", True),
    ("data.rows", "count", True), ("device", "object", True), ("device.name", "string or null", False),
    ("device.os", "string", True), ("device.versions", "object", True),
    ("device.versions.onnxruntime", "string or null", False), ("device.cpu", "object", True),
    ("device.cpu.model", "string or null", False), ("device.cpu.identity", "string or null", False),
    ("device.cpu.machine", "string", True), ("device.cpu.usable_cpus", "count", True),
    ("device.cpu.int8_preset", "string", True), ("device.cpu.flags", "object", True), ("settings", "object", True),
    ("settings.threads", "count or null", False), ("settings.batch_size", "count or null", False),
    ("bundles", "list", True),
)
_BUNDLE_FIELDS = (
    ("name", "string", True), ("role", "string", True), ("model_sha256", "string", True), ("metrics", "object", True),
    ("main_metric", "string", True), ("latency", "object", True), ("size_mb", "number", True),
    ("load_ms", "number or null", False), ("peak_rss_mb", "number or null", False),
    ("predict", "object", False),  # predict() per call; reports written before it was measured lack it
)
_LATENCY_KINDS = {"runs": "count", **{f: "positive" for f in _LATENCY_FIELDS if f != "runs"}}


def _json(value) -> str:  # a value as a message shows it: JSON, ASCII (so one line), short
    return json.dumps(value, ensure_ascii=True)[:60]


def _name(key: str) -> str:
    return json.dumps(key, ensure_ascii=True)[1:-1]  # a key from the file, on one line


def _field(parent: dict, key: str, where: str, kind: str, required: bool = True):
    value = parent.get(key, _MISSING)
    if value is _MISSING:
        if required:
            raise ReportError(f"field '{where}' is missing")
        return None
    description, accepts = _KINDS[kind]
    if not accepts(value):
        raise ReportError(f"field '{where}' must be {description}, not {_json(value)}")
    return value


def _check_depth(report) -> None:
    """Refuse values nested deeper than _MAX_DEPTH (walked without recursion), naming the first."""
    stack = [(report, "", 0)]
    while stack:
        value, where, depth = stack.pop()
        if depth > _MAX_DEPTH:
            shown = where if len(where) <= 80 else where[:80] + "…"
            raise ReportError(f"field '{shown}' is nested more than {_MAX_DEPTH} levels deep")
        if isinstance(value, dict):
            stack += [(v, f"{where}.{_name(str(k))}" if where else _name(str(k)), depth + 1) for k, v in value.items()]
        elif isinstance(value, list):
            stack += [(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]


def validate_report(report: object) -> dict:
    """The report, if it is a device report this version reads; else ReportError naming the first field that is
    wrong. Every field a reader uses is checked (its presence and its type, numbers finite and positive where they
    are divided by or shown on a log scale), so a report that passes never fails in `kdedge bench`."""
    if not isinstance(report, dict):
        raise ReportError("a device report is a JSON object")
    _check_depth(report)
    schema = report.get("schema")
    if schema != SCHEMA:
        newer = isinstance(schema, str) and schema.startswith("kdedge-device-report/")
        raise ReportError(f"schema {schema!r:.60} is not {SCHEMA!r}" + (
            ": it comes from a newer kdedge-runtime; update kdedge" if newer else ""))
    for where, kind, required in _REPORT_FIELDS:
        parent = report
        *parents, key = where.split(".")
        for name in parents:
            parent = parent[name]  # checked before its own fields: an object
        _field(parent, key, where, kind, required)
    for i, row in enumerate(report["bundles"]):
        where = f"bundles[{i}]"
        if not isinstance(row, dict):
            raise ReportError(f"field '{where}' must be a JSON object, not {_json(row)}")
        for key, kind, required in _BUNDLE_FIELDS:
            _field(row, key, f"{where}.{key}", kind, required)
        for name, value in row["metrics"].items():  # null: a metric not defined on these predictions (Node's NaN)
            if not (value is None or _is_number(value)):
                raise ReportError(f"field '{where}.metrics.{_name(name)}' must be a number, not {_json(value)}")
        if row["main_metric"] not in row["metrics"]:
            raise ReportError(f"field '{where}.main_metric' is {_json(row['main_metric'])}, which "
                              f"'{where}.metrics' does not hold")
        if row["metrics"][row["main_metric"]] is None:  # the retention divides by it
            raise ReportError(f"field '{where}.metrics.{_name(row['main_metric'])}' (the main metric) must be a "
                              "number, not null")
        if not row["latency"]:
            raise ReportError(f"field '{where}.latency' is empty")
        for name, kind in _LATENCY_KINDS.items() if "predict" in row else ():
            _field(row["predict"], name, f"{where}.predict.{name}", kind)
        for batch, summary in row["latency"].items():
            at = f"{where}.latency.{_name(batch)}"
            if not (batch.isascii() and batch.isdigit() and 0 < int(batch) < 2**31):
                raise ReportError(f"field '{at}' is not named by a batch size (a positive integer)")
            if not isinstance(summary, dict):
                raise ReportError(f"field '{at}' must be a JSON object, not {_json(summary)}")
            for name, kind in _LATENCY_KINDS.items():
                _field(summary, name, f"{at}.{name}", kind)
    return report


def load_report(path: str | Path) -> dict:
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ReportError(f"{path}: not a readable JSON file ({e})") from None
    except RecursionError:  # Python's JSON reader recurses once per level
        raise ReportError(f"{path}: not a readable JSON file (nested too deeply)") from None
    try:
        return validate_report(report)
    except ReportError as e:
        raise ReportError(f"{path}: {e}") from None


def table(report: dict) -> str:
    cpu = report["device"]["cpu"]
    size = str(report["settings"]["batch_size"])
    lines = [f"Device: {report['device']['name']}: {cpu_name(cpu)} ({cpu['machine']}), {cpu['usable_cpus']} CPUs, {cpu['memory_gb']} GiB; "
             + ", ".join(f for f, v in cpu["flags"].items() if v), verdict(cpu),
             f"Data: {report['data']['file']} ({report['data']['rows']} rows); threads: "
             f"{report['settings']['threads'] or 'default'}", "",
             f"| bundle | precision | MB | metric | retention | p50 ms (b=1) | p99 ms (b=1) | predict() p50 ms "
             f"| ex/s (b={size}) | speed-up (b=1) | load ms | peak RSS MB |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["bundles"]:
        one, batched = r["latency"]["1"], r["latency"].get(size, r["latency"]["1"])
        retention = r.get("retention")
        speedup = (r.get("speedup_vs_teacher") or {}).get("1")
        per_call = f"{r['predict']['p50_ms']:.3f}" if "predict" in r else "–"  # a report from before it was measured
        lines.append(f"| {r['name']}{' (teacher)' if r['role'] == 'teacher' else ''} | {r['precision']} "
                     f"| {r['size_mb']:.2f} | {r['metrics'][r['main_metric']]:.4f} "
                     f"| {'–' if retention is None else f'{retention:.3f}'} | {one['p50_ms']:.3f} | {one['p99_ms']:.3f} "
                     f"| {per_call} "
                     f"| {batched['throughput']:.0f} | {'–' if speedup is None else f'{speedup:.1f}×'} "
                     f"| {r['load_ms']:.0f} | {r['peak_rss_mb']} |")
    warnings = [f"warning: {r['name']}: {r['preset_warning']}" for r in report["bundles"] if r.get("preset_warning")]
    return "\n".join(lines + ([""] + warnings if warnings else []))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kdedge-device-bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("bundles", nargs="+", help="student bundle folders")
    parser.add_argument("--data", required=True, help="a labelled CSV/TSV/JSONL file of the bundles' task")
    parser.add_argument("--teacher", help="the teacher's bundle (e.g. its int8 export): retention and speed-ups")
    parser.add_argument("--device-name", help="what to call this device in merged reports (default: the host name)")
    parser.add_argument("--columns", help="TEXT[,PAIR],LABEL: column names (or 0-based positions with "
                                          "--no-header) when the file's layout is not the bundle's")
    parser.add_argument("--no-header", action="store_true", help="the file has no header row")
    parser.add_argument("--batch-size", type=int, default=32, help="the batched latency's size (default 32)")
    parser.add_argument("--threads", type=int, help="intra-op threads (default: ONNX Runtime's)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--min-runs", type=int, default=50)
    parser.add_argument("--min-time", type=float, default=2.0, help="seconds of timed runs at least")
    parser.add_argument("--max-examples", type=int, help="score and time the first N rows only")
    parser.add_argument("--one-process", action="store_true", help="measure every bundle in this process (where "
                        "a child interpreter cannot start, e.g. under qemu-user): load time and peak RSS then "
                        "include the bundles before")
    parser.add_argument("--with-logits", action="store_true", help="store every example's logits in the report "
                        "(to compare two devices)")
    parser.add_argument("--out", help="write the device report (JSON) here")
    args = parser.parse_args(argv)
    for name in ("batch_size", "threads", "min_runs", "max_examples"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0 or args.min_time < 0:
        parser.error("--warmup and --min-time cannot be negative")
    try:
        report = run(args.bundles, args.data, teacher=args.teacher, device_name=args.device_name,
                     columns=args.columns.split(",") if args.columns else None,
                     header=False if args.no_header else None, batch_size=args.batch_size, threads=args.threads,
                     warmup=args.warmup, min_runs=args.min_runs, min_time=args.min_time,
                     max_examples=args.max_examples, isolation="none" if args.one_process else "process",
                     with_logits=args.with_logits)
    except (BundleError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.out:
        out = Path(args.out)
        partial = out.with_name(out.name + ".partial")
        partial.write_text(json.dumps(report, indent=1))
        partial.replace(out)
    print(table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
