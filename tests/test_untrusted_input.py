"""Issue 48: the holes found in untrusted input by hand and by the fuzzers (tests/test_fuzz.py), each kept as a
regular test: text that is not valid UTF-8, student folders with missing files, a backend that cannot compile a
bundle's graph, and one test per crash the fuzzers found."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner

from kdedge.cli import main
from kdedge.errors import KdedgeError
from kdedge_runtime import Classifier

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------ text that is not UTF-8

def test_predict_reads_argv_bytes_that_are_not_utf8_as_replacement_characters(tiny_bundles, tmp_path):
    """`kdedge predict --bundle B $'caf\\xe9'` (a Latin-1 terminal): Python turns the byte into a lone surrogate,
    which the tokenizer refused with a TypeError traceback. Now each such byte reads as U+FFFD."""
    bundle = tiny_bundles["tinybert-none"]
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.run([sys.executable, "-m", "kdedge.cli", "predict", "--bundle", str(bundle).encode(),
                           b"caf\xe9 was fine", b"\xff\xfe"], capture_output=True, env=env, timeout=120)
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr.decode(errors="replace")
    lines = [json.loads(line) for line in proc.stdout.decode("utf-8").splitlines()]
    assert [line["text"] for line in lines] == ["caf\ufffd was fine", "\ufffd\ufffd"]
    expected = Classifier(bundle).predict(["caf\ufffd was fine", "\ufffd\ufffd"])
    assert [line["label"] for line in lines] == [p.label for p in expected]
    # stdin too: its bytes are read as UTF-8 with the same replacement
    piped = subprocess.run([sys.executable, "-m", "kdedge.cli", "predict", "--bundle", str(bundle)],
                           input=b"caf\xe9 was fine\n", capture_output=True, env=env, timeout=120)
    assert piped.returncode == 0 and json.loads(piped.stdout)["text"] == "caf\ufffd was fine", piped.stderr


def test_predict_help_says_how_text_that_is_not_utf8_is_read():
    result = CliRunner().invoke(main, ["predict", "--help"])
    assert "U+FFFD" in result.output and "UTF-8" in result.output


def test_classifier_reads_lone_surrogates_as_replacement_characters_and_refuses_non_strings(tiny_bundles):
    classifier = Classifier(tiny_bundles["bilstm-none"])
    got = classifier.predict(["caf\udce9 was fine", "\ud800", "\ud83d\ude00 ok"])
    assert [p.logits for p in got] == [p.logits for p in classifier.predict(["caf\ufffd was fine", "\ufffd", "😀 ok"])]
    assert classifier.predict("\udcff").label in classifier.labels
    for bad, message in ((b"bytes", "not bytes"), (3, "not int"), (["a", None], "found NoneType"),
                         ([["nested"]], "found list"), ({"a": 1}, "not dict")):
        with pytest.raises(TypeError, match=message) as refused:
            classifier.predict(bad)
        assert "\n" not in str(refused.value)


# ---------------------------------------------------------------------------- student folders missing files

@pytest.mark.parametrize("student, removed, message", [
    ("bilstm", "tokenizer.json", "tokenizer.json is missing"),
    ("bilstm", "tokenizer_config.json", "tokenizer_config.json is missing"),
    ("bilstm", "model.safetensors", "model.safetensors is missing"),
    ("tinybert", "tokenizer.json", "tokenizer.json is missing"),
    ("tinybert", "config.json", "config.json is missing"),
])
def test_export_names_the_missing_file_of_a_student_folder_in_one_line(student, removed, message, request,
                                                                      glue_dir, tmp_path):
    """transformers' own message ("Couldn't instantiate the backend tokenizer from one of: (1) ... (2) ...") spanned
    five lines; a missing tokenizer_config.json (no pad token) ended in a TypeError traceback while padding."""
    folder = tmp_path / "student"
    shutil.copytree(request.getfixturevalue(f"tiny_{student}_student"), folder)
    (folder / removed).unlink()
    result = CliRunner().invoke(main, ["export", "--model", str(folder), "--out", str(tmp_path / "bundle"),
                                       "--data-dir", str(glue_dir), "--max-eval-samples", "20"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if "Error" in line or "error" in line]  # not the progress
    assert errors == [f"Error: {folder}: the student's files are missing or corrupt: {message}"], result.output
    assert not (tmp_path / "bundle").exists() and not (tmp_path / "bundle.partial").exists()


def test_a_corrupt_tokenizer_file_is_named_with_the_parser_first_line(tiny_tinybert_student, tmp_path):
    from kdedge.models.students import load_student

    folder = tmp_path / "student"
    shutil.copytree(tiny_tinybert_student, folder)
    (folder / "tokenizer.json").write_text('{"model": {"type": "WordPiece"')
    with pytest.raises(KdedgeError) as refused:
        load_student(folder)
    assert str(refused.value).startswith(f"{folder}: the student's files are missing or corrupt: tokenizer.json is "
                                         "corrupt (") and "\n" not in str(refused.value)


# ----------------------------------------------------------- a backend that cannot compile a bundle's graph

# What ONNX Runtime's OpenVINO provider raises for an int8 BiLSTM bundle on an Intel CPU (OpenVINO's ONNX frontend
# has no conversion for ONNX Runtime's DynamicQuantizeLSTM contrib op).
EP_FAIL = ("[ONNXRuntimeError] : 11 : EP_FAIL : Exception from src/frontends/onnx/frontend/src/frontend.cpp:245:\n"
           "Check 'unconverted_ops.empty()' failed at src/frontends/common/src/unconverted_ops_report.cpp:61:\n"
           "FrontEnd API failed with OpConversionFailure:\nModel wasn't fully converted.\nSummary:\n"
           "-- No conversion rule found for operations: com.microsoft.DynamicQuantizeLSTM-1\n")


@pytest.fixture
def openvino_cannot_compile_lstm(monkeypatch):
    """ort-openvino usable, its provider failing as on an Intel CPU for graphs with DynamicQuantizeLSTM; the bench
    worker run in this process (so that the simulation reaches it)."""
    from kdedge.bench import backends, run, worker
    from kdedge_runtime import plugins

    from onnxruntime.capi.onnxruntime_pybind11_state import EPFail

    attached, real_session = set(), ort.InferenceSession

    def session(path, options=None, providers=None, **kw):
        openvino = id(options) in attached or "OpenVINOExecutionProvider" in (providers or [])
        if openvino and "DynamicQuantizeLSTM" in {n.op_type for n in onnx.load(path).graph.node}:
            raise EPFail(EP_FAIL)
        return real_session(path, options, providers=providers or ["CPUExecutionProvider"], **kw)

    monkeypatch.setattr(ort, "InferenceSession", session)
    monkeypatch.setattr(plugins, "attach", lambda options, provider: attached.add(id(options)))
    usable = dataclasses.replace(backends.BACKENDS["ort-openvino"], unavailable=lambda: None)
    monkeypatch.setitem(backends.BACKENDS, "ort-openvino", usable)

    def in_process(job, tmp):
        return json.loads(json.dumps(worker.run_job(job)))

    monkeypatch.setattr(run, "run_in_process", in_process)


def test_a_backend_that_cannot_compile_the_graph_is_an_unavailable_row_naming_the_op(openvino_cannot_compile_lstm,
                                                                                      tiny_bundles, glue_dir, tmp_path):
    result = CliRunner().invoke(main, ["bench", "--bundle", str(tiny_bundles["bilstm-dynamic"]),
                                       "--backends", "ort-cpu,ort-openvino", "--data-dir", str(glue_dir),
                                       "--max-eval-samples", "40", "--batch-sizes", "1", "--seq-lens", "8",
                                       "--warmup", "0", "--min-runs", "2", "--min-time", "0",
                                       "--out", str(tmp_path / "report")])
    assert result.exit_code == 0 and "gates failed" not in result.output, result.output
    rows = {(r["model"], r["backend"]): r for r in json.loads((tmp_path / "report" / "report.json").read_text())["rows"]}
    lstm = rows[("bilstm-dynamic", "ort-openvino")]
    assert lstm["status"] == "unavailable", lstm
    assert lstm["why"] == ("OpenVINOExecutionProvider cannot run this model's graph: it has no implementation of "
                           "com.microsoft.DynamicQuantizeLSTM")
    assert rows[("bilstm-dynamic", "ort-cpu")]["status"] == "ok"
    assert json.loads((tmp_path / "report" / "gates.json").read_text())["failures"] == []
    assert "bilstm-dynamic on ort-openvino: unavailable: OpenVINOExecutionProvider cannot run" in \
        (tmp_path / "report" / "report.md").read_text()


def test_only_a_graph_the_backend_cannot_run_is_unavailable_other_failures_stay_errors():
    from onnxruntime.capi.onnxruntime_pybind11_state import EPFail, NotImplemented as OrtNotImplemented

    from kdedge.bench.backends import BACKENDS
    from kdedge.bench.worker import unsupported_graph
    from kdedge_runtime import BundleError

    try:  # as the runtime raises it: its one line, the whole message as the context
        try:
            raise EPFail(EP_FAIL)
        except EPFail:
            raise BundleError("m/model.onnx is not a model ONNX Runtime can load ([ONNXRuntimeError] : 11 : "
                              "EP_FAIL : Exception from src/frontends/onnx/frontend/src/frontend.cpp:245:)") from None
    except BundleError as e:
        wrapped = e
    assert "DynamicQuantizeLSTM" in unsupported_graph(BACKENDS["ort-openvino"], wrapped)
    assert "DynamicQuantizeLSTM" in unsupported_graph(BACKENDS["openvino-cpu"], RuntimeError(EP_FAIL.split(": ", 3)[3]))
    missing_kernel = OrtNotImplemented("[ONNXRuntimeError] : 9 : NOT_IMPLEMENTED : Could not find an implementation "
                                       "for DynamicQuantizeLSTM(1) node with name 'lstm'")
    assert unsupported_graph(BACKENDS["ort-cuda"], missing_kernel).endswith("no implementation of DynamicQuantizeLSTM")
    # the CPU provider is the reference every bundle runs on: there, any failure is a failed benchmark
    assert unsupported_graph(BACKENDS["ort-cpu"], wrapped) is None
    assert unsupported_graph(BACKENDS["ort-openvino"], ValueError("some other failure")) is None


# ------------------------------------------------------------------ crashes the fuzzers found (tests/test_fuzz.py)

def test_fuzz_finding_a_deeply_nested_manifest_is_a_bundle_error(tiny_bundles, tmp_path):
    """manifest.json of some hundreds of nested [ : RecursionError from json.loads escaped read_manifest."""
    from kdedge_runtime import BundleError

    bundle = tmp_path / "b"
    shutil.copytree(tiny_bundles["bilstm-none"], bundle)
    (bundle / "manifest.json").write_text('{"task": ' + "[" * 5000 + "]" * 5000 + "}")
    with pytest.raises(BundleError, match=r"manifest.json is not valid JSON \(nested too deeply\)$"):
        Classifier(bundle)


def test_fuzz_finding_a_model_that_fails_on_an_input_is_a_bundle_error(tiny_bundles, tmp_path):
    """A model.onnx changed so that a Gather reads past its table on long inputs (the probe at load passes): ONNX
    Runtime's InvalidArgument escaped predict()."""
    from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

    from kdedge_runtime import BundleError

    classifier = Classifier(tiny_bundles["tinybert-none"])
    real_run = classifier.session.run

    def failing(outputs, feed):
        if feed["input_ids"].shape[1] > 8:
            raise InvalidArgument("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Non-zero status code returned while "
                                  "running Gather node. Status Message: indices element out of data bounds, idx=257")
        return real_run(outputs, feed)

    classifier.session = type("Session", (), {"run": staticmethod(failing)})()
    assert classifier.predict("short").label in classifier.labels
    with pytest.raises(BundleError, match=r"model.onnx failed on this input \(\[ONNXRuntimeError\] : 2 : "):
        classifier.predict("a much longer text than the eight positions allowed here")


@pytest.mark.parametrize("line, why", [("[" * 5000 + "]" * 5000, "nested too deeply"),
                                       ('{"sentence": "x", "label": ' + "9" * 5000 + "}", "Exceeds the limit")])
def test_fuzz_finding_jsonl_lines_nested_deep_or_with_huge_integers_are_data_errors(tmp_path, line, why):
    from kdedge_runtime.data import DataError, read_labelled

    path = tmp_path / "dev.jsonl"
    path.write_text('{"sentence": "fine", "label": 1}\n' + line + "\n")
    with pytest.raises(DataError, match=rf"dev.jsonl, line 2: not valid JSON \({why}") as refused:
        read_labelled(path, ["sentence", "label"], True, ["0", "1"])
    assert "\n" not in str(refused.value)


def test_fuzz_finding_an_unreadable_parquet_file_is_one_line(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kdedge_runtime.data import DataError, read_labelled

    path = tmp_path / "dev.parquet"
    pq.write_table(pa.table({"sentence": ["a", "b"], "label": ["0", "1"]}), path)
    data = bytearray(path.read_bytes())
    data[8:40] = b"\xff" * 32  # the first page header
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="not a readable Parquet file") as refused:
        read_labelled(path, ["sentence", "label"], True, ["0", "1"])
    assert "\n" not in str(refused.value)


def test_fuzz_finding_a_config_that_is_not_utf8_is_a_kdedge_error(tmp_path):
    from kdedge.config import BenchConfig, build_config

    path = tmp_path / "c.yaml"
    path.write_bytes(b"backends: ort-cpu\nout: caf\xe9\n")
    with pytest.raises(KdedgeError, match=r"c.yaml: not valid UTF-8 \(byte 0xe9 at offset 26\); save it as UTF-8$"):
        build_config(BenchConfig, str(path))
    result = CliRunner().invoke(main, ["bench", "--config", str(path)])
    assert result.exit_code == 1 and result.output.startswith("Error: config ") and "Traceback" not in result.output


def test_fuzz_finding_a_deeply_nested_device_report_is_a_report_error(tmp_path):
    from kdedge_runtime.bench import ReportError, load_report

    path = tmp_path / "device.json"
    path.write_text("[" * 5000 + "]" * 5000)
    with pytest.raises(ReportError, match=r"device.json: not a readable JSON file \(nested too deeply\)$"):
        load_report(path)
