"""Embedding tables stored as int8 rows, each row with its own scale.

ONNX Runtime's quantizer stores an embedding table (a Gather's constant input, or the tables of the optimizer's
EmbedLayerNormalization) as uint8 with one scale for the whole table, so a few large values set the step for every
row: on a trimmed 2L-128 student this one table gave half the int8 model's logit error. Here each row (a token, a
position) is quantized symmetrically against its own largest value, and dequantized in the graph by a Cast and a
Mul whose inputs are all initializers. ONNX Runtime folds those constants into a float table when it loads the
graph (its default optimization level, in every runtime), so the file keeps int8's size (plus one float per row)
and inference runs the float embedding kernels at their speed; the float table is what the session holds in memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# The inputs that are embedding tables, by op type: Gather's data, EmbedLayerNormalization's word, position and
# segment tables.
TABLE_INPUTS = {"Gather": (0,), "EmbedLayerNormalization": (2, 3, 4)}


def embedding_tables(graph: onnx.GraphProto) -> dict[str, list[str]]:
    """The 2-D float initializers read only as embedding tables, each with the names of the nodes that read it."""
    initializers = {i.name: i for i in graph.initializer}
    readers: dict[str, list[str]] = {}
    other_uses = set(o.name for o in graph.output)
    for node in graph.node:
        table_slots = TABLE_INPUTS.get(node.op_type, ())
        for slot, name in enumerate(node.input):
            if slot in table_slots:
                readers.setdefault(name, []).append(node.name)
            else:
                other_uses.add(name)
    return {name: nodes for name, nodes in readers.items()
            if name in initializers and name not in other_uses and len(initializers[name].dims) == 2
            and initializers[name].data_type == TensorProto.FLOAT}


def rows_int8(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per row: values in [-127, 127] and each row's scale (its largest |value| / 127; 1 for a row
    of zeros)."""
    scale = np.abs(table).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    values = np.clip(np.round(table / scale[:, None]), -127, 127).astype(np.int8)
    return values, scale.astype(np.float32)


def store_tables_int8(model: onnx.ModelProto, tables: list[str]) -> dict:
    """Replace each named float table by int8 rows, a scale per row, and the Cast and Mul that give the float table
    back under its old name (the nodes that read it are untouched). Returns the manifest's description."""
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    nodes, rows = [], 0
    for name in tables:
        values, scale = rows_int8(numpy_helper.to_array(initializers[name]))
        graph.initializer.remove(initializers[name])
        graph.initializer.extend([numpy_helper.from_array(values, f"{name}_int8"),
                                  numpy_helper.from_array(scale[:, None], f"{name}_row_scale")])
        nodes += [helper.make_node("Cast", [f"{name}_int8"], [f"{name}_rows"], name=f"{name}_Cast", to=TensorProto.FLOAT),
                  helper.make_node("Mul", [f"{name}_rows", f"{name}_row_scale"], [name], name=f"{name}_Scale")]
        rows += len(scale)
    for node in reversed(nodes):  # first in the graph, before anything reads the tables
        graph.node.insert(0, node)
    graph_inputs = [i for i in graph.input if i.name in tables]  # old IR versions list initializers as inputs
    for graph_input in graph_inputs:
        graph.input.remove(graph_input)
    return {"tables": len(tables), "rows": rows,
            "weights": "int8 symmetric per-row, dequantized by constant Cast and Mul that ONNX Runtime folds at load"}


def embedding_readers(path: Path) -> dict[str, list[str]]:
    """The embedding tables of the model at `path` and the nodes that read them, which ONNX Runtime's quantizer is
    told to leave alone (store_embeddings_int8 quantizes the tables per row instead). Unnamed nodes get a name
    first, in the file, so that they can be named to the quantizer."""
    model = onnx.load(str(path))
    unnamed = [node for node in model.graph.node if not node.name]
    for index, node in enumerate(unnamed):
        node.name = f"kdedge_{node.op_type}_{index}"
    if unnamed:
        onnx.save(model, str(path))
    return embedding_tables(model.graph)


def store_embeddings_int8(path: Path, tables: list[str]) -> dict:
    """store_tables_int8 on the model file at `path`, in place."""
    model = onnx.load(str(path))
    description = store_tables_int8(model, tables)
    onnx.save(model, str(path))
    return description
