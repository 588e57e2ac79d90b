"""`kdedge bench`: every model on every backend that runs it, each pair in its own process, then the report."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

from kdedge.bench.backends import parse_backends
from kdedge.bench.device import device_rows
from kdedge.bench.environment import environment
from kdedge.bench.models import BenchModel, bundle_model, teacher_bundles, torch_model
from kdedge.bench.report import build_rows, check_gates, parse_retention_gates, write_report
from kdedge.bench.rounds import median_over_rounds, round_order
from kdedge.config import BenchConfig, to_dict
from kdedge.data import load_task_data
from kdedge.data.evalsets import describe as describe_sets
from kdedge.data.evalsets import load_eval_sets
from kdedge.data.recorded import model_data_options
from kdedge.errors import KdedgeError
from kdedge.models.teacher_cache import default_cache_dir
from kdedge.outputs import RunDir, manifest, read_json, sha256_file, write_json
from kdedge_runtime.cpu import preset_mismatch, read_cpu


def run_bench(cfg: BenchConfig) -> tuple[Path, list[str]]:
    """Writes the report folder; returns it and the gate failures (empty when every gate passes)."""
    backends = parse_backends(cfg.backends)
    batch_sizes, seq_lens = cfg.int_list("batch_sizes"), cfg.int_list("seq_lens")
    models = [bundle_model(b) for b in cfg.bundle or ()] + [torch_model(s, "student") for s in cfg.student or ()]
    if cfg.teacher:
        models.insert(0, torch_model(cfg.teacher, "teacher"))
    if not models:
        raise KdedgeError("nothing to benchmark: give --bundle, --student and/or --teacher")
    _check_distinct_names(models, with_teacher_exports=bool(cfg.teacher))
    tasks = sorted({m.task for m in models})
    if len(tasks) > 1:
        raise KdedgeError(f"the models were trained on different tasks ({', '.join(tasks)}): benchmark one task per run")
    data_options = model_data_options(Path(models[0].path), tasks[0], cfg)
    data = load_task_data(data_options, train_optional=True)
    eval_sets = load_eval_sets(data.task, data_options, cfg.eval_file, cfg.max_eval_samples)
    gates = parse_retention_gates(cfg.min_retention, list(eval_sets))
    for m in models:
        if m.label_names != list(data.task.label_names):
            raise KdedgeError(f"{m.path} predicts {m.label_names} but {data.task.name} has labels "
                              f"{list(data.task.label_names)}")
    warnings = preset_warnings(models) + fusion_warnings(models)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    with RunDir(cfg.out, overwrite=cfg.overwrite, resume=cfg.resume) as run:  # a refusal leaves no folder
        env = environment()
        finished = FinishedJobs(run.work / "stage-jobs", env)
        started = time.time()
        if cfg.teacher and any(b.kind == "onnx" and b.unavailable() is None for b in backends):
            click.echo("exporting the teacher to fp32 and int8 ONNX for the ort-* backends (cached)")
            models[1:1] = teacher_bundles(cfg.teacher, cfg, default_cache_dir())
        identities = [_identity(m) for m in models]
        identity = {m.name: i for m, i in zip(models, identities)}
        # device reports are checked before any job runs: a report for other bundles or data stops the bench now
        on_devices = device_rows(cfg.device_report or (), [{**m.to_dict(), **i} for m, i in zip(models, identities)],
                                 data.dev.source, len(data.dev))
        jobs = [(model, backend) for model in models for backend in backends if backend.kind == model.kind]
        results = []
        with tempfile.TemporaryDirectory() as tmp:
            unavailable = {b.name: b.unavailable() for b in backends}  # said once, without a worker process each
            for model, backend in jobs:
                if unavailable[backend.name]:
                    results.append({"model": model.to_dict(), "backend": backend.name, "status": "unavailable",
                                    "why": unavailable[backend.name]})
                    continue
                job = bench_job(cfg, model, backend.name, data, eval_sets, batch_sizes, seq_lens)
                results.append({"model": model.to_dict(), "backend": backend.name,
                                **finished.run(job, identity[model.name], 0, Path(tmp),
                                               f"{model.name} on {backend.name}")})
            warnings += time_more_rounds(cfg, jobs, results, data, batch_sizes, seq_lens, Path(tmp),
                                         finished, [identity[m.name] for m, _ in jobs])
        rows = build_rows(results, data.task, data.dev.labels, on_devices,
                          {n: s.labels for n, s in eval_sets.items()})
        report = {"config": to_dict(cfg), "environment": env, "task": data.task.to_dict(),
                  "dev_examples": len(data.dev), "eval_sets": describe_sets(eval_sets), "rows": rows,
                  "warnings": warnings, "wall_time_s": round(time.time() - started, 1)}
        write_report(run.work, report)
        failures = check_gates(rows, gates, cfg.max_p99_ms)
        write_json(run.work / "gates.json", {"min_retention": gates, "max_p99_ms": cfg.max_p99_ms,
                                             "failures": failures})
        summary = [{**{k: r.get(k) for k in ("model", "backend", "precision", "status", "p50_ms", "metric",
                                             "retention")},
                    **({"eval": {n: {k: v for k, v in e.items() if k != "metrics"} for n, e in r["eval"].items()}}
                       if r.get("eval") else {})} for r in rows]
        write_json(run.work / "manifest.json", manifest(
            "bench", to_dict(cfg),
            inputs={**data.describe(), "eval_sets": describe_sets(eval_sets), "models": identities},
            metrics={"rows": summary, "gate_failures": failures}, wall_time_s=report["wall_time_s"]))
        return run.finalize(), failures


def _check_distinct_names(models: list, with_teacher_exports: bool) -> None:
    """Rows, tables and speed-ups are keyed by model name: two models of one name would both be timed and the
    report would keep one row for them. The teacher's ONNX exports take the names teacher and teacher-int8."""
    names = [m.name for m in models] + (["teacher-int8"] if with_teacher_exports else [])
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice:
        sources = [m.path for m in models if m.name == twice] + (["the teacher's int8 export"] * (twice == "teacher-int8"))
        raise KdedgeError(f"two models are named {twice} ({', '.join(sources)}): give each bundle or student once, "
                          "and rename a folder that has another model's name")


def preset_warnings(models: list[BenchModel]) -> list[str]:
    """One line per int8 bundle whose quantization preset does not suit the CPU it is timed on."""
    machine, flags = read_cpu()
    found = ((m, preset_mismatch(m.int8_preset, machine, flags)) for m in models if m.int8_preset)
    return [f"{m.name}: {why}" for m, why in found if why]


def fusion_warnings(models: list[BenchModel]) -> list[str]:
    """One line per bundle whose graph has a fused node that ONNX Runtime's CPU provider runs slower than the
    operations it replaces (kdedge.onnx.quantize.UNFUSED): an `--optimize` export made before kdedge left them out."""
    import onnx

    from kdedge.onnx.quantize import UNFUSED

    lines = []
    for m in models:
        if m.kind == "onnx":
            ops = {n.op_type for n in onnx.load(str(Path(m.path) / "model.onnx"), load_external_data=False).graph.node}
            if slow := [op for op in UNFUSED if op in ops]:
                lines.append(f"{m.name}: its graph has {' and '.join(slow)} nodes, which ONNX Runtime's CPU provider runs "
                             "slower than the operations they fuse; export it again with this kdedge, which leaves them out")
    return lines


def _identity(model: BenchModel) -> dict:
    """What was measured: the model's folder, the sha256 of its weights and of its other files (the tokenizer, the
    manifest, ...)."""
    folder = Path(model.path)
    weights = folder / ("model.onnx" if model.kind == "onnx" else "model.safetensors")
    others = {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file() and p != weights}
    return {"name": model.name, "role": model.role, "kind": model.kind, "path": model.path,
            "weights_sha256": sha256_file(weights), "files_sha256": others}


def bench_job(cfg: BenchConfig, model: BenchModel, backend: str, data, eval_sets: dict, batch_sizes, seq_lens) -> dict:
    return {"model": model.to_dict(), "backend": backend, "threads": cfg.threads, "batch_sizes": batch_sizes,
            "seq_lens": seq_lens, "warmup": cfg.warmup, "min_runs": cfg.min_runs, "min_time": cfg.min_time,
            "max_runs": cfg.max_runs, "eval_batch_size": cfg.eval_batch_size, "accuracy": cfg.accuracy,
            "texts": list(data.dev.text), "pairs": None if data.dev.text_pair is None else list(data.dev.text_pair),
            "eval_sets": {name: {"texts": list(s.text), "pairs": None if s.text_pair is None else list(s.text_pair)}
                          for name, s in eval_sets.items()}}


def time_more_rounds(cfg: BenchConfig, jobs: list, results: list[dict], data, batch_sizes, seq_lens,
                     tmp: Path, finished: FinishedJobs, identities: list[dict]) -> list[str]:
    """Rounds 2..N of --rounds (latency only), then each result's latency is the median over its rounds; returns a
    warning per round that failed (the row keeps the rounds that ran)."""
    rounds = {i: [r["latency"]] for i, r in enumerate(results) if r["status"] == "ok"}
    warnings = []
    for round_index in range(1, cfg.rounds):
        for i in (i for i in round_order(len(jobs), round_index) if i in rounds):
            model, backend = jobs[i]
            job = {**bench_job(cfg, model, backend.name, data, {}, batch_sizes, seq_lens), "accuracy": False}
            result = finished.run(job, identities[i], round_index, tmp,
                                  f"{model.name} on {backend.name}, round {round_index + 1}/{cfg.rounds}")
            if result["status"] == "ok":
                rounds[i].append(result["latency"])
            else:
                warnings.append(f"{model.name} on {backend.name}: round {round_index + 1} {result['status']}: "
                                f"{result.get('why')}")
    for i, latencies in rounds.items():
        results[i]["latency"] = median_over_rounds(latencies)
    return warnings


class FinishedJobs:
    """The jobs an interrupted bench finished, kept in its .partial folder (stage-jobs/, dropped when the report is
    written) so that --resume does not run them again. A job's key covers all it measured: its options and texts,
    the model's files, the round, and the machine and library versions it ran on."""

    def __init__(self, folder: Path, context: dict):
        self.folder = folder  # made at the first job kept: until then a refused run leaves nothing to resume
        self.context = context

    def run(self, job: dict, identity: dict, round_index: int, tmp: Path, label: str) -> dict:
        key = hashlib.sha256(json.dumps([job, identity, round_index, self.context], sort_keys=True,
                                        default=str).encode()).hexdigest()[:32]
        path = self.folder / f"{key}.json"
        if path.is_file():
            click.echo(f"{label}: finished before the interruption")
            return read_json(path)
        click.echo(f"{label} ...")
        result = run_in_process(job, tmp)
        if result.get("status") == "ok":  # a failed job runs again on --resume
            self.folder.mkdir(exist_ok=True)
            write_json(path, result)
        return result


def run_in_process(job: dict, tmp: Path) -> dict:
    """A fresh interpreter per job: no model warms the caches or thread pools of another."""
    job_file, result_file = tmp / "job.json", tmp / "result.json"
    job_file.write_text(json.dumps(job))
    result_file.unlink(missing_ok=True)
    proc = subprocess.run([sys.executable, "-m", "kdedge.bench.worker", str(job_file), str(result_file)],
                          capture_output=True, text=True)
    if proc.returncode != 0 or not result_file.is_file():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        return {"status": "error", "why": f"worker exited with {proc.returncode}: {tail}"}
    return json.loads(result_file.read_text())
