"""The models a benchmark compares: bundles (ONNX), student folders and the teacher (PyTorch), described once
(name, format, precision, size, parameters, labels) for the jobs and the report."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from kdedge.errors import KdedgeError
from kdedge.outputs import sha256_file
from kdedge_runtime import BundleError, Classifier


@dataclass(frozen=True)
class BenchModel:
    name: str
    kind: str  # "onnx" or "torch": which backends run it
    path: str
    role: str  # "teacher" or "student"
    precision: str
    size_mb: float
    parameters: int | None
    task: str
    label_names: list[str]
    int8_preset: str | None = None  # the CPU family a dynamic int8 bundle was quantized for
    quantization: str | None = None  # a bundle's int8 scheme ("dynamic", "static", ...), None for float models

    def to_dict(self) -> dict:
        return asdict(self)


def bundle_model(path: str, role: str = "student", name: str | None = None) -> BenchModel:
    """A bundle, checked as the runtimes check it (a bundle is untrusted input)."""
    folder = Path(path)
    if not (folder / "manifest.json").is_file() or not (folder / "model.onnx").is_file():
        raise KdedgeError(f"{folder} is not a bundle (manifest.json and model.onnx): give a `kdedge export` folder")
    try:
        classifier = Classifier(folder)  # every check the runtimes make, before any job starts
    except BundleError as e:
        raise KdedgeError(str(e)) from None
    m, quantization = classifier.manifest, classifier.quantization
    return BenchModel(name or folder.name, "onnx", str(folder), role, str(m.get("precision", "unknown")),
                      (folder / "model.onnx").stat().st_size / 1e6, m.get("parameters"), m["task"]["name"],
                      list(m["label_names"]), quantization.get("preset"), quantization.get("scheme"))


def torch_model(path: str, role: str) -> BenchModel:
    folder = Path(path)
    meta_file = folder / ("student.json" if role == "student" else "manifest.json")
    if not meta_file.is_file() or not (folder / "model.safetensors").is_file():
        command = "kdedge distill" if role == "student" else "kdedge teacher"
        raise KdedgeError(f"{folder} is not a {role} folder ({meta_file.name} and model.safetensors): give a "
                          f"`{command}` output")
    meta = json.loads(meta_file.read_text())
    metrics_file = folder / "metrics.json"
    params = json.loads(metrics_file.read_text()).get("parameters") if metrics_file.is_file() else None
    return BenchModel(folder.name if role == "student" else "teacher", "torch", str(folder), role,
                      "fp32", (folder / "model.safetensors").stat().st_size / 1e6, params, meta["task"]["name"],
                      list(meta["task"]["label_names"]))


def teacher_bundles(teacher_dir: str, cfg, cache_dir: Path) -> list[BenchModel]:
    """The teacher exported to ONNX twice, fp32 and dynamic int8 with the preset of this CPU (what a user gets from
    optimum in one command, its embedding tables int8 per row as the students' are: the same speed, ONNX Runtime
    folds them at load), each once per teacher weights, so every student meets both on the same backend."""
    from kdedge.config import ExportConfig, ModelDataOptions
    from kdedge.onnx.bundle import GRAPH_REVISION, export_bundle
    from kdedge.onnx.quantize import DYNAMIC_REVISION
    from kdedge_runtime.cpu import preset_for, read_cpu

    weights = sha256_file(Path(teacher_dir) / "model.safetensors")[:24]
    preset = preset_for(*read_cpu())
    models = []
    graph = f"g{GRAPH_REVISION}"
    for name, quantize, key in (("teacher", "none", f"{weights}-fp32-{graph}"),
                                ("teacher-int8", "dynamic", f"{weights}-int8-{preset}-{graph}-r{DYNAMIC_REVISION}")):
        out = cache_dir / "teacher-onnx" / key
        out.parent.mkdir(parents=True, exist_ok=True)
        with _locked(out.with_name(key + ".lock")):  # another process (a second tune worker) may be exporting it
            if not (out / "manifest.json").is_file():
                data = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(ModelDataOptions)}
                export_bundle(ExportConfig(model=teacher_dir, out=str(out), overwrite=True, verify=64,
                                           quantize=quantize, preset=preset, **data))
        models.append(bundle_model(str(out), role="teacher", name=name))
    return models


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive advisory lock on `path` for the block (POSIX; elsewhere, no lock)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
