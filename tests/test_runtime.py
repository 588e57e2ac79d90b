"""The torch-free runtimes (Python kdedge_runtime, Node export/node) against each other and the PyTorch student."""

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from tests.conftest import _distil, export_tiny
from kdedge_runtime import BundleError, Classifier

ROOT = Path(__file__).resolve().parents[1]
NODE_DIR = ROOT / "export" / "node"
NODE_BATCH = 7
EDGE_CASES = ["", "   ", "a " * 400, "Ce film était très émouvant — 真的很好看! 🎬👍", "ÅNGSTRÖM naïve café", "\t\n"]


def _node_available() -> bool:
    ok = shutil.which("node") is not None and (NODE_DIR / "node_modules" / "onnxruntime-node").is_dir()
    if not ok and os.environ.get("KDEDGE_REQUIRE_NODE"):
        pytest.fail("KDEDGE_REQUIRE_NODE is set but node or export/node/node_modules is missing (npm ci in export/node)")
    return ok


def node_logits(bundle: Path, texts, pairs=None):
    if not _node_available():
        pytest.skip("node and export/node/node_modules are needed (cd export/node && npm ci)")
    proc = subprocess.run(["node", str(NODE_DIR / "tools" / "logits.js"), str(bundle)], capture_output=True, text=True,
                          input=json.dumps({"texts": texts, "pairs": pairs, "batchSize": NODE_BATCH}), timeout=120)
    out = json.loads(proc.stdout) if proc.stdout else {"error": {"name": "crash", "message": proc.stderr}}
    return out


def torch_logits(student_dir: Path, texts, pairs=None) -> np.ndarray:
    from kdedge.data.batching import encode
    from kdedge.data.loaders import Split
    from kdedge.models.students import load_student
    from kdedge.training import eval_loader, predict_logits

    student = load_student(student_dir)
    split = Split(text=list(texts), labels=np.zeros(len(texts)), text_pair=pairs)
    features = encode(student.tokenizer, split, student.meta["max_length"], siamese=student.siamese,
                      add_special_tokens=student.add_special_tokens)
    loader, order = eval_loader(features, 16, student.tokenizer.pad_token_id)
    return predict_logits(student.model, loader, order, student.logits)


@pytest.fixture(scope="module")
def sst2_texts(glue_dir):
    from kdedge.config import DataOptions
    from kdedge.data import load_task_data

    dev = load_task_data(DataOptions(task="sst2", data_dir=str(glue_dir), max_eval_samples=300)).dev
    return list(dev.text) + EDGE_CASES


@pytest.fixture(scope="module")
def pair_students(tmp_path_factory, tiny_pair_teacher, glue_dir, glove_path):
    """STS-B students: a cross-encoder transformer (joint pairs) and a siamese BiLSTM (separate pairs)."""
    common = dict(task="stsb", max_train_samples=300, max_eval_samples=100, epochs=1)
    return {
        "tinybert": _distil(tmp_path_factory, tiny_pair_teacher, glue_dir, "pair-tinybert", student="tinybert",
                            layers=1, init="teacher-layers", lr=1e-3, **common),
        "bilstm": _distil(tmp_path_factory, tiny_pair_teacher, glue_dir, "pair-bilstm", word_vectors=str(glove_path),
                          lstm_hidden=16, mlp_hidden=16, lr=1e-2, **common),
    }


@pytest.mark.parametrize("name", ["bilstm-none", "tinybert-none", "bilstm-dynamic", "tinybert-dynamic"])
def test_python_node_and_pytorch_agree_on_sst2(name, tiny_bundles, tiny_bilstm_student, tiny_tinybert_student,
                                               sst2_texts):
    bundle = tiny_bundles[name]
    python = Classifier(bundle).logits(sst2_texts, batch_size=13)
    if name.endswith("-none"):  # fp32: the runtime's tokenization and padding reproduce the PyTorch student
        student = tiny_bilstm_student if name.startswith("bilstm") else tiny_tinybert_student
        reference = torch_logits(student, sst2_texts)
        assert np.abs(python - reference).max() < 1e-4
        assert (python.argmax(-1) == reference.argmax(-1)).all()
    # Dynamic int8 ranges each activation over the whole batch, so int8 logits depend (slightly) on which
    # examples share a batch: the runtimes are compared on the same batches (same size, same length sort).
    same_batches = Classifier(bundle).logits(sst2_texts, batch_size=NODE_BATCH)
    node = node_logits(bundle, sst2_texts)
    assert "error" not in node, node
    np.testing.assert_allclose(np.asarray(node["logits"]), same_batches, atol=1e-5)
    assert node["labels"] == [p.label for p in Classifier(bundle).predict(sst2_texts)]


def test_an_mpnet_student_with_robertas_post_processor_agrees_across_runtimes(glue_dir, sst2_texts, tmp_path):
    from kdedge.config import DataOptions
    from kdedge.data import load_task_data
    from tests.conftest import _distil_at, build_tiny_mpnet

    train = load_task_data(DataOptions(task="sst2", data_dir=str(glue_dir), max_train_samples=2000)).train
    teacher = build_tiny_mpnet(tmp_path / "teacher", train.text)
    student = _distil_at(tmp_path / "student", teacher, glue_dir, student="tinybert", layers=1,
                         init="teacher-layers", lr=1e-3, max_train_samples=300, epochs=1)
    bundle = export_tiny(student, glue_dir, tmp_path / "bundle")
    assert json.loads((bundle / "tokenizer.json").read_text())["post_processor"]["type"] == "RobertaProcessing"
    python = Classifier(bundle).logits(sst2_texts, batch_size=NODE_BATCH)
    assert np.abs(python - torch_logits(student, sst2_texts)).max() < 1e-4
    node = node_logits(bundle, sst2_texts)
    assert "error" not in node, node
    np.testing.assert_allclose(np.asarray(node["logits"]), python, atol=1e-5)


ONE_TEXT_CASES = ["a charming and often affecting journey .", "", "word " * 400, "naïve café ☕", "bad \ud800 byte",
                  "UPPER case, [MASK] and [cls] (tokens)!?", "tab\tand\nnewline", "x" * 150]


def assert_one_text_path_is_the_batch_path(classifier, texts, pairs=None):
    """predict(text) takes a short path (no sort, no padding): its logits must be the batch path's for a batch of one,
    bit for bit (dynamic int8 too: same feed, same ranges)."""
    for i, text in enumerate(texts):
        pair = None if pairs is None else pairs[i]
        one = classifier.logits(text, pair)
        np.testing.assert_array_equal(one, classifier.logits([text], None if pair is None else [pair]))
        prediction = classifier.predict(text, pair)
        assert prediction.logits == one[0].tolist()
        if not classifier.is_regression:
            probabilities = np.exp(one[0] - one[0].max()) / np.exp(one[0] - one[0].max()).sum()
            assert prediction.label == classifier.labels[int(probabilities.argmax())]
            assert prediction.score == pytest.approx(float(probabilities.max()), abs=1e-6)


@pytest.mark.parametrize("name", ["bilstm-none", "tinybert-none", "bilstm-dynamic", "tinybert-dynamic"])
def test_one_text_takes_the_short_path_to_the_same_answer(name, tiny_bundles):
    assert_one_text_path_is_the_batch_path(Classifier(tiny_bundles[name]), ONE_TEXT_CASES)


@pytest.mark.parametrize("arch", ["tinybert", "bilstm"])
def test_pairs_agree_across_runtimes(arch, pair_students, glue_dir, tmp_path):
    from kdedge.config import DataOptions
    from kdedge.data import load_task_data

    bundle = export_tiny(pair_students[arch], glue_dir, tmp_path / "b")
    dev = load_task_data(DataOptions(task="stsb", data_dir=str(glue_dir), max_eval_samples=200)).dev
    texts = list(dev.text) + ["", "a " * 300, "naïve café"]
    pairs = list(dev.text_pair) + ["something", "b " * 300, ""]
    classifier = Classifier(bundle)
    assert classifier.pair_encoding == ("joint" if arch == "tinybert" else "separate")
    python = classifier.logits(texts, pairs, batch_size=NODE_BATCH)
    reference = torch_logits(pair_students[arch], texts, pairs)
    assert python.shape == (len(texts), 1) and np.abs(python - reference).max() < 1e-4
    prediction = classifier.predict(texts[0], pairs[0])
    assert prediction.label is None and prediction.score == pytest.approx(float(python[0, 0]), abs=1e-6)
    assert_one_text_path_is_the_batch_path(classifier, ONE_TEXT_CASES, ONE_TEXT_CASES[::-1])
    node = node_logits(bundle, texts, pairs)
    assert "error" not in node, node
    np.testing.assert_allclose(np.asarray(node["logits"]), python, atol=1e-5)


def test_int8_siamese_bilstm_runs_in_both_runtimes_and_agrees_with_fp32(pair_students, glue_dir, tmp_path):
    """The siamese BiLSTM runs its two LSTMs once per text of a pair. Its int8 export failed at the parity check
    ("Input W must have shape {1,64,100}. Actual:{64,100}": the second text's LSTMs, left float, read a weight the
    quantizer had reshaped); now all four LSTMs are int8, sharing one copy of each weight."""
    import onnx

    from kdedge.config import DataOptions
    from kdedge.data import load_task_data

    fp32 = export_tiny(pair_students["bilstm"], glue_dir, tmp_path / "fp32")
    int8 = export_tiny(pair_students["bilstm"], glue_dir, tmp_path / "int8", quantize="dynamic")
    assert json.loads((int8 / "manifest.json").read_text())["quantization"]["ops"]["DynamicQuantizeLSTM"] == 4
    lstms = [n for n in onnx.load(str(int8 / "model.onnx")).graph.node if "LSTM" in n.op_type]
    assert [n.op_type for n in lstms] == ["DynamicQuantizeLSTM"] * 4
    assert len({n.input[1] for n in lstms}) == len({n.input[2] for n in lstms}) == 2  # forward, backward
    dev = load_task_data(DataOptions(task="stsb", data_dir=str(glue_dir), max_eval_samples=200)).dev
    texts = list(dev.text) + ["", "a " * 300, "naïve café"]
    pairs = list(dev.text_pair) + ["something", "b " * 300, ""]
    classifier = Classifier(int8)
    assert classifier.pair_encoding == "separate"
    python = classifier.logits(texts, pairs, batch_size=NODE_BATCH)
    reference = Classifier(fp32).logits(texts, pairs, batch_size=NODE_BATCH)
    assert python.shape == reference.shape == (len(texts), 1)
    # int8 noise on STS-B scores (about 0.01 here, scores spread over ~2): close, and in the same order
    assert np.abs(python - reference).max() < 0.05
    assert np.corrcoef(python[:, 0], reference[:, 0])[0, 1] > 0.999
    prediction = classifier.predict(texts[0], pairs[0])
    alone = classifier.logits(texts[:1], pairs[:1])
    assert prediction.label is None and prediction.score == pytest.approx(float(alone[0, 0]), abs=1e-6)
    node = node_logits(int8, texts, pairs)
    assert "error" not in node, node
    np.testing.assert_allclose(np.asarray(node["logits"]), python, atol=1e-5)


def test_bad_bundles_and_inputs_give_clear_errors_in_both_runtimes(tiny_bundles, tmp_path):
    good = tiny_bundles["bilstm-none"]
    with pytest.raises(BundleError, match="is not a folder"):
        Classifier(tmp_path / "nope")
    broken = tmp_path / "broken"
    shutil.copytree(good, broken)
    (broken / "model.onnx").unlink()
    with pytest.raises(BundleError, match="model.onnx missing"):
        Classifier(broken)
    mismatched = tmp_path / "mismatched"
    shutil.copytree(good, mismatched)
    manifest = json.loads((mismatched / "manifest.json").read_text())
    manifest["files"]["model.onnx"]["sha256"] = "0" * 64
    (mismatched / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="does not match its manifest"):
        Classifier(mismatched)
    classifier = Classifier(good)
    with pytest.raises(TypeError, match="texts must be a string or a list of strings, not int"):
        classifier.predict(123)
    with pytest.raises(TypeError, match="texts must contain only strings; found NoneType, int"):
        classifier.predict(["ok", 1, None])
    with pytest.raises(ValueError, match=r"classifies single sentences: drop pairs"):
        classifier.predict(["a"], ["b"])

    assert node_logits(tmp_path / "nope", ["x"])["error"]["name"] == "BundleError"
    assert "does not match its manifest" in node_logits(mismatched, ["x"])["error"]["message"]
    assert "model.onnx missing" in node_logits(broken, ["x"])["error"]["message"]
    error = node_logits(good, 123)["error"]
    assert error["name"] == "TypeError" and "texts must be a string or an array of strings" in error["message"]
    error = node_logits(good, ["a"], ["b"])["error"]
    assert "classifies single sentences: drop pairs" in error["message"]


def test_pair_model_needs_pairs(pair_students, glue_dir, tmp_path):
    bundle = export_tiny(pair_students["tinybert"], glue_dir, tmp_path / "b")
    with pytest.raises(ValueError, match=r"\(stsb\) classifies sentence pairs: give pairs"):
        Classifier(bundle).predict("only one")
    with pytest.raises(ValueError, match="got 2 texts but 1 pairs"):
        Classifier(bundle).predict(["a", "b"], ["c"])
    assert "classifies sentence pairs" in node_logits(bundle, ["only one"])["error"]["message"]


def test_predict_command_on_pairs_names_its_flags_and_reads_tab_separated_stdin(pair_students, glue_dir, tmp_path):
    from click.testing import CliRunner

    from kdedge.cli import main

    bundle = export_tiny(pair_students["tinybert"], glue_dir, tmp_path / "b")
    expected = Classifier(bundle).predict(["A man plays.", "a cat"], ["Someone plays.", "a dog"])
    result = CliRunner().invoke(main, ["predict", "--bundle", str(bundle), "A man plays.", "a cat",
                                       "--pair", "Someone plays.", "--pair", "a dog"])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["score"] for line in result.output.splitlines()] == [p.score for p in expected]
    piped = CliRunner().invoke(main, ["predict", "--bundle", str(bundle)],
                               input="A man plays.\tSomeone plays.\na cat\ta dog\n")
    assert [json.loads(line)["pair"] for line in piped.output.splitlines()] == ["Someone plays.", "a dog"]
    assert [json.loads(line)["score"] for line in piped.output.splitlines()] == [p.score for p in expected]
    for args, stdin, message in ((["only one"], None, "give --pair once per text (1 texts, 0 --pair)"),
                                 ([], "first\tsecond\nno tab here\n", "stdin line 2: this bundle's task (stsb) "
                                                                     "classifies sentence pairs"),
                                 (["--pair", "b"], "a\tb\n", "--pair goes with TEXTS")):
        result = CliRunner().invoke(main, ["predict", "--bundle", str(bundle), *args], input=stdin)
        assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output


def test_runtime_imports_neither_torch_nor_transformers(tiny_bundles):
    code = ("import sys, kdedge.runtime, kdedge_runtime\n"
            f"p = kdedge_runtime.Classifier({str(tiny_bundles['tinybert-dynamic'])!r}).predict('fine')\n"
            "heavy = sorted(m for m in ('torch', 'transformers', 'optimum') if m in sys.modules)\n"
            "print(p.label, heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("[]") and out.split()[0] in ("negative", "positive")


def test_predict_command_and_example_apps_use_the_runtime(tiny_bundles, sst2_texts):
    from click.testing import CliRunner

    from kdedge.cli import main

    bundle = tiny_bundles["tinybert-none"]
    expected = Classifier(bundle).predict(sst2_texts[:3])
    result = CliRunner().invoke(main, ["predict", "--bundle", str(bundle), *sst2_texts[:3]])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["label"] for line in lines] == [p.label for p in expected]
    wrong = CliRunner().invoke(main, ["predict", "--bundle", str(bundle), "--pair", "x", "a"])
    assert wrong.exit_code == 2 and "classifies single sentences: drop --pair" in wrong.output
    # no TEXTS: one prediction per line of stdin, in order, empty lines included
    piped = CliRunner().invoke(main, ["predict", "--bundle", str(bundle)], input="\n".join(sst2_texts[:3]) + "\n\n")
    assert piped.exit_code == 0, piped.output
    lines = [json.loads(line) for line in piped.output.splitlines()]
    assert [line["text"] for line in lines] == sst2_texts[:3] + [""]
    assert [line["label"] for line in lines[:3]] == [p.label for p in expected]

    examples = ROOT / "export" / "python" / "examples"
    stdin = "\n".join(sst2_texts[:3]) + "\n"
    out = subprocess.run([sys.executable, str(examples / "classify.py"), str(bundle)], input=stdin, text=True,
                         capture_output=True, check=True).stdout
    assert [json.loads(line)["label"] for line in out.splitlines()] == [p.label for p in expected]

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, str(examples / "serve.py"), str(bundle), str(port)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert "serving on" in server.stdout.readline()
        body = json.dumps({"texts": sst2_texts[:3]}).encode()
        reply = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/predict", body, timeout=30).read())
        assert [p["label"] for p in reply["predictions"]] == [p.label for p in expected]
        with pytest.raises(urllib.error.HTTPError) as bad:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/predict", b'{"texts": 5}', timeout=30)
        assert bad.value.code == 400 and "texts must be a string" in json.loads(bad.value.read())["error"]
    finally:
        server.terminate()
        server.wait(timeout=10)

    if _node_available():
        out = subprocess.run(["node", str(NODE_DIR / "examples" / "classify.js"), str(bundle)], input=stdin, text=True,
                             capture_output=True, check=True).stdout
        assert [json.loads(line)["label"] for line in out.splitlines()] == [p.label for p in expected]


def _corrupt(bundle: Path, folder: Path, change) -> Path:
    copy = folder / f"case{len(list(folder.iterdir()))}"
    shutil.copytree(bundle, copy)
    before = (copy / "manifest.json").read_text()
    manifest = json.loads(before)
    change(copy, manifest)
    if (copy / "manifest.json").read_text() == before:  # the change edited the manifest object, not the file
        (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def _set(keys, value):
    def change(copy, manifest):
        node = manifest
        for key in keys[:-1]:
            node = node[key]
        if value is _DELETE:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value
    return change


_DELETE = object()


def _bigger_vocabulary(copy, manifest):
    spec = json.loads((copy / "tokenizer.json").read_text())
    size = max(spec["model"]["vocab"].values()) + 1
    spec["model"]["vocab"].update({f"extra{i}": size + i for i in range(500)})
    (copy / "tokenizer.json").write_text(json.dumps(spec))


def _truncated_model(copy, manifest):
    data = (copy / "model.onnx").read_bytes()[:5000]
    (copy / "model.onnx").write_bytes(data)
    manifest["files"]["model.onnx"]["sha256"] = hashlib.sha256(data).hexdigest()


def _tokenizer_links_outside(copy, manifest):
    outside = copy.parent / "outside-tokenizer.json"
    shutil.copy(copy / "tokenizer.json", outside)
    (copy / "tokenizer.json").unlink()
    (copy / "tokenizer.json").symlink_to(outside)


def _model_links_outside(copy, manifest):
    outside = copy.parent / "outside-model.onnx"
    shutil.copy(copy / "model.onnx", outside)
    (copy / "model.onnx").unlink()
    (copy / "model.onnx").symlink_to(outside)


UNTRUSTED_BUNDLES = [
    (_set(["tokenizer", "file"], "../../../../etc/hostname"),
     "field 'tokenizer.file' points outside the bundle (../../../../etc/hostname)"),
    (_set(["tokenizer", "file"], "/etc/hostname"), "field 'tokenizer.file' points outside the bundle (/etc/hostname)"),
    (_tokenizer_links_outside, "field 'tokenizer.file' points outside the bundle (tokenizer.json)"),
    (_model_links_outside, "model.onnx links outside the bundle (model.onnx)"),
    (_set(["task", "is_pair"], _DELETE), "field 'task.is_pair' is missing"),
    (_set(["tokenizer"], _DELETE), "field 'tokenizer.file' is missing"),
    (_set(["max_length"], "128"), "field 'max_length' must be a positive integer, not \"128\""),
    (_set(["max_length"], 0), "field 'max_length' must be a positive integer, not 0"),
    (_set(["tokenizer", "pad_token_id"], -1), "field 'tokenizer.pad_token_id' must be a non-negative integer, not -1"),
    (_set(["tokenizer", "pad_token_id"], 10 ** 9), "field 'tokenizer.pad_token_id' is 1000000000, but tokenizer.json"),
    (_set(["tokenizer", "pair_encoding"], "both"), "field 'tokenizer.pair_encoding' must be null, \"joint\" or"),
    (_set(["inputs"], "input_ids"), "field 'inputs' must be a list of {\"name\": \"...\"} objects"),
    (_set(["outputs"], [{"name": "scores"}]), "has outputs [\"logits\"] but the manifest lists [\"scores\"]"),
    (_set(["label_names"], []), "field 'label_names' is empty for a classification task"),
    (_set(["files", "model.onnx", "sha256"], "abc"), "field 'files.model.onnx.sha256' must be a sha256 hex digest"),
    (_set(["format"], "kdedge-bundle/0"), "has format \"kdedge-bundle/0\"; this runtime reads \"kdedge-bundle/1\""),
    (lambda copy, m: (copy / "tokenizer.json").write_text('{"model": {"type": "WordPiece"'),
     "tokenizer.json is not a valid tokenizer ("),
    (_truncated_model, "model.onnx is not a model ONNX Runtime can load ("),
    (_bigger_vocabulary, "tokens but the embedding table of"),
    (lambda copy, m: (copy / "manifest.json").write_text("[1, 2]"), "manifest.json is not valid JSON (expected an object)"),
]


@pytest.mark.parametrize("change, message", UNTRUSTED_BUNDLES)
def test_untrusted_bundles_are_refused_alike_in_both_runtimes(tiny_bundles, tmp_path, change, message):
    bundle = _corrupt(tiny_bundles["tinybert-none"], tmp_path, change)
    with pytest.raises(BundleError) as python:
        Classifier(bundle)
    assert message in str(python.value)
    node = node_logits(bundle, ["x"]).get("error")
    assert node and node["name"] == "BundleError" and message in node["message"]
    # the same words, up to what a library says about a file it cannot parse
    assert node["message"].split(" (")[0] == str(python.value).split(" (")[0]


@pytest.mark.parametrize("change, message", UNTRUSTED_BUNDLES)
def test_untrusted_bundles_through_kdedge_predict_and_bench(tiny_bundles, glue_dir, tmp_path, change, message):
    from click.testing import CliRunner

    from kdedge.cli import main

    bundle = _corrupt(tiny_bundles["tinybert-none"], tmp_path, change)
    for args in (["predict", "--bundle", str(bundle), "fine"],
                 ["bench", "--bundle", str(bundle), "--backends", "ort-cpu", "--data-dir", str(glue_dir),
                  "--out", str(tmp_path / "report")]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert result.output.startswith("Error: ") and message in result.output, result.output
        assert not (tmp_path / "report").exists() and not (tmp_path / "report.partial").exists()


def test_plugin_provider_is_attached_per_device_or_refused_with_the_reason(tiny_bundles):
    from kdedge_runtime import plugins

    with pytest.raises(ValueError, match="not a known plugin provider"):
        plugins.attach(ort.SessionOptions(), "NoSuchExecutionProvider")
    pytest.importorskip("onnxruntime_ep_openvino")
    bundle = tiny_bundles["tinybert-dynamic"]
    vendor = plugins.cpu_vendor()
    # twice: once registered, ONNX Runtime lists the plugin among its providers, yet a session that only names it
    # runs on the CPU provider; every Classifier must attach it again
    for _ in range(2):
        if vendor and vendor[1] != 0x8086:  # Intel's plugin offers Intel devices only
            with pytest.raises(ValueError, match="OpenVINOExecutionProvider offers no device"):
                Classifier(bundle, providers=["OpenVINOExecutionProvider"])
        else:
            clf = Classifier(bundle, providers=["OpenVINOExecutionProvider"])
            assert clf.session.get_providers()[0] == "OpenVINOExecutionProvider"
            np.testing.assert_allclose(clf.logits(["fine"]), Classifier(bundle).logits(["fine"]), atol=0.05)
            # an fp32 bundle computes in fp32 (OpenVINO's default would be bfloat16 on CPUs that have it)
            fp32 = tiny_bundles["tinybert-none"]
            texts = ["a fine, moving film", "dull and far too long"]
            np.testing.assert_allclose(Classifier(fp32, providers=["OpenVINOExecutionProvider"]).logits(texts),
                                       Classifier(fp32).logits(texts), atol=1e-5)
