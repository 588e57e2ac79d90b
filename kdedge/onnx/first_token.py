"""Only the rows the classifier reads: a graph transform for classifiers that pool one position.

BERT's pooler reads the first token's hidden state (a Gather on the sequence axis). Every node between the last
op that mixes positions (attention) and that Gather works on each position on its own: the last layer's attention
output projection, its residual Adds and LayerNorms, its feed-forward block. Gathering first and running them on
the one row gives the same logits at a fraction of the cost: the Gather moves up to the inputs of that region, the
region's nodes are rebuilt on the gathered rows, and the full-length computation is gone. At batch 1 on a
sentence of n tokens those nodes do 1/n of their work; for a 2-layer student that is a large share of the graph.

The rewrite is exact: `Gather(f(x, y), i) == f(Gather(x, i), Gather(y, i))` for every node kind in POSITIONWISE
(each acts along the last axis or element by element, with constants that do not span positions) whose activation
inputs have the pooled tensor's rank and sequence length (ONNX Runtime's symbolic shape inference says so; a tensor
it cannot shape is left alone). The export's parity check holds it to the PyTorch logits like every other transform.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import onnx
from onnx import helper

Dim = int | str | None  # a size, a symbol (e.g. "sequence_length"), or unknown
# Element by element: every constant operand broadcasts over the last axis at most (rank 0 or 1).
_ELEMENTWISE = frozenset({"Add", "Sub", "Mul", "Div", "Pow", "Erf", "Tanh", "Relu", "Sigmoid", "Sqrt", "Neg", "Cast",
                          "Identity", "Gelu", "FastGelu", "BiasGelu", "QuickGelu"})


def _elementwise(node, constant_rank: Callable[[str], int | None]) -> bool:
    return all(rank is None or 0 <= rank <= 1 for rank in map(constant_rank, node.input))


def _matmul(node, constant_rank) -> bool:
    """A projection: activations times a constant 2-D weight (each row on its own)."""
    return constant_rank(node.input[0]) is None and constant_rank(node.input[1]) == 2


def _layer_norm(node, constant_rank) -> bool:
    axis = next((a.i for a in node.attribute if a.name == "axis"), -1)
    return axis == -1 and constant_rank(node.input[0]) is None and all(
        constant_rank(name) in (0, 1) for name in node.input[1:] if name)


# Node kinds whose output row i depends only on input row i, and the check that this node is such a one
# (given the rank of each constant input, None for activations, -1 when unknown).
POSITIONWISE: dict[str, Callable] = {**{op: _elementwise for op in _ELEMENTWISE},
                                     "MatMul": _matmul, "LayerNormalization": _layer_norm}


def _shapes(model: onnx.ModelProto) -> dict[str, tuple[Dim, ...]]:
    """Every tensor's shape that ONNX Runtime's symbolic shape inference finds (it knows the fused com.microsoft
    ops that ONNX's own inference does not); ONNX's own where it gives up on a graph."""
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    try:
        inferred = SymbolicShapeInference.infer_shapes(model, auto_merge=True, guess_output_rank=True)
    except Exception:  # it raises plain TypeErrors and the like on ops it has no rule for
        inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {i.name: tuple(i.dims) for i in inferred.graph.initializer}
    for value in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        if value.type.tensor_type.HasField("shape"):
            shapes[value.name] = tuple(d.dim_param or (d.dim_value if d.HasField("dim_value") else None)
                                       for d in value.type.tensor_type.shape.dim)
    for node in inferred.graph.node:
        value = next((a.t for a in node.attribute if a.name == "value"), None)
        if node.op_type == "Constant" and value is not None:
            shapes[node.output[0]] = tuple(value.dims)
    return shapes


class _Graph:
    """Producers, consumers, constants and shapes of one graph."""

    def __init__(self, model: onnx.ModelProto, shapes: dict[str, tuple[Dim, ...]]):
        graph = model.graph
        self.graph, self.shapes = graph, shapes
        self.producer = {out: node for node in graph.node for out in node.output}
        self.consumers: dict[str, list] = {}
        for node in graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.outputs = {o.name for o in graph.output}
        self.constants = {i.name for i in graph.initializer}
        for node in graph.node:  # Constant nodes, and nodes computed from constants only (dequantized tables)
            if node.op_type == "Constant" or (node.input and all(i in self.constants or not i for i in node.input)):
                self.constants.update(node.output)

    def constant_rank(self, name: str) -> int | None:
        """The rank of a constant (-1 when unknown), None for an activation."""
        if name not in self.constants:
            return None
        return len(self.shapes[name]) if name in self.shapes else -1

    def rows(self, name: str, axis: int) -> tuple[int, Dim] | None:
        """An activation's rank and its size along `axis` (the positions), None when either is unknown."""
        shape = self.shapes.get(name)
        if shape is None or not -len(shape) <= axis < len(shape) or shape[axis] is None:
            return None
        return len(shape), shape[axis]

    def positionwise(self, node, axis: int, rows: tuple[int, Dim]) -> bool:
        """`node` maps each position of its activations (all with `rows` along `axis`) to the same position."""
        check = POSITIONWISE.get(node.op_type)
        return (check is not None and node.domain in ("", "ai.onnx", "com.microsoft") and len(node.output) == 1
                and check(node, self.constant_rank)
                and all(self.rows(name, axis) == rows for name in node.input if name and name not in self.constants))


def _pooling_gathers(g: _Graph):
    """Gathers of one position (a constant scalar index) along an axis other than the last, with the axis and the
    rank and size of what they gather from."""
    for node in g.graph.node:
        if node.op_type != "Gather" or node.domain not in ("", "ai.onnx") or len(node.input) != 2:
            continue
        data, index = node.input
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        rows = g.rows(data, axis)
        if g.constant_rank(index) != 0 or g.constant_rank(data) is not None or rows is None:
            continue
        if axis % rows[0] != rows[0] - 1:  # along the last axis it gathers features, not positions
            yield node, axis, rows


def _region(g: _Graph, gather, axis: int, rows: tuple[int, Dim]) -> list:
    """The position-wise nodes above `gather` whose outputs are read only inside the region (or by the gather)."""
    region, stack = {}, [gather.input[0]]
    while stack:
        producer = g.producer.get(stack.pop())
        if producer is None or id(producer) in region or not g.positionwise(producer, axis, rows):
            continue
        region[id(producer)] = producer
        stack.extend(name for name in producer.input if name and name not in g.constants)
    changed = True
    while changed:  # drop nodes whose results are also needed at full length elsewhere
        changed = False
        for key, node in list(region.items()):
            out = node.output[0]
            if out in g.outputs or any(id(c) not in region and c is not gather for c in g.consumers.get(out, [])):
                del region[key]
                changed = True
    return list(region.values())


def _rewrite(g: _Graph, gather, axis: int, region: list) -> int:
    """Replace `region` and `gather` by the region on gathered rows; returns how many Gathers it added."""
    index = gather.input[1]
    inside = {id(n) for n in region}
    renamed = {n.output[0]: f"{n.output[0]}/first_token" for n in region}
    renamed[gather.input[0]] = gather.output[0]
    added: dict[str, onnx.NodeProto] = {}
    nodes = []
    for node in g.graph.node:
        if node is gather:
            continue
        if id(node) not in inside:
            nodes.append(node)
            continue
        inputs = []
        for name in node.input:
            if not name or name in g.constants:
                inputs.append(name)
            elif name in renamed:
                inputs.append(renamed[name])
            else:  # a region input computed at full length: gather its row here
                if name not in added:
                    added[name] = helper.make_node("Gather", [name, index], [f"{name}/first_token"],
                                                   name=f"{name}/first_token/Gather", axis=axis)
                    nodes.append(added[name])
                inputs.append(added[name].output[0])
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        del copy.input[:]
        copy.input.extend(inputs)
        copy.output[0] = renamed[node.output[0]]
        nodes.append(copy)
    del g.graph.node[:]
    g.graph.node.extend(nodes)
    stale = set(renamed) - {gather.output[0]}
    kept = [v for v in g.graph.value_info if v.name not in stale]
    del g.graph.value_info[:]
    g.graph.value_info.extend(kept)
    return len(added)


def first_token_only(src: Path, dst: Path) -> dict:
    """Write `src` with every position-wise node under a one-position Gather run on that position only; returns
    what it did (for the bundle manifest)."""
    model = onnx.load(str(src))
    shapes = _shapes(model)
    rewritten, gathers = 0, 0
    while True:  # tensors the rewrite adds have no shape here, so each Gather is rewritten once
        g = _Graph(model, shapes)
        todo = next(((gather, axis, region) for gather, axis, rows in _pooling_gathers(g)
                     if (region := _region(g, gather, axis, rows))), None)
        if todo is None:
            break
        gather, axis, region = todo
        gathers += _rewrite(g, gather, axis, region)
        rewritten += len(region)
    onnx.save(model, str(dst))
    return {"nodes_on_one_position": rewritten, "gathers": gathers}
