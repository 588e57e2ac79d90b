"""The CPU a bundle runs on, and the int8 scheme that suits it: one verdict for `kdedge export --preset auto`,
`kdedge bench`, `kdedge doctor` and the runtime on the device itself.

ONNX Runtime's dynamic int8 MatMul multiplies uint8 activations by int8 or uint8 weights. The presets (named as
optimum names them) differ only there: `avx2` stores uint8 weights; `avx512`, `avx512_vnni` and `arm64` store
int8 weights, which VNNI and ARM run fastest. Without VNNI, x86 computes u8 x s8 with VPMADDUBSW, whose 16-bit
sums can saturate (ONNX Runtime's quantization guide), so uint8 weights are the safe choice on AVX2.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Iterable

PRESETS = ("avx2", "avx512", "avx512_vnni", "arm64")
WEIGHTS = {"avx2": "uint8", "avx512": "int8", "avx512_vnni": "int8", "arm64": "int8"}
# The presets whose CPUs multiply uint8 activations by int8 weights exactly (VNNI, ARM's dot products); plain AVX2 and
# AVX-512 use VPMADDUBSW, whose 16-bit sums of two products can saturate.
EXACT_U8_S8 = frozenset({"avx512_vnni", "arm64"})
_ARM_MACHINES = ("aarch64", "arm64", "armv8l")


# The flags that decide which int8 scheme is fast (and safe) on a CPU.
INT8_FLAGS = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "asimd", "asimddp", "i8mm")


def _cpuinfo_fields() -> dict[str, str]:
    """/proc/cpuinfo's fields, each key's first value (the first processor's); empty where there is no such file."""
    fields: dict[str, str] = {}
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    return fields


def _cpuinfo(keys: tuple[str, ...]) -> str | None:
    """The /proc/cpuinfo value under the first of `keys` that it has, or None."""
    fields = _cpuinfo_fields()
    return next((fields[key] for key in keys if key in fields), None)


def read_cpu() -> tuple[str, set[str]]:
    """This machine's architecture and CPU flags (/proc/cpuinfo's `flags`, or `Features` on ARM)."""
    return platform.machine().lower(), set((_cpuinfo(("flags", "Features")) or "").split())


def cpu_model() -> str:
    return _cpuinfo(("model name",)) or platform.processor() or platform.machine()


def cpu_identity() -> str | None:
    """What tells apart two CPUs of one model name (a cloud's "Intel(R) Xeon(R) Processor" names more than one,
    and the same bundles' speed-ups over the int8 teacher differed by 10 % on two machines of that name): x86's
    family, model and stepping, ARM's implementer and part, and whether a hypervisor presents the CPU. None where
    /proc/cpuinfo has neither."""
    fields = _cpuinfo_fields()
    if "cpu family" in fields and "model" in fields:
        identity = f"family {fields['cpu family']} model {fields['model']} stepping {fields.get('stepping', '?')}"
    elif "CPU implementer" in fields and "CPU part" in fields:
        identity = f"implementer {fields['CPU implementer']} part {fields['CPU part']}"
    else:
        return None
    return identity + (", virtual machine" if "hypervisor" in fields.get("flags", "").split() else "")


def preset_for(machine: str, flags: Iterable[str]) -> str:
    """The int8 preset for a CPU: VNNI -> avx512_vnni, AVX-512 -> avx512, ARM -> arm64, otherwise avx2."""
    flags = set(flags)
    if machine.lower() in _ARM_MACHINES:
        return "arm64"
    if flags & {"avx512_vnni", "avx512vnni", "avx_vnni"}:
        return "avx512_vnni"
    if "avx512bw" in flags or "avx512f" in flags:
        return "avx512"
    return "avx2"


def preset_mismatch(preset: str, machine: str, flags: Iterable[str]) -> str | None:
    """Why an int8 bundle made for `preset` does not suit this CPU, or None when it does."""
    best = preset_for(machine, flags)
    if preset not in WEIGHTS or WEIGHTS[preset] == WEIGHTS[best]:
        return None
    why = ("runs slower here than int8 weights" if WEIGHTS[preset] == "uint8"
           else "may lose accuracy here (without VNNI, u8 x s8 products can saturate)")
    return (f"int8 preset {preset} ({WEIGHTS[preset]} weights) {why}; this CPU ({machine}) suits {best}: "
            f"re-export with --preset {best} (or --preset auto on this machine)")


# bfloat16 arithmetic in hardware (x86 AVX512_BF16 or AMX, ARM BF16): elsewhere PyTorch emulates it, slower than fp32.
BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


def native_bf16(flags: Iterable[str]) -> bool:
    return bool(set(flags) & set(BF16_FLAGS))


# The flags a report shows: those above, and what else tells int8 and float speed apart (FMA, bfloat16, AMX).
REPORTED_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8",
                  "amx_bf16", "asimd", "asimddp", "i8mm", "bf16")


def memory_gb() -> float | None:
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    return None


def describe() -> dict:
    """This CPU as `kdedge doctor`, `kdedge bench` and the device bench report it, with its int8 verdict."""
    machine, flags = read_cpu()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    # An ARM interpreter reading an x86 /proc/cpuinfo runs under emulation (qemu-user passes the host's through):
    # the model and flags shown are then the host's, and no timing is the device's.
    emulated = machine in _ARM_MACHINES and _cpuinfo(("flags",)) is not None
    return {"model": cpu_model(), "identity": cpu_identity(), "machine": machine, "logical_cpus": os.cpu_count(),
            "usable_cpus": usable, "memory_gb": memory_gb(), "flags": {f: f in flags for f in REPORTED_FLAGS},
            "int8_preset": preset_for(machine, flags), "emulated": emulated}


def cpu_name(cpu: dict) -> str:
    """A CPU described by `describe` (here or in a device report, so any JSON value): its model name, with what tells
    it from others of that name where known."""
    return f"{cpu.get('model')}" + (f" ({cpu['identity']})" if cpu.get("identity") else "")


def verdict(cpu: dict) -> str:
    """One line on int8 for a CPU described by `describe`."""
    emulated = (" — emulated: the CPU model and flags shown are the host's, and timings are not this "
                "architecture's" if cpu.get("emulated") else "")
    return (f"int8 preset for this CPU: {cpu['int8_preset']} ({WEIGHTS[cpu['int8_preset']]} weights; what "
            f"`kdedge export --preset auto` picks on it){emulated}")
