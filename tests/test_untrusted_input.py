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
from types import SimpleNamespace

import numpy as np
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

    def session(model, options=None, providers=None, **kw):  # a path, or the bytes the Classifier checked
        openvino = id(options) in attached or "OpenVINOExecutionProvider" in (providers or [])
        graph = (onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(model)).graph
        if openvino and "DynamicQuantizeLSTM" in {n.op_type for n in graph.node}:
            raise EPFail(EP_FAIL)
        return real_session(model, options, providers=providers or ["CPUExecutionProvider"], **kw)

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


def test_fuzz_finding_a_config_integer_of_5000_digits_is_a_kdedge_error(tmp_path):
    """The 30-minute run of the YAML target: PyYAML turns a long digit string into an int, past Python's 4300-digit
    limit, and raised ValueError out of --config."""
    from kdedge.config import BenchConfig, build_config

    path = tmp_path / "c.yaml"
    path.write_text("backends: ort-cpu\nwarmup: " + "9" * 5000 + "\n")
    with pytest.raises(KdedgeError, match=r"c.yaml: a value cannot be read \(Exceeds the limit \(4300 digits\)"):
        build_config(BenchConfig, str(path))
    result = CliRunner().invoke(main, ["bench", "--config", str(path)])
    assert result.exit_code == 1 and result.output.startswith("Error: config ") and "Traceback" not in result.output


def test_fuzz_finding_a_config_key_holding_a_line_break_is_named_on_one_line(tmp_path):
    """The second 30-minute run of the YAML target: a quoted key "\\r" went into the unknown-key message raw, so the
    error spanned two lines."""
    from kdedge.config import BenchConfig, build_config

    path = tmp_path / "c.yaml"
    path.write_text('"\\r": 1\n', encoding="utf-8")
    with pytest.raises(KdedgeError, match=r"c.yaml: unknown key '\\r'$") as raised:
        build_config(BenchConfig, str(path))
    assert len(str(raised.value).splitlines()) == 1
    result = CliRunner().invoke(main, ["bench", "--config", str(path)])
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "Traceback" not in result.output


def test_fuzz_finding_a_deeply_nested_device_report_is_a_report_error(tmp_path):
    from kdedge_runtime.bench import ReportError, load_report

    path = tmp_path / "device.json"
    path.write_text("[" * 5000 + "]" * 5000)
    with pytest.raises(ReportError, match=r"device.json: not a readable JSON file \(nested too deeply\)$"):
        load_report(path)


# ----------------------------------------------------- findings of the short benchmarks/fuzz.sh run (README there)

@pytest.mark.parametrize("bundle, change, message", [
    ("bilstm-dynamic", {"label_names": ["negative"]}, "field 'label_names' names 1 labels, but {model} gives 2 logits"),
    ("bilstm-none", {"task": {"is_regression": True}}, "field 'task.is_regression' is true, but {model} gives 2 "
     "logits"),
    ("tinybert-none", {"label_names": ["a", "b", "c"]}, "field 'label_names' names 3 labels, but {model} gives 2 "
     "logits"),
])
def test_fuzz_finding_a_manifest_whose_labels_do_not_match_the_logits_is_refused_at_load(tiny_bundles, tmp_path,
                                                                                        bundle, change, message):
    """A manifest saying regression (or naming another number of labels) than the model's logits: numpy's "shape
    mismatch" ValueError came out of predict(). Now the load refuses it, with the message export/core gives."""
    from kdedge_runtime import BundleError

    folder = tmp_path / "b"
    shutil.copytree(tiny_bundles[bundle], folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    for key, value in change.items():
        manifest[key] = {**manifest[key], **value} if isinstance(value, dict) else value
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError) as refused:
        Classifier(folder)
    assert str(refused.value) == f"{folder / 'manifest.json'}: " + message.format(model=folder / "model.onnx")


@pytest.mark.parametrize("name, text, message", [
    ("u.csv", '"text\r\nmore",pair\nok,fine\n', "column 'text' not found; the header has: text\\r\\nmore, pair"),
    ("u.csv", 'x,"a\nb","a\nb"\n', "the header names column 'a\\nb' more than once"),
    ("u.parquet", None, "column 'text' not found; it has: te\\nxt, \\u2028"),
])
def test_fuzz_finding_names_from_an_unlabeled_file_are_echoed_on_one_line(tmp_path, name, text, message):
    """A quoted line break in a CSV header cell made "column 'text' not found; the header has: ..." span lines."""
    from kdedge.augment.unlabeled import read_unlabeled

    path = tmp_path / name
    if text is None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"te\nxt": ["a"], "\u2028": ["b"]}), path)
    else:
        path.write_bytes(text.encode())
    with pytest.raises(KdedgeError) as refused:
        list(read_unlabeled(path, "text", None, False))
    assert str(refused.value).startswith(f"--unlabeled {path}") and message in str(refused.value)
    assert len(str(refused.value).splitlines()) == 1


@pytest.mark.parametrize("name, text, columns, labels, message", [
    ("dev.csv", 'text,label\nok,"1\u2028\x00\x1ex"\n', ["text", "label"], ["0", "1"],
     "line 2, column 'label': unknown label '1\\u2028\\u0000\\u001ex' (expected one of: 0, 1)"),
    ("dev.csv", 'text,"sc\nore"\nok,1\n', ["text", "score"], None,
     "column 'score' not found; the header has: text, sc\\nore"),
    ("dev.jsonl", '{"text": "ok", "score": "\\ud800"}\n', ["text", "score"], None,
     "line 1, column 'score': '\\ud800' is not a number"),
])
def test_fuzz_finding_values_from_a_data_file_are_echoed_on_one_line(tmp_path, name, text, columns, labels, message):
    """The same messages as the Node reader's (export/node/test/data.test.js): each line break, control character or
    lone surrogate escaped as JSON writes it."""
    from kdedge_runtime.data import DataError, read_labelled

    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DataError) as refused:
        read_labelled(path, columns, True, labels)
    assert str(refused.value).endswith(message) and len(str(refused.value).splitlines()) == 1


def test_fuzz_finding_a_parquet_text_cell_that_is_not_utf8_is_a_data_error(tmp_path):
    """pyarrow reads a string column without checking its UTF-8: to_pylist() raised UnicodeDecodeError out of
    read_rows (the device bench and kdedge's loaders alike)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kdedge.config import DataOptions
    from kdedge.data.loaders import load_task_data
    from kdedge_runtime.data import DataError, read_labelled

    path = tmp_path / "dev.parquet"
    text = pa.array([b"fine", b"caf\xe9 ok"], pa.binary()).view(pa.string())  # as a damaged file holds it
    pq.write_table(pa.table({"sentence": text, "label": ["0", "1"]}), path)
    message = r"dev.parquet, row 2, column 'sentence': not valid UTF-8 \(byte 0xe9 at offset 3\); save the file as UTF-8"
    with pytest.raises(DataError, match=message):
        read_labelled(path, ["sentence", "label"], True, ["0", "1"])
    options = DataOptions(task="mine", train_file=str(path), dev_file=str(path), text_column="sentence")
    with pytest.raises(KdedgeError, match=message):
        load_task_data(options)


def _nested(depth: int):
    value = "x"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("change, message", [
    # what each broken report raised in `kdedge bench --device-report` before every field a reader uses was checked
    (lambda r: r["bundles"][0].update(metrics={}),  # KeyError: 'accuracy'
     "field 'bundles[0].main_metric' is \"accuracy\", which 'bundles[0].metrics' does not hold"),
    (lambda r: r["bundles"][0]["latency"].update({"1": []}),  # AttributeError: 'list' object has no attribute 'get'
     "field 'bundles[0].latency.1' must be a JSON object, not []"),
    (lambda r: r["bundles"][0]["metrics"].update(accuracy="0.5"),  # ValueError: Unknown format code 'f' ... 'str'
     "field 'bundles[0].metrics.accuracy' must be a number, not \"0.5\""),
    (lambda r: r["bundles"][0].update(model_sha256=None),  # TypeError: 'NoneType' object is not subscriptable
     "field 'bundles[0].model_sha256' must be a string, not null"),
    (lambda r: r["bundles"][0]["metrics"].update(accuracy=[]),  # TypeError: unsupported format string ... list
     "field 'bundles[0].metrics.accuracy' must be a number, not []"),
    (lambda r: r["device"]["versions"].update(onnxruntime=_nested(600)),  # RecursionError (repr in report.md)
     "field '" + ("device.versions.onnxruntime" + "[0]" * 40)[:80] + "…' is nested more than 32 levels deep"),
    (lambda r: r["bundles"][0]["latency"].update({"b1": r["bundles"][0]["latency"]["1"]}),  # ValueError from int()
     "field 'bundles[0].latency.b1' is not named by a batch size (a positive integer)"),
    (lambda r: r["bundles"][0]["latency"]["1"].update(p50_ms=0),  # a division by zero in the speed-ups
     "field 'bundles[0].latency.1.p50_ms' must be a positive finite number, not 0"),
    (lambda r: r["bundles"][0]["metrics"].update(accuracy=None, f1=None),  # TypeError: None / float (retention)
     "field 'bundles[0].metrics.accuracy' (the main metric) must be a number, not null"),
    (lambda r: r["device"].pop("os"),  # KeyError: 'os' (report.md's device line)
     "field 'device.os' is missing"),
    (lambda r: r["device"]["cpu"].update(usable_cpus="2\n3"),
     "field 'device.cpu.usable_cpus' must be a non-negative integer, not \"2\\n3\""),
])
def test_fuzz_finding_every_field_of_a_device_report_a_reader_uses_is_checked(tmp_path, change, message):
    """validate_report checked only the top levels: `kdedge bench --device-report` met KeyError, AttributeError,
    format errors and RecursionError (benchmarks/results/fuzz/findings.txt). Now each is one line naming the field."""
    from kdedge.bench.device import device_rows
    from tests.test_device_bench import _tiny_report

    report = _tiny_report()
    change(report)
    path = tmp_path / "device.json"
    path.write_text(json.dumps(report))
    data = tmp_path / "dev.tsv"
    data.write_text("sentence\tlabel\n")
    with pytest.raises(KdedgeError) as refused:
        device_rows((str(path),), [], str(data), 3)
    assert str(refused.value) == f"--device-report {path}: {message}"


@pytest.mark.parametrize("nesting", ["[" * 100000, "{a: " * 50000, "[" * 2000 + "]" * 2000])
def test_fuzz_finding_a_deeply_nested_yaml_config_is_a_kdedge_error(tmp_path, nesting):
    """PyYAML's composer recurses once per level: RecursionError escaped load_yaml, raised at a depth (and so a
    line of PyYAML) that depends on the caller's stack, which is why Hypothesis saw it as a FlakyFailure."""
    from kdedge.config import BenchConfig, build_config

    path = tmp_path / "c.yaml"
    path.write_text("backends: " + nesting + "\n")
    with pytest.raises(KdedgeError, match=r"c.yaml: not valid YAML \(nested too deeply\)$"):
        build_config(BenchConfig, str(path), out=str(tmp_path / "out"))


def test_fuzz_finding_a_tokenizer_file_name_too_long_for_the_file_system_is_a_bundle_error(tiny_bundles, tmp_path):
    """tokenizer.file of 400 characters (a splice of "[" into manifest.json): ENAMETOOLONG, an OSError, escaped
    bundle_file. Now the file is missing, as the Node runtime (existsSync) says."""
    from kdedge_runtime import BundleError

    folder = tmp_path / "b"
    shutil.copytree(tiny_bundles["bilstm-none"], folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["tokenizer"]["file"] = "[" * 400
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=rf"is not a complete kdedge bundle: \[{{400}} missing$"):
        Classifier(folder)


@pytest.mark.parametrize("bundle", ["bilstm-dynamic", "tinybert-none"])
def test_fuzz_finding_a_tokenizer_missing_its_unknown_token_is_refused_at_load(tiny_bundles, tmp_path, bundle):
    """The 30-minute tokenizer.json run: a flipped byte in the BiLSTM's WordLevel tokenizer left its unk_token out of
    its vocabulary. The tokenizers library loads such a file and raises a bare Exception ("WordLevel error: Missing
    [UNK] token from the vocabulary") at the first unknown word: at load (the short path's probe), or in predict().
    Now it is refused at load, as export/core refuses it."""
    from kdedge_runtime import BundleError

    folder = tmp_path / "b"
    shutil.copytree(tiny_bundles[bundle], folder)
    spec = json.loads((folder / "tokenizer.json").read_text())
    spec["model"]["unk_token"] = "[UNG]"
    (folder / "tokenizer.json").write_text(json.dumps(spec))
    with pytest.raises(BundleError, match=r"tokenizer.json is not a valid tokenizer \(model.unk_token "
                                          r"\"\[UNG\]\" is not in model.vocab\)$"):
        Classifier(folder)


def test_fuzz_finding_a_tokenizer_template_naming_a_token_it_has_no_id_for_is_refused_at_load(tiny_bundles, tmp_path):
    """The 30-minute tokenizer.json rerun: a flipped byte in the post-processor's template ("[CLS]" -> "[CLR]") loads,
    then panics in Rust ("no entry found for key", a PanicException, which is not an Exception) at the first encoding
    with special tokens. Now it is refused at load, in the words of export/core (export/node/test/fuzz.test.js)."""
    from kdedge_runtime import BundleError

    folder = tmp_path / "b"
    shutil.copytree(tiny_bundles["tinybert-dynamic"], folder)
    spec = json.loads((folder / "tokenizer.json").read_text())
    spec["post_processor"]["single"][0]["SpecialToken"]["id"] = "[CLR]"
    (folder / "tokenizer.json").write_text(json.dumps(spec))
    with pytest.raises(BundleError, match=r'tokenizer.json is not a valid tokenizer \(post_processor: special token '
                                          r'"\[CLR\]" has no ids in the vocabulary\)$'):
        Classifier(folder)


@pytest.mark.parametrize("sep_ids", [3, 1000])
def test_fuzz_finding_a_special_token_of_several_ids_counts_each_id_in_both_runtimes(tiny_bundles, tmp_path, sep_ids):
    """The JS long run (export/node/test/fuzz.test.js, seed 7, case 2661): a template whose "[SEP]" stands for 1,000
    ids. The Rust library keeps every special id when it truncates; Node budgeted one position per special token, so
    a text came out 1,003 ids long and the model's 256 positions failed in ONNX Runtime. Now both runtimes count the
    ids: a template that leaves the text no room within max_length is refused at load in the same words, and one
    that leaves some gives the same logits in both."""
    from kdedge_runtime import BundleError
    from tests.test_runtime import node_logits

    folder = tmp_path / "b"
    shutil.copytree(tiny_bundles["tinybert-none"], folder)
    spec = json.loads((folder / "tokenizer.json").read_text())
    sep = spec["post_processor"]["special_tokens"]["[SEP]"]
    sep["ids"] = sep["ids"] * sep_ids
    sep["tokens"] = sep["tokens"] * sep_ids
    (folder / "tokenizer.json").write_text(json.dumps(spec))
    max_length = json.loads((folder / "manifest.json").read_text())["max_length"]
    texts = ["a long text " * max_length, "short"]
    node = node_logits(folder, texts)
    if sep_ids + 1 >= max_length:
        expected = (f"{folder / 'tokenizer.json'} is not a valid tokenizer (post_processor.single: its special tokens "
                    f"take {sep_ids + 1} of the {max_length} positions (max_length), leaving none for the text)")
        with pytest.raises(BundleError) as refused:
            Classifier(folder)
        assert str(refused.value) == expected
        assert node.get("error", {}).get("message") == expected, node
    else:
        python = Classifier(folder)
        assert len(python.encode(texts, None)["input_ids"][0]) == max_length
        assert np.allclose(np.asarray(node["logits"]), python.logits(texts), atol=1e-5), node


@pytest.mark.parametrize("kind, change", [("pair", lambda t: t.insert(3, {"Sequence": {"id": "B", "type_id": 1}})),
                                          ("single", lambda t: t.insert(1, {"Sequence": {"id": "B", "type_id": 0}}))])
def test_fuzz_finding_a_template_naming_a_sequence_twice_is_refused_alike_in_both_runtimes(tiny_bundles, tmp_path,
                                                                                            kind, change):
    """The JS long run (seed 8, case 176004): a pair template naming sequence B twice. The Rust library repeats the
    second text past its truncation (253 ids for max_length 128); a single text's template naming B panics in Rust.
    Both runtimes refuse such templates at load, in the same words."""
    from kdedge_runtime import BundleError
    from tests.test_runtime import node_logits

    folder = tmp_path / "b"
    shutil.copytree(tiny_bundles["tinybert-none"], folder)
    spec = json.loads((folder / "tokenizer.json").read_text())
    change(spec["post_processor"][kind])
    (folder / "tokenizer.json").write_text(json.dumps(spec))
    second = "B once" if kind == "pair" else "no B"
    expected = (f"{folder / 'tokenizer.json'} is not a valid tokenizer (post_processor.{kind} must hold sequence A "
                f"once and {second})")
    with pytest.raises(BundleError) as refused:
        Classifier(folder)
    assert str(refused.value) == expected
    assert node_logits(folder, ["x"]).get("error", {}).get("message") == expected


def test_a_model_that_fails_on_a_long_input_after_load_is_one_bundle_error_in_both_runtimes(tiny_bundles, tmp_path):
    """A manifest whose max_length (1,024) is past the model's 256 positions: the probe at load passes, and a long
    text fails in ONNX Runtime. Python said so in a BundleError; Node let ONNX Runtime's own error out of predict()
    (the JS long run, seed 7). Both now give one BundleError naming the model."""
    from kdedge_runtime import BundleError
    from tests.test_runtime import node_logits

    folder = tmp_path / "b"
    shutil.copytree(tiny_bundles["tinybert-none"], folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["max_length"] = 1024
    (folder / "manifest.json").write_text(json.dumps(manifest))
    long_text = "word " * 600
    expected = f"{folder / 'model.onnx'} failed on this input ("
    classifier = Classifier(folder)
    assert classifier.predict("short").label in classifier.labels
    for texts in (long_text, [long_text, "short"]):
        with pytest.raises(BundleError) as failed:
            classifier.predict(texts)
        assert str(failed.value).startswith(expected) and "\n" not in str(failed.value)
        node = node_logits(folder, [long_text] if isinstance(texts, str) else texts).get("error", {})
        assert node.get("name") == "BundleError" and node.get("message", "").startswith(expected), node


@pytest.mark.parametrize("texts", ["one text", ["a batch", "of two"]])
def test_a_tokenizer_that_panics_past_the_load_probe_is_one_bundle_error(tiny_bundles, tmp_path, texts):
    """A Rust panic the probe at load did not meet (here the template above, swapped in after load) ends predict()
    in one BundleError naming the tokenizer file, not in pyo3's PanicException (a BaseException no caller catches)."""
    from tokenizers import Tokenizer

    from kdedge_runtime import BundleError

    classifier = Classifier(tiny_bundles["tinybert-dynamic"])
    spec = json.loads(classifier.tokenizer.to_str())
    spec["post_processor"]["single"][0]["SpecialToken"]["id"] = "[CLR]"
    classifier.tokenizer = Tokenizer.from_str(json.dumps(spec))
    with pytest.raises(BaseException) as panic:  # the library's own panic, to raise where the short path looks words up
        classifier.tokenizer.encode("probe")
    assert type(panic.value).__name__ == "PanicException" and not isinstance(panic.value, Exception)

    class PanickingModel:
        def tokenize(self, word):
            raise panic.value

    short_path = classifier._words
    assert short_path is not None
    for words in (None, short_path):  # the tokenizer's own path (one text, a batch), then the short path's lookups
        classifier._words = words
        if words is not None:
            words.pieces.clear()
            words.tokenizer = SimpleNamespace(model=PanickingModel())
        with pytest.raises(BundleError, match=r"tokenizer.json failed on this input \(no entry found for key\)$"):
            classifier.predict(texts)


@pytest.mark.parametrize("name", ["9" * 300, "a\x00b"])
def test_fuzz_finding_a_model_name_no_file_can_have_is_not_a_local_path(tmp_path, monkeypatch, name):
    """`kdedge bench --teacher 999...` (300 digits): Path.exists raised ENAMETOOLONG (OSError) out of hub_sources,
    a traceback before the command ran; a NUL byte raised ValueError. Such a name is not local (a hub id, which the
    command then refuses or fetches)."""
    from kdedge.bench import run as bench_run
    from kdedge.hub import hub_sources

    cfg = type("Config", (), {"teacher": name, "train_file": "local.tsv"})()
    assert hub_sources(cfg) == [name]
    monkeypatch.setattr(bench_run, "run_bench", lambda cfg: (_ for _ in ()).throw(KdedgeError("stop")))
    result = CliRunner().invoke(main, ["bench", "--out", str(tmp_path / "out"), "--teacher", name])
    assert result.exit_code == 1 and result.output == "Error: stop\n", (result.output, result.exception)


def test_fuzz_finding_a_parquet_column_name_that_is_not_utf8_is_a_data_error(tmp_path):
    """A Parquet schema's column name is decoded only when it is read (`table.column_names`): a name that is not
    UTF-8 raised UnicodeDecodeError out of read_rows (30-minute fuzz run of the data files)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kdedge_runtime.data import DataError, read_labelled

    path = tmp_path / "dev.parquet"
    pq.write_table(pa.table({"sentence": ["fine", "dull"], "lXbel": ["0", "1"]}), path, store_schema=False)
    path.write_bytes(path.read_bytes().replace(b"lXbel", b"l\xf9bel"))  # the name as a damaged file holds it
    with pytest.raises(DataError, match=r"dev.parquet: a column name is not valid UTF-8 \(byte 0xf9 at offset 1\)"):
        read_labelled(path, ["sentence", "label"], True, ["0", "1"])


def test_fuzz_finding_a_score_beyond_float32_is_a_data_error(tmp_path):
    """Regression scores are float32: '1E100' parsed as a finite float64 and became inf in the labels (found by the
    fuzz run of the data files after the Parquet fix)."""
    from kdedge_runtime.data import DataError, read_labelled

    path = tmp_path / "dev.tsv"
    path.write_text("sentence1\tsentence2\tscore\na man\ta woman\t1E100\n")
    with pytest.raises(DataError, match=r"dev.tsv, line 2, column 'score': '1E100' is not a finite number"):
        read_labelled(path, ["sentence1", "sentence2", "score"], True, None)
    path.write_text("sentence1\tsentence2\tscore\na man\ta woman\t3.5\n")
    assert read_labelled(path, ["sentence1", "sentence2", "score"], True, None)[2].tolist() == [3.5]


def _lstm_state_size_set_to(source: Path, folder: Path, value) -> None:
    """A copy of the BiLSTM bundle at `source` whose int64 constant hidden size, in the shape of the LSTM's initial
    state (Concat → ConstantOfShape), is `value(size)`, the manifest's sha256 updated: the model.onnx fuzz finding."""
    import hashlib

    from onnx import numpy_helper

    shutil.copytree(source, folder)
    model = onnx.load(folder / "model.onnx")
    producer = {out: node for node in model.graph.node for out in node.output}
    concat = producer[next(n for n in model.graph.node if n.op_type == "ConstantOfShape").input[0]]
    hidden = next(producer[i] for i in concat.input[::-1] if producer.get(i) and producer[i].op_type == "Constant")
    size = numpy_helper.to_array(hidden.attribute[0].t)
    hidden.attribute[0].t.CopyFrom(numpy_helper.from_array(value(size), hidden.attribute[0].t.name))
    data = model.SerializeToString()
    (folder / "model.onnx").write_bytes(data)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["model.onnx"]["sha256"] = hashlib.sha256(data).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_fuzz_finding_a_constant_asking_for_a_tensor_larger_than_any_weight_is_refused_before_it_runs(tiny_bundles,
                                                                                                      tmp_path):
    """One flipped bit made the BiLSTM's hidden size 16 + 2**32: ONNX Runtime loaded the graph and its first run
    filled 17 GB of zeros for the LSTM's initial state. The load now infers the graph's shapes from its constants
    and refuses it before ONNX Runtime sees it (Python only: the Node runtime would allocate the 17 GB)."""
    import resource

    from kdedge_runtime import BundleError

    folder = tmp_path / "b"
    _lstm_state_size_set_to(tiny_bundles["bilstm-dynamic"], folder, lambda size: size + 2**32)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(BundleError) as refused:
        Classifier(folder)
    message = str(refused.value)
    assert message.startswith(f"{folder / 'model.onnx'}: tensor ") and "\n" not in message
    assert f"{2**32 + 16}]" in message and message.endswith("its constants were changed")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 1 << 20  # KiB: under 1 GiB more


def test_a_model_that_fails_its_probe_for_another_reason_is_named_as_such_in_both_runtimes(tiny_bundles, tmp_path):
    """A hidden size one short (the LSTM then refuses its initial state): the probe at load fails, and the error says
    the model failed with ONNX Runtime's first line, not that the tokenizer outgrew the embedding table."""
    from kdedge_runtime import BundleError
    from tests.test_runtime import node_logits

    folder = tmp_path / "b"
    _lstm_state_size_set_to(tiny_bundles["bilstm-dynamic"], folder, lambda size: size - 1)
    with pytest.raises(BundleError) as refused:
        Classifier(folder)
    expected = f"{folder / 'model.onnx'} failed on a probe input at load ("
    assert str(refused.value).startswith(expected) and "embedding table" not in str(refused.value)
    node = node_logits(folder, ["x"]).get("error")
    assert node and node["name"] == "BundleError" and node["message"].startswith(expected), node
