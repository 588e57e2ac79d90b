"""What the benchmark ran on: CPU model and the flags that decide int8 speed, cores, GPU, library versions,
and which backends are usable (the body of `kdedge doctor`)."""

from __future__ import annotations

import platform
import shutil
import subprocess

from kdedge.bench.backends import BACKENDS
from kdedge.outputs import library_versions
from kdedge_runtime.cpu import describe, native_bf16, verdict


def gpu_info() -> list[str]:
    if not shutil.which("nvidia-smi"):
        return []
    out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True)
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []


def backend_status() -> dict[str, str | None]:
    """Backend name -> None when usable, else why not."""
    return {name: backend.unavailable() for name, backend in BACKENDS.items()}


def environment() -> dict:
    import onnxruntime as ort

    return {"platform": platform.platform(), "cpu": describe(), "gpus": gpu_info(),
            "onnxruntime_providers": ort.get_available_providers(), "versions": library_versions()}


def doctor_report() -> str:
    env = environment()
    cpu = env["cpu"]
    identity = f"; {cpu['identity']}" if cpu.get("identity") else ""
    lines = [f"CPU: {cpu['model']} ({cpu['machine']}{identity}), {cpu['usable_cpus']} usable of "
             f"{cpu['logical_cpus']} logical CPUs, {cpu['memory_gb']} GiB",
             "CPU flags: " + ", ".join(f"{f} {'yes' if v else 'no'}" for f, v in cpu["flags"].items()),
             verdict(cpu),
             "Training on this CPU: " + ("fp32, or bf16 autocast with --mixed-precision bf16 (bfloat16 instructions)"
                                         if native_bf16(f for f, v in cpu["flags"].items() if v)
                                         else "fp32 (no bfloat16 instructions)"),
             "GPU: " + ("; ".join(env["gpus"]) or "none visible (no nvidia-smi or no device)"),
             "ONNX Runtime providers: " + ", ".join(env["onnxruntime_providers"]), "Backends:"]
    for name, why in backend_status().items():
        lines.append(f"  {name:<13} {'usable' if why is None else 'unavailable: ' + why}")
    lines.append("Versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()))
    return "\n".join(lines)
