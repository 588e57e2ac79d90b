"""kdedge.onnx.first_token: the nodes after the last attention run on the pooled position only, with the same logits;
nodes whose full-length result is needed, or that mix positions, are left alone."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from kdedge.models.students import load_student
from kdedge.onnx.export import EXPORTERS, ONNX_FILE
from kdedge.onnx.first_token import _shapes, first_token_only
from kdedge.onnx.quantize import optimize_transformer
from tests.conftest import export_tiny

H = 8


def _run(path, feed):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feed)


def _save(tmp_path, nodes, outputs, initializers, name="g.onnx"):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", H])
    graph = helper.make_graph(nodes, "g", [x], outputs, initializer=initializers)
    path = tmp_path / name
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    return path


def _constants(rng):
    return [numpy_helper.from_array(rng.normal(size=(H, H)).astype(np.float32), "w"),
            numpy_helper.from_array(rng.normal(size=H).astype(np.float32), "b"),
            numpy_helper.from_array(np.ones(H, np.float32), "gamma"),
            numpy_helper.from_array(np.array(0, dtype=np.int64), "first")]


def _out(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def test_a_residual_block_under_the_pooling_gather_runs_on_one_row(tmp_path):
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("LayerNormalization", ["x", "gamma", "b"], ["a"], axis=-1),
             helper.make_node("MatMul", ["a", "w"], ["m"]),
             helper.make_node("Add", ["m", "b"], ["mb"]),
             helper.make_node("Tanh", ["mb"], ["t"]),
             helper.make_node("Add", ["t", "a"], ["r"]),  # the residual reads `a` twice inside the region
             helper.make_node("Gather", ["r", "first"], ["pooled"], axis=1)]
    src = _save(tmp_path, nodes, [_out("pooled", ["batch", H])], _constants(rng))
    done = first_token_only(src, tmp_path / "one.onnx")
    assert done == {"nodes_on_one_position": 5, "gathers": 1}
    graph = onnx.load(str(tmp_path / "one.onnx")).graph
    assert graph.node[0].op_type == "Gather" and graph.node[0].input[0] == "x"  # one row taken before any work
    shapes = _shapes(onnx.load(str(tmp_path / "one.onnx")))
    assert all(shapes[n.output[0]] == ("batch", H) for n in graph.node)
    x = rng.normal(size=(3, 11, H)).astype(np.float32)
    np.testing.assert_allclose(_run(tmp_path / "one.onnx", {"x": x})[0], _run(src, {"x": x})[0], atol=1e-5)


@pytest.mark.parametrize("case", ["also_an_output", "features_axis", "mixes_positions", "spans_positions",
                                  "one_row_for_all_positions"])
def test_nodes_whose_rows_are_not_independent_or_needed_in_full_are_left_alone(tmp_path, case):
    rng = np.random.default_rng(1)
    constants = _constants(rng)
    gather_axis, outputs = 1, [_out("pooled", ["batch", H])]
    if case == "mixes_positions":  # attention-like: every row of y reads every row of x
        nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),
                 helper.make_node("MatMul", ["x", "xt"], ["scores"]),
                 helper.make_node("MatMul", ["scores", "x"], ["y"])]
    elif case == "one_row_for_all_positions":  # broadcast along the positions: its row 0 is every row
        constants.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "positions"))
        nodes = [helper.make_node("ReduceMax", ["x", "positions"], ["peak"], keepdims=1),
                 helper.make_node("Add", ["x", "peak"], ["y"])]
    elif case == "spans_positions":  # a constant with a row per position (a position embedding)
        constants.append(numpy_helper.from_array(rng.normal(size=(11, H)).astype(np.float32), "per_position"))
        nodes = [helper.make_node("Add", ["x", "per_position"], ["y"])]
    else:
        nodes = [helper.make_node("MatMul", ["x", "w"], ["y"])]
        if case == "also_an_output":
            outputs.append(_out("y", ["batch", "seq", H]))
        else:
            gather_axis, outputs = 2, [_out("pooled", ["batch", "seq"])]
    nodes.append(helper.make_node("Gather", ["y", "first"], ["pooled"], axis=gather_axis))
    src = _save(tmp_path, nodes, outputs, constants)
    assert first_token_only(src, tmp_path / "same.onnx") == {"nodes_on_one_position": 0, "gathers": 0}
    assert onnx.load(str(tmp_path / "same.onnx")).graph.node == onnx.load(str(src)).graph.node


@pytest.mark.parametrize("optimize", [False, True])
def test_a_transformer_students_last_layer_runs_on_the_first_token_with_the_same_logits(tiny_tinybert_student,
                                                                                        tmp_path, optimize):
    student = load_student(tiny_tinybert_student)
    EXPORTERS["tinybert"](student, tiny_tinybert_student, tmp_path, 18, exporter="torch")
    src = tmp_path / ONNX_FILE
    if optimize:  # ONNX Runtime's fused Attention: the region starts after it
        c = student.model.config
        optimize_transformer(src, tmp_path / "optimized.onnx", num_heads=c.num_attention_heads,
                             hidden_size=c.hidden_size)
        src = tmp_path / "optimized.onnx"
    done = first_token_only(src, tmp_path / "one.onnx")
    assert done["nodes_on_one_position"] >= 10 and done["gathers"] == 2  # the attention's output and the residual
    # The last layer's output projection and feed-forward block read one row per example; its query, key and value
    # projections (unfused graph) still read every position.
    model = onnx.load(str(tmp_path / "one.onnx"))
    shapes = _shapes(model)
    projections = [n for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in
                   {i.name for i in model.graph.initializer}]
    assert sorted(len(shapes[n.input[0]]) for n in projections) == [2, 2, 2] + ([] if optimize else [3, 3, 3])
    ids = np.array([[2, 40, 41, 42, 43, 44, 3], [2, 50, 51, 3, 0, 0, 0]], dtype=np.int64)
    feed = {"input_ids": ids, "attention_mask": (ids != 0).astype(np.int64), "token_type_ids": np.zeros_like(ids)}
    np.testing.assert_allclose(_run(tmp_path / "one.onnx", feed)[0], _run(src, feed)[0], atol=1e-5)


def test_the_export_records_the_rewrite_and_can_leave_it_out(tiny_tinybert_student, glue_dir, tmp_path):
    rewritten = export_tiny(tiny_tinybert_student, glue_dir, tmp_path / "b", optimize=True)
    every_position = export_tiny(tiny_tinybert_student, glue_dir, tmp_path / "all", optimize=True, first_token=False)
    transforms = [json.loads((b / "manifest.json").read_text())["transforms"] for b in (rewritten, every_position)]
    assert transforms[0]["first_token"]["nodes_on_one_position"] >= 10 and "first_token" not in transforms[1]
    ids = np.array([[2, 40, 41, 42, 43, 44, 3], [2, 50, 51, 3, 0, 0, 0]], dtype=np.int64)
    feed = {"input_ids": ids, "attention_mask": (ids != 0).astype(np.int64), "token_type_ids": np.zeros_like(ids)}
    logits = [_run(b / ONNX_FILE, feed)[0] for b in (rewritten, every_position)]
    np.testing.assert_allclose(logits[0], logits[1], atol=1e-5)
