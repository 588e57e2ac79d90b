"""--keep-float: nodes that dynamic int8 leaves in float, named or found by kdedge.onnx.keep_float.search."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from kdedge.config import ExportConfig, build_config
from kdedge.errors import KdedgeError
from kdedge.onnx import keep_float
from kdedge.onnx.bundle import export_bundle
from kdedge.onnx.quantize import quantize
from tests.conftest import HOST_PRESET


def _outlier_model(path):
    """logits = x·Wa + (x·D)·Wb, where D scales channel 0 by 1000 and Wb reads only channels 1-7. Per-tensor int8
    of Wb's input spends its whole range on channel 0, so quantizing node "b" ruins the logits; node "a" is
    harmless. Four more harmless MatMuls make the bisection go several levels down."""
    rng = np.random.default_rng(0)
    wa = rng.normal(size=(8, 2)).astype(np.float32)
    scale = np.ones(8, dtype=np.float32)
    scale[0] = 1000.0
    wb = rng.normal(size=(8, 2)).astype(np.float32)
    wb[0] = 0.0
    inits = [numpy_helper.from_array(wa, "wa"), numpy_helper.from_array(scale, "scale"),
             numpy_helper.from_array(wb, "wb")]
    nodes = [helper.make_node("MatMul", ["x", "wa"], ["ya"], name="a"),
             helper.make_node("Mul", ["x", "scale"], ["xs"], name="spread"),
             helper.make_node("MatMul", ["xs", "wb"], ["yb"], name="b"),
             helper.make_node("Add", ["ya", "yb"], ["y0"], name="sum")]
    previous = "y0"
    for i in range(4):
        w = np.eye(2, dtype=np.float32) + rng.normal(scale=0.01, size=(2, 2)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        out = "logits" if i == 3 else f"y{i + 1}"
        nodes.append(helper.make_node("MatMul", [previous, f"w{i}"], [out], name=f"harmless{i}"))
        previous = out
    graph = helper.make_graph(nodes, "outlier", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, 2])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _feeds(n=24):
    rng = np.random.default_rng(1)
    return [{"x": rng.normal(size=(3, 8)).astype(np.float32)} for _ in range(n)]


def test_the_search_finds_the_node_whose_input_has_an_outlier(tmp_path):
    model = _outlier_model(tmp_path / "model.onnx")

    def quantize_keeping(kept, dst):
        quantize("dynamic", model, dst, architecture="tinybert", preset=HOST_PRESET, keep_float=kept)

    result = keep_float.search(model, quantize_keeping, _feeds(), tmp_path)
    assert result["nodes"] == ["b"]
    int8, after = result["relative_error"]
    assert int8 > 0.05 and after < int8 / 10
    # bisection: about 2·log2(6) quantizations for the node found and as many for the search that stops
    assert result["candidates"] == 6 and result["evaluations"] <= 1 + 2 * (2 * 3)
    # what it found is what the quantizer then leaves in float
    description = quantize("dynamic", model, tmp_path / "kept.onnx", architecture="tinybert", preset=HOST_PRESET,
                           keep_float=result["nodes"])
    assert description["kept_float"] == ["b"] and description["ops"]["MatMulInteger"] == 5
    graph = onnx.load(str(tmp_path / "kept.onnx")).graph
    assert [n.op_type for n in graph.node if n.name == "b"] == ["MatMul"]


def test_nothing_is_kept_when_int8_is_already_close(tmp_path):
    model = _outlier_model(tmp_path / "model.onnx")
    calls = []

    def quantize_keeping(kept, dst):
        calls.append(kept)
        quantize("dynamic", model, dst, architecture="tinybert", preset=HOST_PRESET, keep_float=kept + ["b"])

    result = keep_float.search(model, quantize_keeping, _feeds(), tmp_path)
    assert result["nodes"] == [] and result["relative_error"][0] <= keep_float.GOOD_ENOUGH and calls == [[]]


def test_relative_error_is_zero_for_the_reference_and_one_for_its_mean():
    reference = np.array([[0.0, 1.0], [2.0, -1.0], [4.0, 3.0]])
    assert keep_float.relative_error(reference, reference) == 0
    assert keep_float.relative_error(np.broadcast_to(reference.mean(0), reference.shape), reference) == \
        pytest.approx(1.0)


def test_named_nodes_are_matched_by_part_and_a_name_that_matches_none_is_refused(tmp_path):
    model = _outlier_model(tmp_path / "model.onnx")
    assert keep_float.select(model, ["harmless1", "b"]) == ["b", "harmless1"]
    # a Gemm (a classifier head) is quantized too, split into a MatMul first; kept, it stays float
    graph = onnx.load(str(model))
    graph.graph.node[-1].op_type, graph.graph.node[-1].name = "Gemm", "head"
    onnx.save(graph, str(tmp_path / "gemm.onnx"))
    assert keep_float.select(tmp_path / "gemm.onnx", ["head"]) == ["head"]
    options = {"architecture": "tinybert", "preset": "avx512_vnni"}
    assert quantize("dynamic", tmp_path / "gemm.onnx", tmp_path / "all.onnx", **options)["ops"]["MatMulInteger"] == 6
    kept = quantize("dynamic", tmp_path / "gemm.onnx", tmp_path / "kept.onnx", keep_float=["head"], **options)
    assert kept["ops"]["MatMulInteger"] == 5 and kept["kept_float"] == ["head"]
    with pytest.raises(KdedgeError, match="'ffn' is part of no quantizable node's name"):
        keep_float.select(model, ["ffn"])
    with pytest.raises(KdedgeError, match="none, auto, or comma-separated"):
        keep_float.select(model, [])


def _export(student_dir, glue_dir, out, **kw):
    return export_bundle(build_config(ExportConfig, None, model=str(student_dir), out=str(out), data_dir=str(glue_dir),
                                      max_eval_samples=64, verify=16, **kw))


def test_an_export_names_the_nodes_it_kept_and_the_search(tiny_tinybert_student, glue_dir, tmp_path):
    plain = json.loads((_export(tiny_tinybert_student, glue_dir, tmp_path / "plain", quantize="dynamic")
                        / "manifest.json").read_text())["quantization"]
    named = json.loads((_export(tiny_tinybert_student, glue_dir, tmp_path / "named", quantize="dynamic",
                                keep_float="output/dense") / "manifest.json").read_text())["quantization"]
    assert named["kept_float"] and all("output/dense" in n for n in named["kept_float"])
    assert named["ops"]["MatMulInteger"] == plain["ops"]["MatMulInteger"] - len(named["kept_float"])
    auto = json.loads((_export(tiny_tinybert_student, glue_dir, tmp_path / "auto", quantize="dynamic",
                               keep_float="auto", calibration_size=16) / "manifest.json").read_text())["quantization"]
    search = auto["keep_float_search"]
    assert search["examples"] == 16 and search["candidates"] == plain["ops"]["MatMulInteger"]
    assert auto.get("kept_float", []) == search["nodes"]
    errors = search["relative_error"]
    assert len(errors) == len(search["nodes"]) + 1
    # each node kept removed at least MIN_GAIN of the error left; a model int8 barely moves is searched no further
    assert all(after <= before * (1 - keep_float.MIN_GAIN) for before, after in zip(errors, errors[1:]))
    if errors[0] <= keep_float.GOOD_ENOUGH:
        assert search["evaluations"] == 1 and not search["nodes"]


@pytest.mark.parametrize("options, message", [
    (dict(quantize="none"), "--keep-float needs --quantize dynamic, not --quantize none"),
    (dict(quantize="static"), "--keep-float needs --quantize dynamic, not --quantize static"),
])
def test_keep_float_without_dynamic_int8_is_refused(tiny_tinybert_student, glue_dir, tmp_path, options, message):
    with pytest.raises(KdedgeError, match=message):
        _export(tiny_tinybert_student, glue_dir, tmp_path / "b", keep_float="auto", **options)
    assert not (tmp_path / "b").exists() and not (tmp_path / "b.partial").exists()
