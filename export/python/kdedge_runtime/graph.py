"""Refuse, at load, a model whose constants ask for a tensor larger than any of its weights.

A bundle is untrusted, and ONNX Runtime allocates what a graph asks for. One flipped bit in the int64 constant that
sets the BiLSTM's hidden size (16 → 16 + 2³²) made its first run fill 17 GB of zeros for the LSTM's initial state
(benchmarks/results/fuzz/README.md, model.onnx run 2). ONNX's shape inference with data propagation carries such
constants into the shapes they build, before anything runs. In a real export every concrete dimension (hidden size,
heads, vocabulary, positions) is the size of some weight, and batch and length stay symbolic; so a tensor with a
concrete dimension or a concrete size (the product of its concrete dimensions) above the largest weight's is refused.
"""

from __future__ import annotations

import math
from pathlib import Path

import onnx
from onnx import shape_inference

from kdedge_runtime.manifest import BundleError

# Initializers up to this many elements keep their values for data propagation (the shape constants among them);
# larger ones are weights, whose values no shape depends on: dropped for the inference, so it costs milliseconds.
_SHAPE_CONSTANT_ELEMENTS = 64
_DATA_FIELDS = ("raw_data", "float_data", "int32_data", "int64_data", "double_data", "uint64_data", "string_data")


def check_tensor_sizes(model_bytes: bytes, model_file: Path) -> None:
    """Raise BundleError when a tensor of the graph in `model_bytes` would be larger than its largest weight."""
    model = onnx.ModelProto()
    try:
        model.ParseFromString(model_bytes)
    except Exception:  # not a protobuf: ONNX Runtime's load refuses it in its own words
        return
    weights = [list(t.dims) for t in model.graph.initializer]
    largest_dim = max((d for dims in weights for d in dims), default=1)
    largest_size = max((math.prod(dims) for dims in weights), default=1)
    for tensor in model.graph.initializer:
        if math.prod(tensor.dims) > _SHAPE_CONSTANT_ELEMENTS:
            for field in _DATA_FIELDS:
                tensor.ClearField(field)
    try:
        inferred = shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True).graph
    except Exception:  # a graph ONNX cannot reason about: ONNX Runtime's own load decides
        return
    for value in list(inferred.value_info) + list(inferred.output):
        dims = value.type.tensor_type.shape.dim
        concrete = [d.dim_value for d in dims if d.HasField("dim_value")]
        if any(d > largest_dim for d in concrete) or math.prod(concrete) > largest_size:
            shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
            raise BundleError(f"{model_file}: tensor {value.name[:80]!r} would have shape {shape}, larger than any "
                              f"weight of the model (the largest: {largest_size} values, {largest_dim} in one "
                              "dimension): its constants were changed")
