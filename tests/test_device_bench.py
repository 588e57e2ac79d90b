"""The device bench (python -m kdedge_runtime.bench): runs with the runtime alone, scores like kdedge bench, and
writes a report that reads back and refuses what it cannot read."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kdedge_runtime import bench as device_bench
from kdedge_runtime.bench import ReportError, load_report, validate_report
from kdedge_runtime.cpu import preset_for

ROOT = Path(__file__).resolve().parents[1]
# Makes `import torch` (and the training side) fail in the child, as on a device that has only the runtime.
_NO_TRAINING_STACK = """
import sys
class _Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers", "kdedge", "sklearn", "scipy", "pyarrow"):
            raise ImportError(f"{name} is not installed on this device")
        return None
sys.meta_path.insert(0, _Refuse())
"""
FAST = ["--warmup", "1", "--min-runs", "3", "--min-time", "0", "--batch-size", "8", "--threads", "1"]


def _device_bench(tmp_path, *args) -> subprocess.CompletedProcess:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(_NO_TRAINING_STACK)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT / "export" / "python")])}
    return subprocess.run([sys.executable, "-m", "kdedge_runtime.bench", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=tmp_path)


def test_device_bench_runs_without_torch_and_scores_as_kdedge_bench(tiny_bundles, glue_dir, tmp_path):
    from kdedge.bench.run import run_bench
    from kdedge.config import BenchConfig, build_config

    dev = glue_dir / "SST-2" / "dev.tsv"
    student, teacher = tiny_bundles["tinybert-dynamic"], tiny_bundles["tinybert-none"]
    result = _device_bench(tmp_path, student, tiny_bundles["bilstm-dynamic"], "--teacher", teacher, "--data", dev,
                           "--max-examples", "60", "--out", tmp_path / "device.json", *FAST)
    assert result.returncode == 0, result.stderr
    report = load_report(tmp_path / "device.json")
    rows = {r["name"]: r for r in report["bundles"]}
    assert [r["role"] for r in report["bundles"]] == ["teacher", "student", "student"]
    assert report["data"] == {"file": "dev.tsv", "sha256": report["data"]["sha256"], "rows": 60}
    cpu = report["device"]["cpu"]
    assert cpu["int8_preset"] == preset_for(cpu["machine"], [f for f, v in cpu["flags"].items() if v])
    assert {"onnxruntime", "tokenizers", "numpy"} <= set(report["device"]["versions"])
    for r in report["bundles"]:
        assert set(r["latency"]) == {"1", "8"} and r["latency"]["1"]["runs"] >= 3
        assert 0 < r["load_ms"] < r["first_prediction_ms"] and r["peak_rss_mb"] > 10 and r["size_mb"] > 0
        # what an app sees per call: the model's own run plus tokenization and decoding
        assert r["predict"]["runs"] >= 3 and r["predict"]["p50_ms"] > 0
        assert r["model_engine"] == "onnxruntime"  # only the n-gram student's model runs compiled (test_ngram.py)
    # dynamic int8 scored one example at a time, as kdedge bench scores it (its batched logits depend on the batch)
    assert [r["eval_batch_size"] for r in report["bundles"]] == [8, 1, 1]
    row = rows[student.name]
    assert row["retention"] == pytest.approx(row["metrics"]["accuracy"] / rows[teacher.name]["metrics"]["accuracy"])
    assert row["speedup_vs_teacher"]["1"] == pytest.approx(
        rows[teacher.name]["latency"]["1"]["p50_ms"] / row["latency"]["1"]["p50_ms"])
    assert f"| {student.name} | int8 |" in result.stdout and "int8 preset for this CPU" in result.stdout

    # kdedge bench on the same bundle and rows gives the same metric
    host, _ = run_bench(build_config(BenchConfig, None, bundle=(str(student),), backends="ort-cpu",
                                     data_dir=str(glue_dir), max_eval_samples=60, batch_sizes="1", seq_lens="8",
                                     warmup=1, min_runs=3, min_time=0.0, out=str(tmp_path / "host")))
    host_row = json.loads((host / "report.json").read_text())["rows"][0]
    assert host_row["metric"] == pytest.approx(row["metrics"]["accuracy"], abs=1e-12)


def test_device_bench_reads_another_layout_and_names_bad_input(tiny_bundles, glue_dir, tmp_path):
    bundle = tiny_bundles["bilstm-dynamic"]
    lines = (glue_dir / "SST-2" / "dev.tsv").read_text().splitlines()[1:31]
    (tmp_path / "reviews.jsonl").write_text("\n".join(
        json.dumps({"review": line.split("\t")[0], "stars": line.split("\t")[1]}) for line in lines))
    ok = _device_bench(tmp_path, bundle, "--data", tmp_path / "reviews.jsonl", "--columns", "review,stars", *FAST)
    assert ok.returncode == 0, ok.stderr
    for args, message in (
        (["--data", tmp_path / "missing.tsv"], "data file not found"),
        (["--data", tmp_path / "reviews.jsonl"], "column 'sentence' is missing"),
        (["--data", tmp_path / "reviews.jsonl", "--columns", "review,review,stars"], "does not read pairs"),
    ):
        bad = _device_bench(tmp_path, bundle, *args, *FAST)
        assert bad.returncode == 1 and message in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{")
    bad = _device_bench(tmp_path, broken, "--data", tmp_path / "reviews.jsonl", *FAST)
    assert bad.returncode == 1 and "is not a complete kdedge bundle" in bad.stderr and "Traceback" not in bad.stderr


def _tiny_report() -> dict:
    latency = {"runs": 3, "p50_ms": 1.0, "p90_ms": 1.5, "p99_ms": 2.0, "mean_ms": 1.1, "throughput": 900.0}
    cpu = {"model": "m", "machine": "x86_64", "usable_cpus": 2, "int8_preset": "avx2", "flags": {"avx2": True}}
    bundle = {"name": "s", "role": "student", "model_sha256": "cd", "metrics": {"accuracy": 0.5},
              "main_metric": "accuracy", "size_mb": 1.0, "latency": {"1": latency}}
    return {"schema": device_bench.SCHEMA, "device": {"cpu": cpu, "versions": {}, "os": "Linux"}, "settings": {},
            "data": {"file": "dev.tsv", "sha256": "ab", "rows": 3}, "bundles": [bundle]}


def test_device_report_round_trip_and_refusals(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_tiny_report()))
    assert load_report(path)["bundles"][0]["name"] == "s"
    for change, message in (
        (lambda r: r.update(schema="kdedge-device-report/2"), "newer kdedge-runtime"),
        (lambda r: r.update(schema="other"), "is not 'kdedge-device-report/1'"),
        (lambda r: r.pop("bundles"), "field 'bundles' is missing"),
        (lambda r: r["data"].pop("sha256"), "field 'data.sha256' is missing"),
        (lambda r: r["device"].update(cpu="x"), "field 'device.cpu' must be a JSON object, not \"x\""),
        (lambda r: r["device"]["cpu"].pop("machine"), "field 'device.cpu.machine' is missing"),
        (lambda r: r["device"]["cpu"].update(flags=["avx2"]), "field 'device.cpu.flags' must be a JSON object"),
        (lambda r: r["bundles"][0].pop("model_sha256"), "field 'bundles[0].model_sha256' is missing"),
        (lambda r: r["bundles"][0]["latency"]["1"].update(p50_ms="fast"), "bundles[0].latency.1.p50_ms"),
        (lambda r: r["bundles"][0].update(predict=[1]), "field 'bundles[0].predict' must be a JSON object"),
        (lambda r: r["bundles"][0].update(predict={"runs": 3}), "field 'bundles[0].predict.p50_ms' is missing"),
    ):
        report = _tiny_report()
        change(report)
        with pytest.raises(ReportError, match=message.replace("[", r"\[").replace("]", r"\]")):
            validate_report(report)
    path.write_text("{")
    with pytest.raises(ReportError, match="not a readable JSON file"):
        load_report(path)


def test_runtime_metrics_equal_kdedge_metrics():
    from kdedge.data.metrics import METRICS as REFERENCE
    from kdedge_runtime.metrics import METRICS

    rng = np.random.default_rng(0)
    for _ in range(100):
        n = int(rng.integers(2, 50))
        y, p = rng.integers(0, 3, n), rng.integers(0, 3, n)
        for name in ("accuracy", "macro_f1", "matthews_correlation"):
            assert METRICS[name](y, p) == pytest.approx(REFERENCE[name](y, p), abs=1e-12)
        y, p = rng.integers(0, 2, n), rng.integers(0, 2, n)
        assert METRICS["f1"](y, p) == pytest.approx(REFERENCE["f1"](y, p), abs=1e-12)
        y, p = np.round(rng.normal(size=n), 1), np.round(rng.normal(size=n), 1)  # ties for the rank correlation
        for name in ("pearson", "spearmanr"):
            assert METRICS[name](y, p) == pytest.approx(REFERENCE[name](y, p), abs=1e-12)


def test_device_reports_join_the_host_report(tiny_bundles, tiny_trained_teacher, glue_dir, tmp_path):
    from kdedge.bench.run import run_bench
    from kdedge.config import BenchConfig, build_config
    from kdedge.errors import KdedgeError

    student, other = tiny_bundles["tinybert-dynamic"], tiny_bundles["bilstm-dynamic"]

    def host(out, **kw):
        cfg = build_config(BenchConfig, None, **{
            "bundle": (str(student),), "teacher": str(tiny_trained_teacher), "backends": "ort-cpu",
            "data_dir": str(glue_dir), "max_eval_samples": 60, "batch_sizes": "1,8", "seq_lens": "8", "warmup": 1,
            "min_runs": 3, "min_time": 0.0, "out": str(tmp_path / out), **kw})
        return json.loads((run_bench(cfg)[0] / "report.json").read_text())

    first = host("host")
    paths = {m["name"]: m["path"] for m in json.loads((tmp_path / "host" / "manifest.json").read_text())["inputs"]["models"]}
    dev = glue_dir / "SST-2" / "dev.tsv"
    common = {"warmup": 1, "min_runs": 3, "min_time": 0.0, "batch_size": 8, "threads": 1}
    report = device_bench.run([str(student)], str(dev), teacher=paths["teacher-int8"], device_name="pi",
                              max_examples=60, **common)
    (tmp_path / "pi.json").write_text(json.dumps(report))

    merged = host("merged", device_report=(str(tmp_path / "pi.json"),))
    rows = {(r["model"], r["backend"]): r for r in merged["rows"]}
    on_pi, teacher_on_pi = rows[(student.name, "device:pi")], rows[("teacher-int8", "device:pi")]
    measured = {r["name"]: r for r in report["bundles"]}
    assert on_pi["p50_ms"] == measured[student.name]["latency"]["1"]["p50_ms"]
    teacher = rows[("teacher", "ort-cpu")]  # the reference here (no torch-cpu row in this run)
    assert on_pi["retention"] == pytest.approx(on_pi["metric"] / teacher["metric"])
    assert on_pi["metric"] == pytest.approx(rows[(student.name, "ort-cpu")]["metric"], abs=1e-12)  # the same rows
    assert on_pi["speedup_vs_teacher_int8"] == pytest.approx(teacher_on_pi["p50_ms"] / on_pi["p50_ms"])
    assert on_pi["speedup_vs_torch_teacher"] is None  # another machine's PyTorch is no baseline
    assert len(merged["rows"]) == len(first["rows"]) + 2
    md = (tmp_path / "merged" / "report.md").read_text()
    assert f"| {student.name} | device:pi | int8 |" in md and "- device:pi: " in md
    assert "**emulated**" not in md
    from kdedge.bench.report import markdown

    merged["rows"] = [{**r, "device": {**r["device"], "cpu": {**r["device"]["cpu"], "emulated": True}}}
                      if "device" in r else r for r in merged["rows"]]
    assert "- device:pi: " in markdown(merged) and "**emulated**: the CPU shown is the host's" in markdown(merged)

    for change, message in (
        (dict(max_examples=50), "scored other data"),
        (dict(extra=[str(other)]), f"bundle {other.name} .* is not among this bench's bundles"),
    ):
        bad = device_bench.run([str(student)] + change.pop("extra", []), str(dev), device_name="pi",
                               **{"max_examples": 60, **change, **common})
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        with pytest.raises(KdedgeError, match=message):
            host("refused", device_report=(str(tmp_path / "bad.json"),))
    (tmp_path / "bad.json").write_text(json.dumps({**report, "schema": "kdedge-device-report/9"}))
    with pytest.raises(KdedgeError, match="newer kdedge-runtime"):
        host("refused", device_report=(str(tmp_path / "bad.json"),))
    assert not (tmp_path / "refused").exists()


def test_node_device_bench_writes_the_same_report(tiny_bundles, glue_dir, tmp_path):
    from tests.test_runtime import NODE_DIR, _node_available

    if not _node_available():
        pytest.skip("node and export/node/node_modules are needed (cd export/node && npm ci)")
    bundles = [tiny_bundles["tinybert-dynamic"], tiny_bundles["bilstm-dynamic"]]
    dev = glue_dir / "SST-2" / "dev.tsv"
    args = [*bundles, "--teacher", tiny_bundles["tinybert-none"], "--data", dev, "--max-examples", "60",
            "--with-logits", *FAST]
    node = subprocess.run(["node", NODE_DIR / "src" / "bench.js", *args, "--out", tmp_path / "node.json"],
                          capture_output=True, text=True)
    assert node.returncode == 0, node.stderr
    assert _device_bench(tmp_path, *args, "--out", tmp_path / "python.json").returncode == 0
    from_node, from_python = load_report(tmp_path / "node.json"), load_report(tmp_path / "python.json")
    assert from_node["data"] == from_python["data"]
    for key in ("int8_preset", "identity"):
        assert from_node["device"]["cpu"][key] == from_python["device"]["cpu"][key]
    for a, b in zip(from_node["bundles"], from_python["bundles"]):
        assert (a["name"], a["role"], a["model_sha256"], a["eval_batch_size"]) == (
            b["name"], b["role"], b["model_sha256"], b["eval_batch_size"])
        assert a["metrics"] == pytest.approx(b["metrics"], abs=1e-12) and set(a["latency"]) == set(b["latency"])
        assert a["predict"]["p50_ms"] > 0 and b["predict"]["p50_ms"] > 0
        assert a["retention"] == pytest.approx(b["retention"])
        np.testing.assert_allclose(a["logits"], b["logits"], atol=1e-4)
    bad = subprocess.run(["node", NODE_DIR / "src" / "bench.js", bundles[0], "--data", tmp_path / "missing.tsv"],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "data file not found" in bad.stderr and "at " not in bad.stderr
