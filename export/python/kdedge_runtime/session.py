"""The ONNX Runtime session options every kdedge runtime loads a bundle with.

When it loads a transformer, ONNX Runtime fuses each residual Add and the LayerNormalization after it into one
SkipLayerNormalization node. Its CPU kernel for that node is a plain scalar loop, slower than the two nodes it
replaces: 25 µs against 8.8 µs on a 24 × 192 tensor, and a third of a small student's batch-1 latency
(benchmarks/results/skip_layer_norm/). GPU providers have fast fused kernels, so only sessions without one of
them opt out of the fusion. The JavaScript runtimes make the same choice (export/core/src/session.js).
"""

from __future__ import annotations

from typing import Sequence

import onnxruntime as ort

# Graph transformers that slow a session down when its nodes run on the CPU (ONNX Runtime's optimizer names).
CPU_DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)
# Providers with their own fused SkipLayerNormalization kernel: a session that lists one keeps the fusion.
FUSED_KERNEL_PROVIDERS = frozenset({"CUDAExecutionProvider", "TensorrtExecutionProvider", "ROCMExecutionProvider",
                                    "MIGraphXExecutionProvider", "DmlExecutionProvider"})
# ONNX Runtime's session configuration key for them (names separated by semicolons).
DISABLE_OPTIMIZERS_KEY = "optimization.disable_specified_optimizers"


def session_options(providers: Sequence[str], threads: int | None = None) -> ort.SessionOptions:
    """Options for a session on `providers` (ONNX Runtime's names, in priority order), `threads` intra-op threads
    (None: ONNX Runtime's default)."""
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    if not FUSED_KERNEL_PROVIDERS.intersection(providers):
        options.add_session_config_entry(DISABLE_OPTIMIZERS_KEY, ";".join(CPU_DISABLED_OPTIMIZERS))
    return options


def disabled_optimizers(options: ort.SessionOptions) -> list[str]:
    """The graph transformers `options` turn off (what a benchmark row records)."""
    try:
        return [name for name in options.get_session_config_entry(DISABLE_OPTIMIZERS_KEY).split(";") if name]
    except RuntimeError:  # ONNX Runtime's answer for a key never set
        return []
