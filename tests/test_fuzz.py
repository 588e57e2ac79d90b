"""Property-based fuzzing (Hypothesis) of every Python parser of untrusted input (issue 48).

The property, for every target: the documented error type with ONE line naming what is wrong, or a correct result;
never another exception type, a traceback, a crash of the process, a hang, memory beyond a stated bound, or a file
written outside the output folder. Inputs start from real fixtures (the tiny bundles of each student kind, GLUE
slices, the repository's configs, a real device report) and are mutated (tests/fuzz/mutate.py).

The CI budget is seeded and small (tests/fuzz/budget.py: profile "ci", a few hundred cases in all);
benchmarks/fuzz.sh runs the same targets for minutes each, unseeded, and records the cases tried and the findings.
Each crash found is kept as a regular test in tests/test_untrusted_input.py.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz import budget
from tests.fuzz.budget import count, fuzz
from tests.fuzz.isolated import BundleLoader
from tests.fuzz.mutate import (NASTY_TEXT, NASTY_VALUE, PATH_TRICKS, assert_one_line, deep, dump_json,
                               mutate_bytes, mutate_json)

ROOT = Path(__file__).resolve().parents[1]
TEXTS = ["a gripping , beautifully acted film", "", "dull \x00 and \ud800 long", "x " * 300]


@pytest.fixture(scope="module", autouse=True)
def _stats():
    yield
    budget.write_stats()


@pytest.fixture(scope="module")
def loader():
    child = BundleLoader()
    yield child
    child.close()


def _case_dir(root: Path) -> Path:
    case = root / f"case{budget.CASES.total()}"
    shutil.rmtree(case, ignore_errors=True)
    return case


def _only_inside(root: Path, before: set[str]) -> None:
    """Nothing was written beside the case folders (the folder a target is allowed to write in)."""
    new = {p.name for p in root.iterdir()} - before
    assert all(name.startswith("case") for name in new), f"files written outside the output folder: {sorted(new)}"


def _bundle_answer(loader, bundle: Path, manifest_file: Path) -> None:
    answer = loader.load(bundle, TEXTS)
    if "error" in answer:
        assert answer["error"] == "BundleError", f"{answer['error']}: {answer['message']}\n{answer.get('traceback')}"
        assert_one_line(answer["message"])
    else:
        assert answer["ok"], answer


# ------------------------------------------------------------------------------------------------ bundles

def _fuzz_bundles(target: str, tiny_bundles, loader, tmp_path, spoil, examples: int) -> None:
    """Draw a bundle, copy it, let `spoil(draw, case)` damage the copy; the loader must answer with a one-line
    BundleError or a bundle that classifies, and write nothing outside the case."""
    names = sorted(tiny_bundles)

    @given(st.data())
    def prop(data):
        count(target)
        case = _case_dir(tmp_path)
        shutil.copytree(tiny_bundles[data.draw(st.sampled_from(names), "bundle")], case)
        spoil(data.draw, case)
        _bundle_answer(loader, case, case / "manifest.json")
        _only_inside(tmp_path, set())
        shutil.rmtree(case)

    fuzz(target, prop, examples)


def test_fuzz_manifest_fields(tiny_bundles, loader, tmp_path):
    """manifest.json with fields dropped, retyped, nested deep, made huge, with path tricks: BundleError or a
    bundle that classifies."""
    def spoil(draw, case):
        manifest = json.loads((case / "manifest.json").read_text())
        if draw(st.booleans(), "path trick"):
            manifest["tokenizer"]["file"] = draw(st.sampled_from(PATH_TRICKS), "tokenizer.file")
        else:
            manifest = mutate_json(draw, manifest)
        (case / "manifest.json").write_bytes(dump_json(draw, manifest))

    _fuzz_bundles("manifest.json fields", tiny_bundles, loader, tmp_path, spoil, 40)


def test_fuzz_manifest_bytes(tiny_bundles, loader, tmp_path):
    """manifest.json truncated, bit-flipped, with invalid UTF-8, NUL, deep nesting or huge numbers spliced in."""
    def spoil(draw, case):
        (case / "manifest.json").write_bytes(mutate_bytes(draw, (case / "manifest.json").read_bytes()))

    _fuzz_bundles("manifest.json bytes", tiny_bundles, loader, tmp_path, spoil, 25)


def test_fuzz_tokenizer_json(tiny_bundles, loader, tmp_path):
    """tokenizer.json (WordLevel for the BiLSTM, WordPiece for the transformer) mutated as JSON or as bytes."""
    def spoil(draw, case):
        file = case / "tokenizer.json"
        if draw(st.booleans(), "as JSON"):
            spec = json.loads(file.read_text())
            # the vocabulary is thousands of entries: mutate the structure around it more often than inside it
            vocab = spec["model"].pop("vocab")
            spec = mutate_json(draw, spec)
            if isinstance(spec, dict) and isinstance(spec.get("model"), dict) and draw(st.booleans(), "vocab"):
                spec["model"]["vocab"] = vocab if draw(st.booleans(), "keep") else draw(NASTY_VALUE)
            file.write_bytes(dump_json(draw, spec))
        else:
            file.write_bytes(mutate_bytes(draw, file.read_bytes()))

    _fuzz_bundles("tokenizer.json", tiny_bundles, loader, tmp_path, spoil, 30)


def test_fuzz_model_onnx(tiny_bundles, loader, tmp_path):
    """model.onnx mutated, its sha256 in the manifest updated (so ONNX Runtime parses it) or not."""
    def spoil(draw, case):
        model = mutate_bytes(draw, (case / "model.onnx").read_bytes(), max_ops=2)
        (case / "model.onnx").write_bytes(model)
        if draw(st.integers(0, 4), "update sha256"):
            manifest = json.loads((case / "manifest.json").read_text())
            manifest["files"]["model.onnx"]["sha256"] = hashlib.sha256(model).hexdigest()
            (case / "manifest.json").write_text(json.dumps(manifest))

    _fuzz_bundles("model.onnx", tiny_bundles, loader, tmp_path, spoil, 20)


# -------------------------------------------------------------------------------------------- data files

def _glue_rows(glue_dir: Path, task: str, n: int = 25) -> tuple[list[str], list[list[str]]]:
    lines = (glue_dir / task / "dev.tsv").read_text(encoding="utf-8-sig").splitlines()
    return lines[0].split("\t"), [line.split("\t") for line in lines[1:n + 1]]


def _write_table(path: Path, header: list[str], rows: list[list], fmt: str) -> None:
    """The rows as a file of `fmt`. A lone surrogate in a cell (NASTY_TEXT draws them) cannot be encoded as UTF-8:
    it is written as the bytes Python's surrogatepass gives (invalid UTF-8, as a damaged file holds it), in Parquet
    too (a string column holding those bytes), never raised here as the harness's own UnicodeEncodeError."""
    import csv
    import io

    if fmt == "jsonl":  # json.dumps writes a lone surrogate as the escape \\ud800, which JSON allows
        path.write_text("".join(json.dumps(dict(zip(header, r))) + "\n" for r in rows))
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = {h: [r[i] if i < len(r) else None for r in rows] for i, h in enumerate(dict.fromkeys(header))}
        pq.write_table(pa.table({h: pa.array([None if v is None else str(v).encode("utf-8", "surrogatepass")
                                              for v in values], pa.binary()).view(pa.string())
                                 for h, values in columns.items()}), path)
    elif fmt == "csv":
        out = io.StringIO()
        csv.writer(out).writerows([header] + rows)
        path.write_text(out.getvalue(), encoding="utf-8", errors="surrogatepass")
    else:
        path.write_text("\n".join("\t".join(map(str, r)) for r in [header] + rows) + "\n", encoding="utf-8",
                        errors="surrogatepass")


def test_fuzz_data_files(glue_dir, tmp_path):
    """Labelled TSV/CSV/JSONL/Parquet files (SST-2 labels, STS-B pairs and regression scores) mutated by row and by
    byte: kdedge_runtime.data's DataError (the device bench) and kdedge's KdedgeError (the loaders), one line each,
    or rows that are what the file says."""
    from kdedge.config import DataOptions
    from kdedge.data.loaders import load_task_data
    from kdedge.errors import KdedgeError
    from kdedge_runtime.data import DataError, read_labelled

    sst2, stsb = _glue_rows(glue_dir, "SST-2"), _glue_rows(glue_dir, "STS-B")

    @given(st.data())
    def prop(data):
        count("data files")
        regression = data.draw(st.booleans(), "regression pairs")
        header, rows = stsb if regression else sst2
        columns = ["sentence1", "sentence2", "score"] if regression else ["sentence", "label"]
        rows = [list(r) for r in rows]
        fmt = data.draw(st.sampled_from(["tsv", "csv", "jsonl", "parquet"]), "format")
        for _ in range(data.draw(st.integers(0, 3), "cell edits")):
            if rows:
                row = data.draw(st.sampled_from(rows))
                if row:
                    row[data.draw(st.integers(0, len(row) - 1))] = data.draw(st.one_of(NASTY_TEXT, NASTY_NUMBER_STR))
        if data.draw(st.booleans(), "drop a column"):
            header = [h for h in header if h != data.draw(st.sampled_from(header))]
        case = _case_dir(tmp_path)
        case.mkdir()
        path = case / f"dev.{fmt}"
        _write_table(path, header, rows, fmt)
        if data.draw(st.booleans(), "byte mutation"):
            path.write_bytes(mutate_bytes(data.draw, path.read_bytes()))
        try:
            text, pair, labels = read_labelled(path, columns, True, None if regression else ["0", "1"])
        except DataError as e:
            assert_one_line(e, prefix=str(path))
        else:
            assert len(text) == len(labels) and (pair is None) != regression and len(pair or text) == len(text)
            assert np.isfinite(labels).all() if regression else set(labels.tolist()) <= {0, 1}
        options = DataOptions(task="fuzz", train_file=str(path), dev_file=str(path), text_column=columns[0],
                              text_pair_column=columns[1] if regression else None, label_column=columns[-1],
                              task_type="regression" if regression else "classification")
        try:
            loaded = load_task_data(options)
        except KdedgeError as e:
            assert_one_line(e)
        else:
            assert len(loaded.dev.text) == len(loaded.dev.labels) > 0
        shutil.rmtree(case)

    fuzz("data files", prop, 60)


NASTY_NUMBER_STR = st.sampled_from(["nan", "inf", "-inf", "1e999", "9" * 5000, "1_0", "0x10", "", " ", "5.0\x00",
                                    "2", "-1", "1.0", "\t", '"', "\r", "\n"])


def test_fuzz_unlabeled_files(tmp_path):
    """`kdedge augment --unlabeled` files (.txt, .csv, .tsv, .jsonl, .parquet) mutated: KdedgeError or texts."""
    from kdedge.augment.unlabeled import read_unlabeled
    from kdedge.errors import KdedgeError

    texts = ["a fine film", "dull", "ÅNGSTRÖM naïve café 🎬", "x\ty", 'say "hi"']

    @given(st.data())
    def prop(data):
        count("--unlabeled files")
        fmt = data.draw(st.sampled_from(["txt", "csv", "tsv", "jsonl", "parquet"]), "format")
        rows = [[t, t[::-1]] for t in texts] + [[data.draw(NASTY_TEXT), data.draw(NASTY_TEXT)]]
        case = _case_dir(tmp_path)
        case.mkdir()
        path = case / f"u.{fmt}"
        if fmt == "txt":
            path.write_text("\n".join(r[0] for r in rows) + "\n", encoding="utf-8", errors="surrogatepass")
        else:
            header = data.draw(st.sampled_from([["text", "pair"], ["text"], ["pair", "text"], ["text", "text"]]))
            try:
                _write_table(path, header, rows, "tsv" if fmt == "tsv" else fmt)
            except UnicodeEncodeError:
                path.write_bytes(b"text,pair\n\xed\xa0\x80,x\n")
        if data.draw(st.booleans(), "byte mutation"):
            path.write_bytes(mutate_bytes(data.draw, path.read_bytes()))
        is_pair = fmt != "txt" and data.draw(st.booleans(), "pair task")
        try:
            got = list(read_unlabeled(path, "text", "pair" if is_pair else None, is_pair))
        except KdedgeError as e:
            assert_one_line(e, prefix="--unlabeled")
        else:
            assert all(isinstance(t, str) and t.strip() and (p is None) != is_pair for t, p in got)
        shutil.rmtree(case)

    fuzz("--unlabeled files", prop, 40)


# ------------------------------------------------------------------------------------ configs and CLI values

CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def test_fuzz_yaml_configs(tmp_path):
    """--config files: the repository's recipes mutated as YAML (keys, values, anchors and aliases, deep nesting) and
    as bytes: KdedgeError in one line, or a config whose options are in range."""
    from kdedge.config import BenchConfig, DistillConfig, ExportConfig, TeacherConfig, build_config
    from kdedge.errors import KdedgeError

    classes = {"distill": DistillConfig, "bench": BenchConfig, "export": ExportConfig, "teacher": TeacherConfig}

    @given(st.data())
    def prop(data):
        count("YAML configs")
        source = data.draw(st.sampled_from(CONFIGS), "config")
        cls = data.draw(st.sampled_from(sorted(classes)), "command")
        case = _case_dir(tmp_path)
        case.mkdir()
        path = case / "c.yaml"
        how = data.draw(st.sampled_from(["yaml", "bytes", "aliases"]), "mutation")
        if how == "yaml":
            doc = yaml.safe_load(source.read_text())
            doc = mutate_json(data.draw, doc if isinstance(doc, dict) else {})
            path.write_text(yaml.safe_dump(doc, allow_unicode=data.draw(st.booleans())), encoding="utf-8",
                            errors="surrogatepass")
        elif how == "bytes":
            path.write_bytes(mutate_bytes(data.draw, source.read_bytes()))
        else:  # an alias bomb: each level refers to the one below ten times
            key = data.draw(st.sampled_from(["out", "teacher", "task", "eval_file", "layers", "bundle"]))
            levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"] + [
                f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, "
                f"*a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 9)]
            path.write_text("\n".join(levels) + f"\n{key}: *a8\n")
        try:
            build_config(classes[cls], str(path), out=str(case / "out"))
        except KdedgeError as e:
            assert_one_line(e)
        shutil.rmtree(case)

    fuzz("YAML configs", prop, 50)


def test_fuzz_cli_values(tmp_path, monkeypatch):
    """Flags of kdedge bench / export / distill with hostile values (the library call replaced by one that parses
    what the command would): a click usage error or `Error: ` in one line, never a traceback."""
    import dataclasses

    from kdedge.bench import run as bench_run
    from kdedge.bench.backends import parse_backends
    from kdedge.bench.report import parse_retention_gates
    from kdedge.cli import main
    from kdedge.config import BenchConfig, DistillConfig, ExportConfig
    from kdedge.distill import run as distill_run
    from kdedge.onnx import bundle as onnx_bundle

    def fake_bench(cfg):
        parse_backends(cfg.backends)
        cfg.int_list("batch_sizes"), cfg.int_list("seq_lens")
        parse_retention_gates(cfg.min_retention, [])
        out = Path(cfg.out)
        return _fake_out(out), []

    def _fake_out(out: Path) -> Path:
        out = tmp_path / "runs" / "out"
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.md").write_text("report\n")
        return out

    monkeypatch.setattr(bench_run, "run_bench", fake_bench)
    monkeypatch.setattr(distill_run, "distill_student", lambda cfg: "student")
    monkeypatch.setattr(onnx_bundle, "export_bundle", lambda cfg: (_ for _ in ()).throw(
        __import__("kdedge.errors").errors.KdedgeError("stop")))
    commands = {"bench": BenchConfig, "distill": DistillConfig, "export": ExportConfig}
    value = st.one_of(NASTY_TEXT, NASTY_NUMBER_STR, st.sampled_from(["1,4", "0", "-3", "dev=0.9", "x=", "=", "1e-3",
                                                                       "ort-cpu,", "yes", "sst2", "prediction"]))

    @given(st.data())
    def prop(data):
        count("CLI values")
        command = data.draw(st.sampled_from(sorted(commands)), "command")
        fields = [f for f in dataclasses.fields(commands[command]) if f.name != "out"]
        args = [command, "--out", str(tmp_path / "runs" / "out")]
        for f in data.draw(st.lists(st.sampled_from(fields), min_size=1, max_size=4, unique_by=lambda f: f.name)):
            flag = "--" + f.name.replace("_", "-")
            args += [flag, data.draw(value)] if data.draw(st.integers(0, 5)) else [flag]
        result = CliRunner().invoke(main, args)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"{args}: {type(result.exception).__name__}: {result.exception}")
        assert "Traceback" not in result.output, result.output
        if result.exit_code:
            errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
            assert len(errors) == 1, result.output

    fuzz("CLI values", prop, 40)


# ------------------------------------------------------------------------------------------ device reports

@pytest.fixture(scope="module")
def device_report(tiny_bundles, glue_dir, tmp_path_factory):
    from kdedge_runtime import bench as device_bench

    bundle = tiny_bundles["bilstm-none"]
    report = device_bench.run([str(bundle)], str(glue_dir / "SST-2" / "dev.tsv"), device_name="fuzz", warmup=0,
                              min_runs=2, min_time=0.0, batch_size=4, threads=1, max_examples=40)
    return bundle, report


def test_fuzz_device_reports(device_report, glue_dir, tmp_path):
    """`kdedge bench --device-report R` files mutated: ReportError / KdedgeError in one line, or rows that the host
    report (its rows, comparisons and markdown) takes."""
    from kdedge.bench.device import device_rows
    from kdedge.bench.report import build_rows, markdown
    from kdedge.data.tasks import get_glue_task
    from kdedge.errors import KdedgeError
    from kdedge.outputs import sha256_file
    from kdedge_runtime.bench import ReportError, load_report

    bundle, report = device_report
    manifest = json.loads((bundle / "manifest.json").read_text())
    host = [{"name": bundle.name, "role": "student", "kind": "onnx", "precision": manifest["precision"],
             "size_mb": 1.0, "parameters": manifest["parameters"], "weights_sha256": sha256_file(bundle / "model.onnx")}]
    data_file = str(glue_dir / "SST-2" / "dev.tsv")
    task = get_glue_task("sst2")
    from kdedge.bench.environment import environment as host_environment

    from kdedge.config import BenchConfig, build_config, to_dict

    environment = host_environment()
    config = to_dict(build_config(BenchConfig, None, out=str(tmp_path / "report")))

    @given(st.data())
    def prop(data):
        count("device reports")
        case = _case_dir(tmp_path)
        case.mkdir()
        path = case / "device.json"
        if data.draw(st.integers(0, 3), "as JSON"):
            path.write_bytes(dump_json(data.draw, mutate_json(data.draw, report)))
        else:
            path.write_bytes(mutate_bytes(data.draw, json.dumps(report).encode()))
        try:
            load_report(path)
        except ReportError as e:
            assert_one_line(e, prefix=str(path))
        try:
            rows = device_rows((str(path),), host, data_file, report["data"]["rows"])
        except KdedgeError as e:
            assert_one_line(e, prefix="--device-report")
        else:
            built = build_rows([], task, np.zeros(0), rows)
            markdown({"task": task.to_dict(), "rows": built, "environment": environment, "dev_examples": 40,
                      "warnings": [], "config": config})
        shutil.rmtree(case)

    fuzz("device reports", prop, 40)


# ------------------------------------------------------------------------------------ the example server

@pytest.fixture(scope="module")
def python_server(tiny_bundles):
    from benchmarks.server_load import running_server

    with running_server("python", tiny_bundles["bilstm-dynamic"], read_timeout_s=1) as (port, proc):
        yield port, proc


def _exchange(port: int, request: bytes, timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    return b"".join(chunks)


def test_fuzz_python_server_requests(python_server):
    """export/python/examples/serve.py with hostile requests (bodies mutated as JSON and as bytes, odd headers,
    methods and paths, lone surrogates): every request answered with a status and a one-line JSON error (4xx), or
    predictions; never a 500, a dropped connection or a dead server."""
    port, proc = python_server
    good = {"texts": ["a fine film", "dull"]}

    @given(st.data())
    def prop(data):
        count("HTTP requests")
        how = data.draw(st.sampled_from(["json", "json", "bytes", "headers"]), "mutation")
        body = {"json": lambda: dump_json(data.draw, mutate_json(data.draw, good)),
                "bytes": lambda: mutate_bytes(data.draw, json.dumps(good).encode()),
                "headers": lambda: json.dumps(good).encode()}[how]()
        method = data.draw(st.sampled_from(["POST"] * 4 + ["GET", "PUT", "DELETE", "POST "]), "method")
        target = data.draw(st.sampled_from(["/predict"] * 4 + ["/", "/predict?x=1", "//predict", "/../predict"]))
        length = str(len(body))
        if how == "headers":
            length = data.draw(st.sampled_from([length, "-1", "", "1e3", "0x10", " 5", "99999999999999999999",
                                                "\u0661", str(len(body) + 1)]), "Content-Length")
        head = f"{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n"
        if data.draw(st.booleans(), "content type"):
            head += f"Content-Type: {data.draw(st.sampled_from(['application/json', 'text/plain', 'x' * 200]))}\r\n"
        answer = _exchange(port, head.encode("utf-8", "surrogatepass") + b"\r\n" + body)
        assert proc.poll() is None, "the server died"
        assert answer.startswith((b"HTTP/1.0 ", b"HTTP/1.1 ")), f"no answer to {head!r} {body[:80]!r}: {answer[:80]!r}"
        status = int(answer[9:12])
        assert status != 500 and status < 600, (head, body[:200], answer[:300])
        payload = answer.split(b"\r\n\r\n", 1)[1]
        if status == 200:
            assert isinstance(json.loads(payload)["predictions"], list)  # {"texts": []} is answered with none
        elif payload and answer.split(b"\r\n", 1)[0][9:12] not in (b"501",) and b"json" in answer[:400].lower():
            error = json.loads(payload)["error"]
            assert error and "\n" not in error, error

    fuzz("HTTP requests", prop, 40)
    status, reply = _post_ok(port)
    assert status == 200 and reply["predictions"], "the server still answers after the fuzzing"


def _post_ok(port: int):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        body = json.dumps({"texts": ["fine"]}).encode()
        conn.request("POST", "/predict", body, {"Content-Length": str(len(body))})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_the_mutations_reach_what_they_promise():
    """The strategies themselves: deep nesting is deep, and a lone surrogate becomes bytes that are not UTF-8."""
    text = dump_json(lambda strategy, label=None: True, {"a": deep(30000, [1])}).decode()
    assert text.startswith('{"a": ' + "[" * 30001 + "1" + "]" * 30001)
    with pytest.raises(UnicodeDecodeError):
        json.dumps("\ud800", ensure_ascii=False).encode("utf-8", "surrogatepass").decode("utf-8")
    assert NASTY_VALUE is not None
