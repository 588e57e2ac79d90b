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
    return {"schema": device_bench.SCHEMA, "device": {"cpu": {}}, "settings": {}, "data": {"file": "dev.tsv",
            "sha256": "ab", "rows": 3}, "bundles": [{"name": "s", "role": "student", "model_sha256": "cd",
            "metrics": {"accuracy": 0.5}, "main_metric": "accuracy", "size_mb": 1.0, "latency": {"1": latency}}]}


def test_device_report_round_trip_and_refusals(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_tiny_report()))
    assert load_report(path)["bundles"][0]["name"] == "s"
    for change, message in (
        (lambda r: r.update(schema="kdedge-device-report/2"), "newer kdedge-runtime"),
        (lambda r: r.update(schema="other"), "is not 'kdedge-device-report/1'"),
        (lambda r: r.pop("bundles"), "field 'bundles' is missing"),
        (lambda r: r["data"].pop("sha256"), "field 'data.sha256' is missing"),
        (lambda r: r["bundles"][0].pop("model_sha256"), "field 'bundles[0].model_sha256' is missing"),
        (lambda r: r["bundles"][0]["latency"]["1"].update(p50_ms="fast"), "bundles[0].latency.1.p50_ms"),
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
