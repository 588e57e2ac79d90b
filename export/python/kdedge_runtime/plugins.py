"""ONNX Runtime execution providers that ship as plugin libraries (ONNX Runtime >= 1.23), such as Intel's
OpenVINO provider in `onnxruntime-ep-openvino`: registered once per process from their Python package, then
attached to a session for the devices the plugin offers. Providers built into the onnxruntime wheel need none
of this.
"""

from __future__ import annotations

import importlib
import json

import onnxruntime as ort

# provider name -> the Python package that ships its plugin library (and says where the library is)
PLUGIN_PACKAGES = {"OpenVINOExecutionProvider": "onnxruntime_ep_openvino"}
# provider name -> the options every session gets with it. OpenVINO's CPU plugin computes in bfloat16 wherever the
# CPU has it unless told otherwise, so an fp32 bundle would not give the logits its export checked.
PLUGIN_OPTIONS = {"OpenVINOExecutionProvider": {"load_config": json.dumps({"CPU": {"INFERENCE_PRECISION_HINT": "f32"}})}}
_registered: set[str] = set()


def register(provider: str) -> str | None:
    """Register the provider's plugin library once; None when done, else why it cannot be."""
    if provider in _registered:
        return None
    package = PLUGIN_PACKAGES.get(provider)
    if package is None:
        return f"{provider} is not a known plugin provider"
    if not hasattr(ort, "register_execution_provider_library"):
        return f"onnxruntime {ort.__version__} cannot load plugin providers (needs 1.23 or newer)"
    try:
        module = importlib.import_module(package)
        ort.register_execution_provider_library(provider, module.get_library_path())
    except ImportError:
        return f"{package.replace('_', '-')} is not installed"
    except Exception as e:  # ONNX Runtime reports a library it cannot load with its own exception types
        return f"{package.replace('_', '-')} did not register with onnxruntime {ort.__version__}: {e}"
    _registered.add(provider)
    return None


def is_plugin(provider: str) -> bool:
    """Whether the provider is attached from its plugin library rather than built into this onnxruntime wheel.
    A registered plugin is listed by get_available_providers(), yet a session that names it in `providers`
    silently runs on the CPU provider instead: it must be attached per device every time."""
    return provider in PLUGIN_PACKAGES and (provider in _registered or provider not in ort.get_available_providers())


def devices(provider: str) -> list:
    """The devices a registered provider offers on this machine (OrtEpDevice objects)."""
    return [d for d in ort.get_ep_devices() if d.ep_name == provider]


def cpu_vendor() -> tuple[str, int] | None:
    """The CPU's vendor name and PCI vendor id as ONNX Runtime sees them (what plugins match devices on)."""
    for d in ort.get_ep_devices():
        if d.ep_name == "CPUExecutionProvider":
            return d.device.vendor, d.device.vendor_id
    return None


def attach(options: ort.SessionOptions, provider: str) -> None:
    """Give the session the provider on every device it offers here (ValueError when it offers none)."""
    why = register(provider)
    found = devices(provider) if why is None else []
    if not found:
        raise ValueError(why or f"{provider} offers no device on this machine")
    options.add_provider_for_devices(found, PLUGIN_OPTIONS.get(provider, {}))
