"""The position-embedding rows a bundle can never read, cut from its graph: a lossless size saving.

The runtimes truncate every input to the manifest's max_length, so a 128-token bundle of a BERT-style encoder reads
128 of its 512 position rows (MPNet and RoBERTa number positions from padding_idx + 1: 130 of 514). Which rows an
input of max_length reaches is found by running the exported graph on one, with the position lookup's indices made
an output, so no model family's numbering is assumed. The export's parity check holds the result to the PyTorch
logits like every other transform.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

# transformers' name for the table in every encoder family (BERT, MPNet, RoBERTa, DistilBERT)
POSITION_TABLE = "position_embeddings"


def trim_positions(src: Path, dst: Path, max_length: int, pad_token_id: int | None) -> dict | None:
    """Write `src` to `dst` with its position table cut to the rows an input of `max_length` tokens reads; what it
    did ({"kept", "of"}), or None (and nothing written) when the graph has no such table or reads all of it."""
    model = onnx.load(str(src))
    tables = {t.name: t for t in model.graph.initializer if POSITION_TABLE in t.name and len(t.dims) == 2}
    lookups = [n for n in model.graph.node if n.op_type == "Gather" and n.input[0] in tables]
    if len(lookups) != 1:  # none, or a graph this rule was not written for: left whole
        return None
    table = tables[lookups[0].input[0]]
    total = table.dims[0]
    try:
        rows = _rows_read(model, lookups[0].input[1], max_length, pad_token_id)
    except Exception:  # a graph the probe cannot run (int32 indices, say) is left whole: this is a saving only
        return None
    if rows >= total:
        return None
    table.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(table)[:rows], table.name))
    onnx.save(model, str(dst))
    return {"kept": rows, "of": total}


def _rows_read(model: onnx.ModelProto, indices: str, max_length: int, pad_token_id: int | None) -> int:
    """1 + the largest position index the graph looks up for one input of `max_length` tokens (none of them
    padding, so that families counting positions from the padding mask count them all)."""
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.append(helper.make_tensor_value_info(indices, onnx.TensorProto.INT64, None))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep the lookup as exported
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    token = 1 if pad_token_id == 0 else 0  # any id but padding
    feed = {i.name: np.full((1, max_length), token if i.name == "input_ids" else int("mask" in i.name), np.int64)
            for i in session.get_inputs()}
    return int(session.run([indices], feed)[0].max()) + 1
