"""The n-gram student's model run in compiled code instead of ONNX Runtime, where the graph is the one kdedge exports.

The model is the mean of a text's embedding rows and a small ReLU network: about 15,000 multiply-adds, under a
microsecond. ONNX Runtime's fixed cost per run (the Python binding, the feed's checks, a kernel launch per node) is
about 10 µs on the same CPU, so through it an app's call to this student costs more than fastText's, whose whole call
is about 7 µs (benchmarks/results/per_call/README.md). `_ngram_modelc.c` does the arithmetic.

`compile_graph` takes only the graph `kdedge export` writes for a single-text n-gram student, checked node by node and
constant by constant: an int8 table with one scale per row (or a float table), Gather, the sum over positions, the
count of ids above 0 (at least 1), the division, then Gemm layers (transB) with ReLU between them. Any other graph
(pairs, another quantization, an edited or a future export) gives None and runs in ONNX Runtime; so does an install
that did not build the extension. `Classifier` then compares the two on probe ids at load
(tests/test_ngram_model.py holds them to the same logits over random graphs and ids).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

try:
    from kdedge_runtime._ngram_modelc import Model, Predictor  # noqa: F401 (Predictor: Classifier.predict's path)
except ImportError:  # installed without a C compiler: ONNX Runtime runs every model
    Model = Predictor = None

_MAX_LAYERS = 8  # as _ngram_modelc.c's MAX_LAYERS
# each op's attributes where a node leaves them out (the ONNX operators' defaults, opset 13 and later)
_DEFAULTS = {"Gather": {"axis": 0}, "ReduceSum": {"keepdims": 1, "noop_with_empty_axes": 0},
             "Gemm": {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0}}


def compile_graph(model_bytes: bytes):
    """The compiled model of an n-gram student's graph (`_ngram_modelc.Model`: `.one(ids)` for one text's logits,
    `.run(ids)` for a batch's; `Predictor` runs it for one text's Prediction), or None."""
    if Model is None:
        return None
    model = onnx.ModelProto()
    try:
        model.ParseFromString(model_bytes)
        weights = _match(model.graph)
    except Exception:  # not a protobuf, or values that do not convert: ONNX Runtime decides
        return None
    if weights is None:
        return None
    table, scale, layers = weights
    try:
        return Model(table, scale, layers)
    except (ValueError, TypeError):  # shapes that do not chain: ONNX Runtime's own load refuses them in its words
        return None


class _Graph:
    """A graph's nodes in order (Constant nodes read as values) and its initializers, for `_match`."""

    def __init__(self, graph: onnx.GraphProto):
        self.values = {t.name: t for t in graph.initializer}
        self.nodes = []
        for node in graph.node:
            if node.op_type == "Constant" and len(node.output) == 1 and [a.name for a in node.attribute] == ["value"]:
                self.values[node.output[0]] = node.attribute[0].t
            else:
                self.nodes.append(node)
        self.at = 0

    def take(self, op: str, inputs: list[str | None], **attributes) -> str | None:
        """The next node's output where it is `op` on exactly `inputs` (a None among them, a step before that did not
        match, matches nothing) with `attributes` (and the defaults for the rest), else None."""
        if self.at >= len(self.nodes):
            return None
        node = self.nodes[self.at]
        defaults = _DEFAULTS.get(op, {})
        found = {**defaults, **{a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}}
        if (node.op_type != op or node.domain not in ("", "ai.onnx") or list(node.input) != inputs
                or found != {**defaults, **attributes} or len(node.output) != 1):
            return None
        self.at += 1
        return node.output[0]

    def input(self, op: str, position: int) -> str | None:
        """The name the next node (when it is `op`) reads at `position`."""
        node = self.nodes[self.at] if self.at < len(self.nodes) else None
        return node.input[position] if node is not None and node.op_type == op and len(node.input) > position else None

    def array(self, name: str | None, dtype: int | None = None) -> np.ndarray | None:
        tensor = self.values.get(name)
        if tensor is None or (dtype is not None and tensor.data_type != dtype):
            return None
        return numpy_helper.to_array(tensor)

    def constant(self, name: str | None, value) -> bool:
        found = self.array(name)
        return found is not None and found.size == np.size(value) and bool(np.all(found == value))


def _match(graph: onnx.GraphProto):
    """(table, row_scale or None, [(weight, bias), ...]) of the n-gram graph kdedge exports, else None."""
    if ([(i.name, i.type.tensor_type.elem_type) for i in graph.input] != [("input_ids", TensorProto.INT64)]
            or [o.name for o in graph.output] != ["logits"]):
        return None
    g = _Graph(graph)
    scale = None
    quantized = g.input("Cast", 0)
    if quantized is not None:  # int8 per-row: Cast(int8 table) * scale, folded by ONNX Runtime at load
        table = g.array(quantized, TensorProto.INT8)
        rows = g.take("Cast", [quantized], to=TensorProto.FLOAT)
        scale = g.array(g.input("Mul", 1), TensorProto.FLOAT)
        embedding = g.take("Mul", [rows, g.input("Mul", 1)]) if rows else None
        if table is None or scale is None or embedding is None or scale.shape != (len(table), 1):
            return None
        scale = np.ascontiguousarray(scale.reshape(-1))
    else:
        embedding = g.input("Gather", 0)
        table = g.array(embedding, TensorProto.FLOAT)
    gathered = g.take("Gather", [embedding, "input_ids"])
    axes = g.input("ReduceSum", 1)
    summed = g.take("ReduceSum", [gathered, axes], keepdims=0) if g.constant(axes, [1]) else None
    zero = g.input("Greater", 1)
    above = g.take("Greater", ["input_ids", zero]) if g.constant(zero, 0) else None
    flags = g.take("Cast", [above], to=TensorProto.FLOAT)
    axes = g.input("ReduceSum", 1)
    count = g.take("ReduceSum", [flags, axes], keepdims=1) if g.constant(axes, [1]) else None
    one = g.input("Clip", 1)
    clipped = (g.take("Clip", [count, one, ""]) or g.take("Clip", [count, one])) if g.constant(one, 1.0) else None
    x = g.take("Div", [summed, clipped])
    if table is None or table.ndim != 2 or None in (gathered, summed, above, flags, count, clipped, x):
        return None
    layers = []
    while x is not None and x != "logits" and len(layers) < _MAX_LAYERS:
        weight, bias = (g.array(g.input("Gemm", k), TensorProto.FLOAT) for k in (1, 2))
        y = g.take("Gemm", [x, g.input("Gemm", 1), g.input("Gemm", 2)], alpha=1.0, beta=1.0, transB=1)
        if y is None or weight is None or bias is None:
            return None
        layers.append((np.ascontiguousarray(weight), np.ascontiguousarray(bias)))
        x = y if y == "logits" else g.take("Relu", [y])
    if x != "logits" or g.at != len(g.nodes):
        return None
    return np.ascontiguousarray(table), scale, layers
