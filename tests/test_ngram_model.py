"""The n-gram student's model compiled (kdedge_runtime/ngram_model.py, _ngram_modelc.c) against ONNX Runtime: the same
logits on students of random shapes exported as `kdedge export` exports them, the runtime's calls through it, and
every other graph left to ONNX Runtime."""

import math
import re
import shutil
import sysconfig

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from kdedge_runtime import ngram_model

from kdedge.models.ngram import NgramConfig, NgramStudent
from kdedge.onnx.export import _export_word_student, _IdsOnly
from kdedge.onnx.quantize import _quantize_ngram

needs_compiled = pytest.mark.skipif(ngram_model.Model is None, reason="installed without a C compiler")


def test_an_install_with_a_c_compiler_built_the_compiled_model():
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        pytest.skip(f"no C compiler ({compiler}) here: the runtime installs without its compiled model")
    assert ngram_model.Model is not None, "pip install -e . should have built kdedge_runtime._ngram_modelc"


def exported(tmp_path, *, rows=40, dim=8, hidden=0, layers=1, labels=2, int8=True, opset=18, seed=0) -> bytes:
    """The ONNX graph of a randomly initialised n-gram student, exported as `kdedge export` does (int8: its table per
    row), with every weight drawn, the padding row too: the graph sums every position and counts the ids above 0, so a
    padding row that is not zero shows whether the two read the graph alike."""
    torch.manual_seed(seed)
    model = NgramStudent(NgramConfig(vocab_size=rows, num_labels=labels, embedding_dim=dim, hidden=hidden,
                                     hidden_layers=layers))
    with torch.no_grad():
        model.embedding.weight.uniform_(-1, 1)
        for parameter in model.classifier.parameters():
            parameter.uniform_(-1, 1)
    _export_word_student(_IdsOnly(model), ["input_ids"], tmp_path, opset)
    path = tmp_path / "model.onnx"
    if int8:
        _quantize_ngram(path, tmp_path / "int8.onnx", "avx512")
        path = tmp_path / "int8.onnx"
    return path.read_bytes()


def both(model_bytes: bytes, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    compiled = ngram_model.compile_graph(model_bytes)
    assert compiled is not None, "the exported graph should be recognised"
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    expected = session.run(["logits"], {"input_ids": ids})[0]
    return np.frombuffer(compiled.run(ids), dtype=np.float32).reshape(expected.shape), expected


@needs_compiled
@settings(max_examples=12, deadline=None)
@given(rows=st.integers(2, 300), dim=st.integers(1, 70), hidden=st.sampled_from([0, 3, 17, 64]),
       layers=st.integers(1, 3), labels=st.integers(1, 5), int8=st.booleans(), opset=st.sampled_from([13, 18, 20]),
       seed=st.integers(0, 2**16), batch=st.integers(1, 4), length=st.integers(1, 60))
def test_the_compiled_model_gives_onnx_runtimes_logits(tmp_path_factory, rows, dim, hidden, layers, labels, int8,
                                                        opset, seed, batch, length):
    model_bytes = exported(tmp_path_factory.mktemp("g"), rows=rows, dim=dim, hidden=hidden, layers=layers,
                           labels=labels, int8=int8, opset=opset, seed=seed)
    ids = np.random.default_rng(seed).integers(0, rows, size=(batch, length))
    ids[0, length // 2:] = 0  # padding after the text, and (length 1) a row of padding alone
    compiled, expected = both(model_bytes, ids)
    np.testing.assert_allclose(compiled, expected, rtol=1e-5, atol=1e-5)
    model = ngram_model.compile_graph(model_bytes)
    one = model.one(ids[-1].tobytes())
    np.testing.assert_array_equal(np.asarray(one, dtype=np.float32), compiled[-1])  # one text: the same arithmetic
    assert_decodes_as_python(model, ids[-1].tobytes(), one)


def assert_decodes_as_python(model, ids: bytes, logits: list[float]) -> None:
    """The Predictor's Prediction of these ids against Classifier._decode's Python on the same logits."""
    from kdedge_runtime import Prediction

    labels = tuple(f"label {i}" for i in range(len(logits)))
    made = ngram_model.Predictor(model, lambda text, max_words: ids, None, labels, Prediction)("any ASCII text")
    best = max(logits)
    np.testing.assert_array_equal(made.logits, logits)  # NaN equal to NaN
    assert made.label == labels[logits.index(best)]
    assert made.score == pytest.approx(1.0 / sum([np.exp(v - best) for v in logits]), rel=1e-12, nan_ok=True)


@needs_compiled
@pytest.mark.parametrize("bias", [[0.5, 0.5, 0.5], [-1.0, 2.0, 2.0], [float("nan"), 1.0, 0.0], [1.0, float("nan"), 3.0],
                                  [0.0, float("inf"), float("inf")], [-0.0, 0.0, -1.0]])
def test_the_predictor_picks_the_first_best_label_as_python_does_ties_and_nan_included(bias):
    table, scale = np.zeros((4, 3), dtype=np.int8), np.ones(4, dtype=np.float32)
    model = ngram_model.Model(table, scale, [(np.zeros((3, 3), dtype=np.float32), np.asarray(bias, np.float32))])
    ids = np.asarray([1, 2, 0], dtype=np.int64).tobytes()
    assert_decodes_as_python(model, ids, model.one(ids))


def small_model(bias=(0.25, -0.5, 0.0)):
    rng = np.random.default_rng(0)
    table, scale = rng.integers(-127, 128, size=(6, 4), dtype=np.int8), rng.random(6, dtype=np.float32)
    return ngram_model.Model(table, scale, [(rng.standard_normal((3, 4), dtype=np.float32),
                                             np.asarray(bias, dtype=np.float32))])


def letter_ids(text, max_words):
    """A stand-in for the compiled tokenizer's ids: a..e as ids 1..5, the rest dropped, at most max_words of them."""
    ids = [ord(c) - 96 for c in text if "a" <= c <= "e"][:max_words]
    return np.asarray(ids, dtype=np.int64).tobytes()


@needs_compiled
def test_the_predictor_gives_the_prediction_that_python_builds_from_the_logits():
    import dataclasses

    from kdedge_runtime import Prediction

    model, labels = small_model(), ("neg", "mid", "pos")
    one = ngram_model.Predictor(model, letter_ids, 3, labels, Prediction)
    for text in ["abc", "a", "edcba", "xx b yy", "ABC e", "eeee"]:
        logits = model.one(letter_ids(text, 3))
        index = logits.index(max(logits))
        score = 1.0 / sum(math.exp(v - logits[index]) for v in logits)
        made = one(text)
        assert type(made) is Prediction and made == Prediction(labels[index], pytest.approx(score, rel=1e-12), logits)
        assert dataclasses.asdict(made) == {"label": labels[index], "score": made.score, "logits": logits}
        assert repr(made) == repr(Prediction(labels[index], made.score, logits))
        made.label = "changed"  # a plain slots instance: its fields can be set, as the dataclass's
        assert made.label == "changed"
    # the path does not apply: the classifier's own path takes these
    for text in ["xyz", "", "café", "\ud800", b"abc", 3, None]:
        assert one(text) is None


@needs_compiled
def test_the_predictor_refuses_what_it_cannot_make_and_passes_its_parts_errors_on():
    from dataclasses import dataclass

    from kdedge_runtime import Prediction

    @dataclass
    class Plain:  # no slots
        label: str
        score: float
        logits: list

    model = small_model()
    with pytest.raises(TypeError, match="prediction must keep label in a slot of its own"):
        ngram_model.Predictor(model, letter_ids, None, ("a", "b", "c"), Plain)
    with pytest.raises(ValueError, match="labels must name each of the model's outputs"):
        ngram_model.Predictor(model, letter_ids, None, ("a", "b"), Prediction)
    with pytest.raises(TypeError, match="Model was not initialised"):
        ngram_model.Predictor(ngram_model.Model.__new__(ngram_model.Model), letter_ids, None, ("a", "b", "c"),
                              Prediction)
    one = ngram_model.Predictor(model, letter_ids, None, ("a", "b", "c"), Prediction)
    with pytest.raises(TypeError, match="takes one text"):
        one("a", "b")
    with pytest.raises(TypeError, match="must give bytes"):
        ngram_model.Predictor(model, lambda text, max_words: [1], None, ("a", "b", "c"), Prediction)("a")
    with pytest.raises(IndexError, match="id 9 is outside the embedding table"):
        ngram_model.Predictor(model, lambda t, m: np.asarray([9], np.int64).tobytes(), None, ("a", "b", "c"),
                              Prediction)("a")
    with pytest.raises(ZeroDivisionError):
        ngram_model.Predictor(model, lambda t, m: 1 / 0, None, ("a", "b", "c"), Prediction)("a")


def mutate(model_bytes: bytes, change) -> bytes:
    model = onnx.ModelProto()
    model.ParseFromString(model_bytes)
    change(model.graph)
    return model.SerializeToString()


def node(graph, op: str, nth: int = 0):
    return [n for n in graph.node if n.op_type == op][nth]


def attribute(graph, op: str, name: str, nth: int = 0):
    return next(a for a in node(graph, op, nth).attribute if a.name == name)


def set_constant(graph, old, new):
    """The Constant node holding `old` holds `new` (of its dtype) instead."""
    found = next(n for n in graph.node
                 if n.op_type == "Constant" and onnx.numpy_helper.to_array(n.attribute[0].t).tolist() == old)
    dtype = onnx.numpy_helper.to_array(found.attribute[0].t).dtype
    found.attribute[0].t.CopyFrom(onnx.numpy_helper.from_array(np.asarray(new, dtype=dtype)))


def append_node(graph):
    node(graph, "Gemm", 1).output[0] = "before"
    graph.node.append(onnx.helper.make_node("Neg", ["before"], ["logits"]))


CHANGES = {  # each a graph ONNX Runtime runs, computing something else than the n-gram student
    "a sigmoid for the ReLU": lambda g: setattr(node(g, "Relu"), "op_type", "Sigmoid"),
    "the head not transposed": lambda g: setattr(attribute(g, "Gemm", "transB", 1), "i", 0),
    "alpha 2": lambda g: setattr(attribute(g, "Gemm", "alpha"), "f", 2.0),
    "a sum over the features": lambda g: set_constant(g, [1], [2]),
    "ids above 1 counted": lambda g: set_constant(g, 0, 1),
    "a count of at least 2": lambda g: set_constant(g, 1.0, 2.0),
    "a node after the head": append_node,
    "a second input": lambda g: g.input.append(onnx.helper.make_tensor_value_info("attention_mask",
                                                                                   onnx.TensorProto.INT64, [1, 1])),
    "a product for the mean": lambda g: setattr(node(g, "Div"), "op_type", "Mul"),
}


@needs_compiled
@pytest.mark.parametrize("change", sorted(CHANGES))
def test_any_other_graph_is_left_to_onnx_runtime(change, tmp_path):
    model_bytes = exported(tmp_path, hidden=6, int8=True)
    assert ngram_model.compile_graph(model_bytes) is not None
    assert ngram_model.compile_graph(mutate(model_bytes, CHANGES[change])) is None


def test_bytes_that_are_no_graph_are_left_to_onnx_runtime():
    assert ngram_model.compile_graph(b"not a model") is None


@needs_compiled
def test_the_compiled_model_refuses_what_it_cannot_run():
    table, scale = np.zeros((5, 3), dtype=np.int8), np.ones(5, dtype=np.float32)
    head = (np.ones((2, 3), dtype=np.float32), np.zeros(2, dtype=np.float32))
    model = ngram_model.Model(table, scale, [head])
    for args, words in [((table, np.ones(4, dtype=np.float32), [head]), "one value per row"),
                        ((table.astype(np.float32), scale, [head]), "format 'b'"),
                        ((table, scale, [(np.ones((2, 4), dtype=np.float32), head[1])]), "weight must be [out, 3]"),
                        ((table, scale, []), "1 to 8"),
                        ((table, scale, [head] * 9), "1 to 8")]:
        with pytest.raises(ValueError, match=re.escape(words)):
            ngram_model.Model(*args)
    with pytest.raises(IndexError, match="id 5 is outside the embedding table"):
        model.run(np.asarray([[1, 5]]))
    with pytest.raises(ValueError, match="2-D C-contiguous int64"):
        model.run(np.asarray([[1, 2]], dtype=np.int32))
    with pytest.raises(ValueError, match="native int64 bytes"):
        model.one(b"123")
    with pytest.raises(IndexError, match="id 5 is outside the embedding table"):
        model.one(np.asarray([1, 5], dtype=np.int64).tobytes())
