"""`kdedge export`: a student folder -> a bundle folder (model.onnx, tokenizer, config, manifest.json).

Every export is verified against the PyTorch student: an fp32 bundle whose logits differ by more than
`--tolerance` is not written; int8/fp16 bundles report agreement and their dev metric.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from pathlib import Path

import click
import numpy as np
import onnx

from kdedge.config import RECORDED_DATA_FIELDS, ExportConfig, to_dict
from kdedge.data import compute_metrics, load_task_data
from kdedge.data.batching import encode
from kdedge.data.tasks import file_layout
from kdedge.data.recorded import model_data_options
from kdedge.errors import KdedgeError
from kdedge.models.students import load_student
from kdedge.onnx import keep_float
from kdedge.onnx.export import EXPORTERS, ONNX_FILE
from kdedge.onnx.first_token import first_token_only
from kdedge.onnx.parity import compare, cpu_session, onnx_logits
from kdedge.onnx.positions import trim_positions
from kdedge.onnx.quantize import optimize_transformer, quantize, to_fp16
from kdedge.outputs import RunDir, library_versions, sha256_file, write_json
from kdedge.quant.qat import strip_qat, trained_for_first_token
from kdedge.training import eval_loader, predict_logits
from kdedge_runtime.classifier import scoring_batch_size
from kdedge_runtime.cpu import INT8_FLAGS, preset_for, read_cpu

BUNDLE_FORMAT = "kdedge-bundle/1"
# Bumped when the graph an export writes changes (so caches of exports, the bench's teacher, are not reused across
# it). 2: the nodes after the last attention run on the pooled position only (kdedge.onnx.first_token).
GRAPH_REVISION = 2
# Files of the student folder that the bundle does not need at run time.
_TRAINING_ONLY = ("model.safetensors", "student.json", "metrics.json", "manifest.json", "train_log.jsonl")
# A slow tokenizer's vocabulary files: tokenizer.json holds all of it, and every reader of a bundle (both runtimes,
# transformers' fast tokenizers, optimum's pipeline, transformers.js) loads tokenizer.json.
_SLOW_TOKENIZER_FILES = ("vocab.txt", "vocab.json", "merges.txt")


def export_bundle(cfg: ExportConfig) -> Path:
    student_dir = Path(cfg.model)
    student = load_student(student_dir)
    arch = student.meta["architecture"]
    if cfg.fp16 and cfg.quantize != "none":
        raise KdedgeError("--fp16 and --quantize are alternatives: choose one")
    if cfg.exporter == "optimum" and arch != "tinybert":
        raise KdedgeError(f"--exporter optimum exports transformer students; the {arch} student goes through "
                          "torch.onnx (drop --exporter)")
    if cfg.optimize and arch != "tinybert":
        raise KdedgeError(f"--optimize fuses transformer ops; the {arch} student has none (drop --optimize)")
    if cfg.quantize == "qat" and not student.meta.get("qat"):
        raise KdedgeError(f"{student_dir} was not trained quantization-aware: distil it with --qat, or use "
                          "--quantize dynamic|static")
    if cfg.quantize == "qat" and cfg.optimize:
        raise KdedgeError("--quantize qat reproduces the trained scheme on the plain graph; drop --optimize")
    if cfg.quantize == "qat" and trained_for_first_token(student.meta.get("qat")) and not cfg.first_token:
        raise KdedgeError(f"{student_dir} was trained quantization-aware for the first-token graph (its last layer's "
                          "int8 ranges are the first token's): drop --no-first-token")
    if cfg.keep_float != "none" and (cfg.quantize != "dynamic" or arch == "ngram"):
        raise KdedgeError(f"--keep-float needs --quantize dynamic, not --quantize {cfg.quantize}" if arch != "ngram"
                          else "--keep-float: the n-gram student's int8 leaves its head in float already; drop it")
    if student.meta.get("qat") and cfg.quantize != "qat":
        strip_qat(student.model)  # other exports compare against the float model
    data_options = model_data_options(student_dir, student.meta["task"]["name"], cfg)
    data = load_task_data(data_options, train_optional=not _needs_calibration(cfg))
    if list(data.task.label_names) != list(student.meta["task"]["label_names"]):
        raise KdedgeError(f"the student predicts {student.meta['task']['label_names']} but the task's labels are "
                          f"{list(data.task.label_names)}")
    started = time.time()
    run = RunDir(cfg.out, overwrite=cfg.overwrite, resume=False, resumable=False)
    try:
        manifest = _build(cfg, student, student_dir, data, run.work)
        manifest["data"] = {k: getattr(data_options, k) for k in RECORDED_DATA_FIELDS}
        manifest["file_layout"] = file_layout(data.task, data_options.text_column, data_options.text_pair_column,
                                              data_options.label_column)
    except BaseException:
        shutil.rmtree(run.work, ignore_errors=True)  # no half-written bundle
        raise
    manifest["export_time_s"] = round(time.time() - started, 2)
    write_json(run.work / "manifest.json", manifest)
    return run.finalize()


def _build(cfg: ExportConfig, student, student_dir: Path, data, work: Path) -> dict:
    max_length = student.meta["max_length"]
    transforms = _write_model(cfg, student, student_dir, data, work, max_length)
    session = cpu_session(work / ONNX_FILE)
    parity, dev = _verify(cfg, student, data, session, max_length)
    precision = "int8" if cfg.quantize != "none" else ("fp16" if cfg.fp16 else "fp32")
    task = data.task
    return {
        "format": BUNDLE_FORMAT,
        "task": task.to_dict(),
        "label_names": list(task.label_names),
        "architecture": student.meta["architecture"],
        "parameters": sum(p.numel() for p in student.model.parameters()),
        "max_length": max_length,
        "tokenizer": {"file": "tokenizer.json", "add_special_tokens": student.add_special_tokens,
                      "pair_encoding": "separate" if student.siamese else ("joint" if task.is_pair else None),
                      "pad_token_id": student.tokenizer.pad_token_id,
                      # a tokenizer with rules of its own (the n-gram student's) names its file and its rules
                      **getattr(student.tokenizer, "bundle_entry", dict)()},
        "inputs": [{"name": i.name, "dtype": "int64", "shape": [str(d) for d in i.shape]} for i in session.get_inputs()],
        "outputs": [{"name": o.name, "dtype": "float32", "shape": [str(d) for d in o.shape]}
                    for o in session.get_outputs()],
        "opset": cfg.opset,
        "precision": precision,
        "quantization": transforms.get("quantization", {"scheme": "none"}),
        "transforms": {k: v for k, v in transforms.items() if k != "quantization"},
        "dev": dev,
        "parity": parity,
        "files": {ONNX_FILE: {"sha256": sha256_file(work / ONNX_FILE), "bytes": (work / ONNX_FILE).stat().st_size}},
        "student": {"path": str(student_dir), "meta": student.meta},
        "config": to_dict(cfg),
        "versions": library_versions(),
    }


def _write_model(cfg: ExportConfig, student, student_dir: Path, data, work: Path, max_length: int) -> dict:
    """Export, then optimize / quantize / fp16 as asked; write model.onnx and the run-time files into `work`."""
    arch = student.meta["architecture"]
    transforms = {}
    student_dir, work = student_dir.resolve(), work.resolve()
    # ONNX Runtime's tools write temp files into the current directory (symbolic shape inference dumps
    # sym_shape_infer_temp.onnx and a <uuid>.data when it gives up); work inside a scratch directory.
    with tempfile.TemporaryDirectory(prefix="kdedge-export-") as tmp, contextlib.chdir(tmp):
        stage_dir = Path(tmp) / "export"
        stage_dir.mkdir()
        transforms["exporter"] = EXPORTERS[arch](student, student_dir, stage_dir, cfg.opset, exporter=cfg.exporter)
        current = stage_dir / ONNX_FILE
        # before the optimizer, which fuses the position table into its embedding op
        positions = trim_positions(current, current, max_length, getattr(student.tokenizer, "pad_token_id", None))
        if positions:
            transforms["positions"] = positions
        if cfg.optimize:
            optimized = Path(tmp) / "optimized.onnx"
            c = student.model.config
            transforms["optimize"] = optimize_transformer(current, optimized, num_heads=c.num_attention_heads,
                                                          hidden_size=c.hidden_size)
            shutil.copy(optimized, stage_dir / ONNX_FILE)  # quantizers read the folder (config.json beside it)
        # After the optimizer (whose attention fusion needs the full-length pattern), before any quantizer (which
        # then quantizes the graph that runs). A qat export reproduces the graph its student was trained for: a
        # student trained before the scheme ranged the last layer on the first token keeps every position (one
        # position's range would move its int8 logits, by 2e-4 on a tiny student).
        if cfg.first_token and (cfg.quantize != "qat" or trained_for_first_token(student.meta.get("qat"))):
            pooled = Path(tmp) / "first_token.onnx"
            transforms["first_token"] = first_token_only(current, pooled)
            shutil.copy(pooled, stage_dir / ONNX_FILE)
        if cfg.quantize != "none":
            quantized = Path(tmp) / "quantized.onnx"
            calibration = _calibration(cfg, student, data, max_length, current) if _needs_calibration(cfg) else []
            options = {"architecture": arch, "preset": _preset(cfg.preset), "calibration": calibration}
            kept, search = _keep_float(cfg, current, options, Path(tmp))
            transforms["quantization"] = quantize(cfg.quantize, current, quantized, keep_float=kept, **options)
            if search:
                transforms["quantization"]["keep_float_search"] = search
            if cfg.quantize == "dynamic" and cfg.preset == "auto":
                machine, flags = read_cpu()
                transforms["quantization"]["preset_chosen_for"] = {"machine": machine,
                                                                    "flags": sorted(flags & set(INT8_FLAGS))}
            current = quantized
        if cfg.fp16:
            half = Path(tmp) / "fp16.onnx"
            transforms["fp16"] = to_fp16(current, half)
            current = half
        shutil.copy(current, work / ONNX_FILE)
        for item in stage_dir.iterdir():  # tokenizer and (transformers) config.json written by the exporter
            if item.name != ONNX_FILE and item.is_file():
                shutil.copy(item, work / item.name)
    for item in student_dir.iterdir():  # the tokenizer files for exporters that did not copy them
        if item.is_file() and item.name not in _TRAINING_ONLY and not (work / item.name).exists() \
                and item.name != "config.json":
            shutil.copy(item, work / item.name)
    _compact_tokenizer(work)
    if "positions" in transforms:
        _cap_model_max_length(work, max_length)
    return transforms


def _cap_model_max_length(work: Path, max_length: int) -> None:
    """transformers' tokenizer (optimum, pipeline()) truncates at tokenizer_config.json's model_max_length: the
    bundle's graph has position rows for max_length tokens only."""
    config = work / "tokenizer_config.json"
    if config.is_file():
        spec = json.loads(config.read_text(encoding="utf-8"))
        config.write_text(json.dumps({**spec, "model_max_length": max_length}, indent=2, ensure_ascii=False),
                          encoding="utf-8")


def _compact_tokenizer(work: Path) -> None:
    """tokenizer.json without indentation (a tenth of a small student's bundle was whitespace) and without the
    slow tokenizer's copies of its vocabulary."""
    tokenizer = work / "tokenizer.json"
    if not tokenizer.is_file():
        return
    spec = json.loads(tokenizer.read_text(encoding="utf-8"))
    tokenizer.write_text(json.dumps(spec, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    for name in _SLOW_TOKENIZER_FILES:
        (work / name).unlink(missing_ok=True)


def _preset(requested: str) -> str:
    """`auto`: the int8 preset of the CPU this export runs on."""
    return preset_for(*read_cpu()) if requested == "auto" else requested


def _verify(cfg: ExportConfig, student, data, session, max_length: int) -> tuple[dict, dict]:
    """Parity on the first `verify` dev rows and the dev metric of both models. The PyTorch reference of a
    --quantize qat export is the fake-quantized model the student was trained as."""
    features = encode(student.tokenizer, data.dev, max_length, siamese=student.siamese,
                      add_special_tokens=student.add_special_tokens)
    pad = student.tokenizer.pad_token_id
    # dynamic int8 scored one example at a time, and so the fake-quantized reference of a qat export
    onnx_batch_size = scoring_batch_size(cfg.quantize, cfg.batch_size)
    loader, order = eval_loader(features, onnx_batch_size if cfg.quantize == "qat" else cfg.batch_size, pad)
    torch_logits = predict_logits(student.model, loader, order, student.logits)
    exported_logits = onnx_logits(session, features, onnx_batch_size, pad)
    n = min(cfg.verify, len(features))
    parity = compare(torch_logits[:n], exported_logits[:n], data.task.is_regression)
    exact = cfg.quantize == "none" and not cfg.fp16
    parity.update({"tolerance": cfg.tolerance if exact else None, "passed": None})
    if exact:
        parity["passed"] = parity["max_abs_diff"] <= cfg.tolerance
        if not parity["passed"]:
            raise KdedgeError(
                f"the exported model's logits differ from PyTorch by up to {parity['max_abs_diff']:.2e} on "
                f"{n} dev examples (tolerance {cfg.tolerance:g}); no bundle was written"
            )
    dev = {"pytorch": compute_metrics(data.task, torch_logits, data.dev.labels),
           "onnx": compute_metrics(data.task, exported_logits, data.dev.labels), "examples": len(features),
           "onnx_batch_size": onnx_batch_size}
    return parity, dev


def _needs_calibration(cfg: ExportConfig) -> bool:
    return cfg.quantize == "static" or cfg.keep_float == "auto"


def _keep_float(cfg: ExportConfig, model: Path, options: dict, tmp: Path) -> tuple[list[str], dict | None]:
    """--keep-float: the nodes dynamic int8 leaves in float, and (auto) the search that chose them."""
    if cfg.keep_float == "none":
        return [], None
    if cfg.keep_float != "auto":
        return keep_float.select(model, [p.strip() for p in cfg.keep_float.split(",") if p.strip()]), None
    click.echo(f"--keep-float auto: searching on {len(options['calibration'])} training examples", err=True)
    search = keep_float.search(
        model, lambda kept, dst: quantize(cfg.quantize, model, dst, keep_float=kept, **options), options["calibration"],
        tmp)
    click.echo(f"--keep-float auto: {', '.join(search['nodes']) or 'no node'} of {search['candidates']} left in float "
               f"(relative error on the logits {' -> '.join(map(str, search['relative_error']))})", err=True)
    return search["nodes"], search


def _calibration(cfg: ExportConfig, student, data, max_length: int, model_path: Path) -> list[dict]:
    """`calibration_size` training examples (a seeded sample), one per batch at its real length."""
    rng = np.random.default_rng(cfg.seed)
    size = min(cfg.calibration_size, len(data.train))
    sample = data.train.select(np.sort(rng.choice(len(data.train), size=size, replace=False)))
    features = encode(student.tokenizer, sample, max_length, siamese=student.siamese,
                      add_special_tokens=student.add_special_tokens)
    input_names = [i.name for i in onnx.load(str(model_path), load_external_data=False).graph.input]
    batches = []
    for f in features:
        batches.append({k: np.asarray([f[k]], dtype=np.int64) for k in input_names if k in f})
    return batches
