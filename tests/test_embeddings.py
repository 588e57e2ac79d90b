"""Embedding tables stored int8 per row (kdedge.onnx.embeddings): the rounding, which tables, and that ONNX Runtime
folds the dequantization away when it loads a bundle."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from kdedge.onnx.embeddings import embedding_tables, rows_int8, store_tables_int8
from kdedge_runtime.session import session_options
from tests.conftest import export_tiny


def test_each_row_keeps_its_own_precision_beside_an_outlier_row():
    table = np.array([[0.01, -0.02, 0.005], [50.0, -3.0, 1.0], [0.0, 0.0, 0.0]], np.float32)
    values, scale = rows_int8(table)
    assert values.dtype == np.int8 and np.abs(values).max() == 127 and scale.tolist()[2] == 1.0
    restored = values * scale[:, None]
    assert np.all(np.abs(restored - table) <= scale[:, None] / 2 + 1e-9)
    # one scale for the table (50 / 127) would round the first row to zeros; its own keeps it within 0.4 %
    assert np.abs(restored[0] - table[0]).max() < 0.004 * 0.02 and np.all(restored[2] == 0)


def _graph(*nodes, initializers):
    return helper.make_graph(list(nodes), "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, ["n"])],
                             [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", "d"])],
                             [numpy_helper.from_array(array, name) for name, array in initializers.items()])


def test_only_tables_read_as_embeddings_are_chosen():
    rng = np.random.default_rng(0)
    graph = _graph(helper.make_node("Gather", ["words", "ids"], ["w"], name="g1"),
                   helper.make_node("Gather", ["shared", "ids"], ["s"], name="g2"),
                   helper.make_node("MatMul", ["w", "shared"], ["m"], name="mm"),  # also a weight: not a table
                   helper.make_node("Gather", ["m", "ids"], ["y"], name="g3"),  # an activation, not an initializer
                   initializers={"words": rng.normal(size=(6, 4)).astype(np.float32),
                                 "shared": rng.normal(size=(4, 4)).astype(np.float32)})
    assert embedding_tables(graph) == {"words": ["g1"]}


def test_stored_table_gives_the_rows_back_through_onnxruntime(tmp_path):
    table = np.random.default_rng(0).normal(size=(7, 5)).astype(np.float32) * np.arange(1, 8)[:, None]
    model = helper.make_model(_graph(helper.make_node("Gather", ["words", "ids"], ["y"], name="g"),
                                     initializers={"words": table}), opset_imports=[helper.make_opsetid("", 17)])
    description = store_tables_int8(model, ["words"])
    onnx.checker.check_model(model)
    assert description["tables"] == 1 and description["rows"] == 7
    assert {i.name: i.data_type for i in model.graph.initializer} == {"words_int8": TensorProto.INT8,
                                                                      "words_row_scale": TensorProto.FLOAT}
    ids = np.array([6, 0, 3])
    got = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"ids": ids})[0]
    values, scale = rows_int8(table)
    np.testing.assert_allclose(got, (values * scale[:, None])[ids], rtol=0, atol=1e-7)


@pytest.mark.parametrize("optimize", [False, True])
def test_int8_bundle_tables_are_int8_in_the_file_and_float_once_loaded(tiny_tinybert_student, glue_dir, tmp_path,
                                                                       optimize):
    bundle = export_tiny(tiny_tinybert_student, glue_dir, tmp_path / "b", quantize="dynamic", optimize=optimize)
    embeddings = json.loads((bundle / "manifest.json").read_text())["quantization"]["embeddings"]
    assert embeddings["tables"] == 3  # words, positions, segments
    model = onnx.load(str(bundle / "model.onnx"))
    stored = [i for i in model.graph.initializer if i.name.endswith("_int8")]
    assert len(stored) == 3 and {i.data_type for i in stored} == {TensorProto.INT8}
    ops = {n.op_type for n in model.graph.node}
    assert not ops & {"QEmbedLayerNormalization", "DequantizeLinear"}  # not ONNX Runtime's per-tensor uint8 tables
    assert ("EmbedLayerNormalization" in ops) == optimize
    # What makes it as fast as a float table: the session folds the Cast and Mul into a float initializer.
    options = session_options(["CPUExecutionProvider"])
    options.optimized_model_filepath = str(tmp_path / "loaded.onnx")
    ort.InferenceSession(str(bundle / "model.onnx"), options, providers=["CPUExecutionProvider"])
    loaded = onnx.load(str(tmp_path / "loaded.onnx"))
    read = {name for node in loaded.graph.node for name in node.input}
    assert not read & {i.name for i in stored}, "the table's dequantization runs at every call"
