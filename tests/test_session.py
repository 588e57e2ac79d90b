"""The session options the runtimes load bundles with (kdedge_runtime.session): on the CPU, ONNX Runtime keeps
the residual Add and LayerNormalization apart instead of fusing them into its slower SkipLayerNormalization."""

import subprocess
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from kdedge_runtime import Classifier
from kdedge_runtime.session import session_options

CPU = ["CPUExecutionProvider"]


@pytest.fixture(scope="module")
def optimized_bundles(tiny_tinybert_student, glue_dir, tmp_path_factory):
    """A tiny transformer through kdedge's graph optimizer, fp32 and int8: it leaves each residual Add before its
    LayerNormalization, shapes known, the pattern ONNX Runtime fuses when it loads the graph. Every position kept
    (--no-first-token): the student's one layer is its last, whose residuals otherwise run on one row."""
    from tests.conftest import export_tiny

    root = tmp_path_factory.mktemp("optimized")
    return {q: export_tiny(tiny_tinybert_student, glue_dir, root / q, optimize=True, quantize=q, first_token=False)
            for q in ("none", "dynamic")}


def _graph_ort_runs(model, options, out):
    """The node types of the graph ONNX Runtime runs after its own optimizations, and the session."""
    options.optimized_model_filepath = str(out)
    session = ort.InferenceSession(str(model), options, providers=CPU)
    return Counter(n.op_type for n in onnx.load(str(out)).graph.node), session


def test_cpu_sessions_leave_layer_norm_unfused_with_the_same_logits(optimized_bundles, tmp_path):
    model = optimized_bundles["none"] / "model.onnx"
    fused, default = _graph_ort_runs(model, ort.SessionOptions(), tmp_path / "default.onnx")
    unfused, ours = _graph_ort_runs(model, session_options(CPU), tmp_path / "ours.onnx")
    assert fused["SkipLayerNormalization"] > 0  # what ONNX Runtime does by itself: the test can fail
    assert unfused["SkipLayerNormalization"] == 0 and unfused["LayerNormalization"] == fused["SkipLayerNormalization"]
    ids = np.array([[2, 7, 9, 11, 3]], dtype=np.int64)
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    feed = {i.name: feed[i.name] for i in ours.get_inputs()}
    np.testing.assert_allclose(ours.run(None, feed)[0], default.run(None, feed)[0], atol=1e-5)


def test_sessions_with_a_gpu_provider_keep_the_fusion(optimized_bundles, tmp_path):
    model = optimized_bundles["none"] / "model.onnx"
    options = session_options(["CUDAExecutionProvider", "CPUExecutionProvider"], threads=1)
    ops, _ = _graph_ort_runs(model, options, tmp_path / "gpu.onnx")
    assert ops["SkipLayerNormalization"] > 0 and options.intra_op_num_threads == 1


def test_the_classifier_and_the_export_check_score_with_these_options(optimized_bundles, glue_dir):
    from kdedge.onnx.parity import cpu_session

    bundle = optimized_bundles["dynamic"]
    texts = [line.split("\t")[0] for line in (glue_dir / "SST-2" / "dev.tsv").read_text().splitlines()[1:11]]
    clf = Classifier(bundle)
    ours = ort.InferenceSession(str(bundle / "model.onnx"), session_options(CPU), providers=CPU)
    for text in texts:
        feed = clf.pad([{k: v[0] for k, v in clf.encode([text], None).items() if k != "lengths"}])
        expected = ours.run(["logits"], feed)[0]
        np.testing.assert_array_equal(clf.run_batch(feed), expected)
        np.testing.assert_array_equal(cpu_session(bundle / "model.onnx").run(["logits"], feed)[0], expected)



NODE_SESSION = """
import * as ort from "onnxruntime-node";
import { sessionOptionsFor } from "kdedge-runtime-core";
const [model, out, ours] = process.argv.slice(1);
const options = { executionProviders: ["cpu"], optimizedModelFilePath: out };
await ort.InferenceSession.create(model, ours === "1" ? sessionOptionsFor(options) : options);
"""


@pytest.mark.parametrize("ours", [True, False])
def test_the_javascript_runtimes_make_the_same_choice(optimized_bundles, tmp_path, ours):
    """onnxruntime-node with kdedge-runtime-core's session options runs the graph the Python runtime runs, where
    by itself it fuses (the browser runtime passes the same options to onnxruntime-web)."""
    from tests.test_runtime import NODE_DIR, _node_available

    if not _node_available():
        pytest.skip("node and export/node/node_modules are needed (cd export/node && npm ci)")
    out = tmp_path / "node.onnx"
    done = subprocess.run(["node", "--input-type=module", "-e", NODE_SESSION, optimized_bundles["none"] / "model.onnx",
                           out, "1" if ours else "0"], cwd=NODE_DIR, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    ops = Counter(n.op_type for n in onnx.load(str(out)).graph.node)
    assert (ops["SkipLayerNormalization"] == 0) == ours, ops
