"""Backends by name: where a model runs. Each says why it cannot run here instead of failing.

`kind` is the model format a backend runs: "torch" (student and teacher folders) or "onnx" (bundles).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Backend:
    name: str
    kind: str
    device: str  # "cpu" or "cuda"
    unavailable: Callable[[], str | None]  # None when usable here, else the reason
    provider: str | None = None  # the ONNX Runtime execution provider
    engine: str | None = None  # what runs the model (the bench worker's model class); None: the kind's own
    dtype: str = "float32"  # torch backends: the dtype the weights are cast to for inference


def _torch_cpu() -> str | None:
    try:
        import torch  # noqa: F401
    except ImportError:
        return "PyTorch is not installed"
    return None


def _torch_cuda() -> str | None:
    try:
        import torch
    except ImportError:
        return "PyTorch is not installed"
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU-only build"
    if not torch.cuda.is_available():
        return "torch sees no CUDA device"
    return None


def _ort_provider(provider: str, package: str, needs_gpu: bool) -> Callable[[], str | None]:
    def check() -> str | None:
        import onnxruntime as ort

        if provider not in ort.get_available_providers():
            return f"onnxruntime {ort.__version__} has no {provider} (install {package})"
        if needs_gpu and not _nvidia_gpu():
            return f"{provider} is installed but no NVIDIA GPU is visible"
        return None

    return check


def _ort_openvino() -> str | None:
    """OpenVINO inside ONNX Runtime: the onnxruntime-openvino build, or the onnxruntime-ep-openvino plugin beside
    the standard onnxruntime. The plugin offers Intel devices only (it matches ONNX Runtime's devices on Intel's
    PCI vendor id), so on other CPUs it registers and lists nothing: say so."""
    import onnxruntime as ort

    from kdedge_runtime import plugins

    provider = "OpenVINOExecutionProvider"
    if not plugins.is_plugin(provider):  # the onnxruntime-openvino build has it built in
        return None
    why = plugins.register(provider)
    if why:
        return f"onnxruntime {ort.__version__} has no {provider} ({why}: install onnxruntime-ep-openvino)"
    if plugins.devices(provider):
        return None
    vendor = plugins.cpu_vendor()
    cpu = f"this CPU's vendor is {vendor[0]} (PCI id 0x{vendor[1]:04x})" if vendor else "this machine lists none"
    return (f"onnxruntime-ep-openvino registered but offers no device: it lists Intel devices only (PCI vendor "
            f"0x8086) and {cpu}; openvino-cpu runs OpenVINO's CPU plugin on any x86-64 CPU")


def _openvino_runtime() -> str | None:
    try:
        import openvino
    except ImportError:
        return "the openvino runtime is not installed (pip install openvino)"
    devices = openvino.Core().available_devices
    return None if "CPU" in devices else f"OpenVINO {openvino.__version__} sees no CPU device (only {devices})"


def _nvidia_gpu() -> bool:
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return False
    return subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode == 0


BACKENDS: dict[str, Backend] = {b.name: b for b in (
    Backend("torch-cpu", "torch", "cpu", _torch_cpu),
    Backend("torch-cuda", "torch", "cuda", _torch_cuda),
    # the model's weights cast to half precision (inference only; timed with CUDA events like torch-cuda)
    Backend("torch-cuda-fp16", "torch", "cuda", _torch_cuda, dtype="float16"),
    Backend("torch-cuda-bf16", "torch", "cuda", _torch_cuda, dtype="bfloat16"),
    Backend("ort-cpu", "onnx", "cpu", _ort_provider("CPUExecutionProvider", "onnxruntime", False),
            "CPUExecutionProvider"),
    Backend("ort-cuda", "onnx", "cuda", _ort_provider("CUDAExecutionProvider", "onnxruntime-gpu", True),
            "CUDAExecutionProvider"),
    Backend("ort-tensorrt", "onnx", "cuda", _ort_provider("TensorrtExecutionProvider", "onnxruntime-gpu and TensorRT",
                                                          True), "TensorrtExecutionProvider"),
    Backend("ort-openvino", "onnx", "cpu", _ort_openvino, "OpenVINOExecutionProvider"),
    # The bundle's model.onnx read and compiled by the OpenVINO runtime itself (no ONNX Runtime in the timed path).
    Backend("openvino-cpu", "onnx", "cpu", _openvino_runtime, engine="openvino"),
)}


def backend_precision(backend: str, precision: str) -> str:
    """A model's precision as `backend` runs it: torch-cuda-fp16/-bf16 cast the fp32 weights to half."""
    known = BACKENDS.get(backend)
    return {"float16": "fp16", "bfloat16": "bf16"}.get(known.dtype, precision) if known else precision


def backend_device(backend: str) -> str:
    """"cuda" or "cpu" for a backend of this registry; a device report's rows ("device:...") are "cpu"."""
    known = BACKENDS.get(backend)
    return known.device if known else "cpu"


def parse_backends(names: str) -> list[Backend]:
    from kdedge.errors import KdedgeError

    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in BACKENDS]
    if unknown or not wanted:
        raise KdedgeError(f"unknown backend(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(BACKENDS)}")
    return [BACKENDS[n] for n in wanted]
