import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from kdedge.bench.backends import BACKENDS, parse_backends
from kdedge.bench.report import check_gates, parse_retention_gates
from kdedge_runtime.timing import measure, summarize
from kdedge.config import BenchConfig, build_config
from kdedge.errors import KdedgeError


class FakeClock:
    """Each timed call takes the next duration from the list."""

    def __init__(self, durations):
        self.durations, self.now, self.ticks = list(durations), 0.0, 0

    def __call__(self):
        if self.ticks % 2 == 1:  # the end of a call
            self.now += self.durations.pop(0)
        self.ticks += 1
        return self.now


def test_percentiles_from_known_timings():
    durations = [i / 1000 for i in range(1, 101)]  # 1 ms ... 100 ms
    calls = []
    times = measure(lambda: calls.append(1), warmup=3, min_runs=100, min_time=0.0, max_runs=1000,
                    clock=FakeClock(durations))
    assert len(calls) == 103 and len(times) == 100  # warm-up runs are not timed
    stats = summarize(times, batch_size=4)
    assert stats["p50_ms"] == pytest.approx(50.5)
    assert stats["p90_ms"] == pytest.approx(90.1)
    assert stats["p99_ms"] == pytest.approx(99.01)
    assert stats["mean_ms"] == pytest.approx(50.5)
    assert stats["std_ms"] == pytest.approx(np.std(np.arange(1, 101), ddof=1))
    assert stats["throughput"] == pytest.approx(4 / 0.0505)


def test_measure_runs_until_both_minimums_and_stops_at_the_maximum():
    times = measure(lambda: None, warmup=0, min_runs=2, min_time=0.05, max_runs=100, clock=FakeClock([0.01] * 100))
    assert len(times) == 5  # 2 runs were not enough time; 5 x 10 ms reach 50 ms
    times = measure(lambda: None, warmup=0, min_runs=2, min_time=10.0, max_runs=7, clock=FakeClock([0.01] * 100))
    assert len(times) == 7


def test_each_input_shape_is_run_once_before_the_timing():
    """A shape's first call can cost a GPU ~40 ms, so every distinct batch shape is warmed, once."""
    from kdedge.bench.worker import warm_each_shape

    def row(n):
        return {"input_ids": [1] * n, "attention_mask": [1] * n}

    batches = [[row(n)] for n in (5, 7, 5, 9, 7)] + [[row(5), row(9)]]
    calls = []
    warm_each_shape([lambda i=i: calls.append(i) for i in range(len(batches))], batches)
    assert calls == [0, 1, 3]  # lengths 5, 7 and 9; the pair batch pads to 9


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(KdedgeError, match="unknown backend.*ort-gpu.*known: torch-cpu"):
        parse_backends("ort-cpu,ort-gpu")
    assert BACKENDS["ort-cpu"].unavailable() is None


def _row(model, role="student", retention=0.99, p99=5.0, status="ok", imdb=None):
    return {"model": model, "role": role, "backend": "ort-cpu", "status": status, "retention": retention,
            "p99_ms": p99, "batch": 1, "why": "boom" if status == "error" else None,
            **({"eval": {"imdb": {"metric": 0.8, "retention": imdb}}} if imdb is not None else {})}


def test_gates_name_the_failing_rows():
    rows = [_row("teacher", role="teacher", retention=1.0, p99=50.0, imdb=0.5), _row("good", imdb=0.99),
            _row("slow", p99=12.0, imdb=0.98), _row("lossy", retention=0.9, imdb=0.9), _row("broken", status="error")]
    gates = parse_retention_gates(("0.95", "imdb=0.97"), ["imdb"])
    assert gates == {"dev": 0.95, "imdb": 0.97}
    failures = check_gates(rows, gates, max_p99_ms=20.0)
    assert failures == ["teacher on ort-cpu: p99 50.00 ms at batch 1 > 20.0 ms",
                        "lossy on ort-cpu: retention 0.9000 < 0.95",
                        "lossy on ort-cpu: retention on imdb 0.9000 < 0.97",
                        "broken on ort-cpu: the benchmark job failed (boom)"]
    assert check_gates(rows[:2], {}, None) == []


@pytest.mark.parametrize("given, why", [(("imbd=0.9",), "no evaluation set named 'imbd' \\(known: dev, imdb\\)"),
                                         (("imdb=high",), "'high' is not a number; write R or NAME=R")])
def test_retention_gates_refuse_unknown_sets_and_non_numbers(given, why):
    with pytest.raises(KdedgeError, match=why):
        parse_retention_gates(given, ["imdb"])


def _bench(tmp_path, glue_dir, **kw):
    from kdedge.bench.run import run_bench

    base = dict(data_dir=str(glue_dir), max_eval_samples=60, batch_sizes="1,4", seq_lens="8",
                warmup=1, min_runs=3, min_time=0.0, out=str(tmp_path / "report"))
    base.update(kw)
    return run_bench(build_config(BenchConfig, None, **base))


def test_bench_report_on_tiny_bundles(tiny_bundles, tiny_trained_teacher, glue_dir, tmp_path):
    bundles = (str(tiny_bundles["bilstm-dynamic"]), str(tiny_bundles["tinybert-none"]))
    out, failures = _bench(tmp_path, glue_dir, bundle=bundles, teacher=str(tiny_trained_teacher),
                           backends="torch-cpu,ort-cpu,ort-tensorrt")
    assert failures == []
    report = json.loads((out / "report.json").read_text())
    rows = {(r["model"], r["backend"]): r for r in report["rows"]}
    teacher = "teacher"
    # the teacher runs on torch-cpu, and as exported fp32 and int8 bundles on ort-cpu, side by side
    assert {k for k, r in rows.items() if r["status"] == "ok"} == {
        (teacher, "torch-cpu"), (teacher, "ort-cpu"), ("teacher-int8", "ort-cpu"), ("bilstm-dynamic", "ort-cpu"),
        ("tinybert-none", "ort-cpu")}
    for name in (teacher, "bilstm-dynamic", "tinybert-none"):  # an unavailable backend is reported, not fatal
        assert rows[(name, "ort-tensorrt")]["status"] == "unavailable"
        assert "TensorrtExecutionProvider" in rows[(name, "ort-tensorrt")]["why"]
    t_torch, t_ort, student = rows[(teacher, "torch-cpu")], rows[(teacher, "ort-cpu")], rows[("tinybert-none", "ort-cpu")]
    t_int8 = rows[("teacher-int8", "ort-cpu")]
    assert (t_int8["role"], t_int8["precision"]) == ("teacher", "int8") and t_int8["size_mb"] < t_ort["size_mb"]
    assert all(k in t_int8 for k in ("backend", "p50_ms", "parameters", "retention"))
    # dynamic int8 is scored one example at a time (its batched logits depend on the other rows), floats batched
    assert t_int8["eval_batch_size"] == rows[("bilstm-dynamic", "ort-cpu")]["eval_batch_size"] == 1
    assert {rows[k]["eval_batch_size"] for k in ((teacher, "torch-cpu"), (teacher, "ort-cpu"),
                                                 ("tinybert-none", "ort-cpu"))} == {64}  # the default
    assert t_torch["retention"] == 1.0 and t_torch["agreement"] == 1.0
    assert t_ort["metric"] == pytest.approx(t_torch["metric"])  # fp32 ONNX teacher = PyTorch teacher
    assert student["retention"] == pytest.approx(student["metric"] / t_torch["metric"])
    assert student["speedup_vs_teacher_int8"] == pytest.approx(t_int8["p50_ms"] / student["p50_ms"])
    assert student["speedup_vs_teacher_fp32"] == pytest.approx(t_ort["p50_ms"] / student["p50_ms"])
    assert student["speedup_vs_torch_teacher"] == pytest.approx(t_torch["p50_ms"] / student["p50_ms"])
    assert rows[(teacher, "torch-cpu")]["speedup_vs_teacher_int8"] is None  # no int8 teacher on torch-cpu
    latency = student["latency"]
    assert set(latency["real"]) == {"1", "4"} and set(latency["padded"]["4"]) == {"8"}
    assert latency["real"]["1"]["runs"] >= 3 and latency["real"]["1"]["p50_ms"] <= latency["real"]["1"]["p99_ms"]
    assert student["parameters"] > 0 and student["session"]["providers"] == ["CPUExecutionProvider"]
    assert student["session"]["disabled_optimizers"] == ["SkipLayerNormFusion"]  # what kdedge_runtime runs with
    assert report["environment"]["cpu"]["flags"]["avx2"] in (True, False)
    # the table a person reads agrees with the JSON
    md = (out / "report.md").read_text()
    cpu = report["environment"]["cpu"]
    assert f"CPU: {cpu['model']}" + (f" ({cpu['identity']})" if cpu["identity"] else "") + "," in md
    for r in report["rows"]:
        if r["status"] == "ok":
            line = next(l for l in md.splitlines() if l.startswith(f"| {r['model']} | {r['backend']} | {r['precision']}"))
            assert f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} |" in line and f"{r['metric']:.4f}" in line
    assert "ort-tensorrt: unavailable" in md
    assert (out / "report.png").stat().st_size > 10_000
    # like every stage, a manifest: the config, the data, what was measured (by weights), the headline figures
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["command"] == "bench" and manifest["config"]["backends"] == "torch-cpu,ort-cpu,ort-tensorrt"
    assert manifest["inputs"]["dev"]["rows"] == 60 and manifest["metrics"]["gate_failures"] == []
    measured = {m["name"]: m for m in manifest["inputs"]["models"]}
    assert measured["tinybert-none"]["weights_sha256"] == json.loads(
        (tiny_bundles["tinybert-none"] / "manifest.json").read_text())["files"]["model.onnx"]["sha256"]
    assert len(manifest["metrics"]["rows"]) == len(report["rows"])


def _eval_file(glue_dir, path: Path, rows: slice) -> Path:
    """SST-2 rows in the task's own layout (sentence, label), as a user's out-of-domain file would be."""
    lines = (glue_dir / "SST-2" / "train.tsv").read_text().splitlines()
    path.write_text("\n".join([lines[0]] + lines[1:][rows]) + "\n")
    return path


def test_eval_files_are_scored_beside_dev_with_their_own_retention_and_gates(tiny_bundles, tiny_trained_teacher,
                                                                            glue_dir, tmp_path):
    from kdedge_runtime import Classifier

    extra = _eval_file(glue_dir, tmp_path / "reviews.tsv", slice(100, 180))
    bundle = tiny_bundles["tinybert-none"]
    out, failures = _bench(tmp_path, glue_dir, bundle=(str(bundle),), teacher=str(tiny_trained_teacher),
                           backends="torch-cpu,ort-cpu", eval_file=(f"reviews={extra}",),
                           min_retention=("0", "reviews=100"))
    report = json.loads((out / "report.json").read_text())
    assert report["eval_sets"]["reviews"]["rows"] == 60  # --max-eval-samples applies to every set
    rows = {(r["model"], r["backend"]): r for r in report["rows"]}
    teacher, student = rows[("teacher", "torch-cpu")], rows[("tinybert-none", "ort-cpu")]
    # the student's figure on the set is its own, measured here: the runtime on the same 60 rows gives it
    texts, labels = [], []
    for line in extra.read_text().splitlines()[1:61]:
        text, label = line.split("\t")
        texts.append(text)
        labels.append(int(label))
    logits = Classifier(bundle).logits(texts)
    expected = float(np.mean(logits.argmax(-1) == np.asarray(labels)))
    assert student["eval"]["reviews"]["metric"] == pytest.approx(expected)
    assert teacher["eval"]["reviews"]["retention"] == 1.0
    assert student["eval"]["reviews"]["retention"] == pytest.approx(
        student["eval"]["reviews"]["metric"] / teacher["eval"]["reviews"]["metric"])
    # the gate on the set fails (100x retention is impossible) and names the set; the dev gate of 0 passes
    assert failures == [f"tinybert-none on ort-cpu: retention on reviews "
                        f"{student['eval']['reviews']['retention']:.4f} < 100.0"]
    md = (out / "report.md").read_text()
    assert "| reviews accuracy | reviews retention |" in md
    line = next(l for l in md.splitlines() if l.startswith("| tinybert-none | ort-cpu |"))
    assert f"| {student['eval']['reviews']['metric']:.4f} | {student['eval']['reviews']['retention']:.3f} |" in line
    assert "reviews: " in md and "(60 rows)" in md


def test_a_malformed_eval_file_fails_with_file_line_and_column(tiny_bundles, glue_dir, tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("sentence\tlabel\na fine film\t1\na dull film\tmaybe\n")
    with pytest.raises(KdedgeError, match=f"{bad}, line 3, column 'label': unknown label 'maybe'"):
        _bench(tmp_path, glue_dir, bundle=(str(tiny_bundles["bilstm-none"]),), backends="ort-cpu",
               eval_file=(f"bad={bad}",))
    with pytest.raises(KdedgeError, match="the name 'dev' must be"):
        _bench(tmp_path, glue_dir, bundle=(str(tiny_bundles["bilstm-none"]),), backends="ort-cpu",
               eval_file=(f"dev={bad}",))


def test_openvino_runtime_backend_gives_onnx_runtimes_results(tiny_bundles, glue_dir, tmp_path):
    pytest.importorskip("openvino")
    bundles = (str(tiny_bundles["bilstm-dynamic"]), str(tiny_bundles["tinybert-none"]))
    out, failures = _bench(tmp_path, glue_dir, bundle=bundles, backends="ort-cpu,openvino-cpu", threads=1)
    assert failures == []
    rows = {(r["model"], r["backend"]): r for r in json.loads((out / "report.json").read_text())["rows"]}
    for name in ("bilstm-dynamic", "tinybert-none"):
        ort_row, ov_row = rows[(name, "ort-cpu")], rows[(name, "openvino-cpu")]
        assert ov_row["status"] == "ok", ov_row.get("why")
        assert ov_row["session"]["engine"].startswith("openvino") and ov_row["session"]["inference_num_threads"] == 1
        assert ov_row["latency"]["real"]["1"]["runs"] >= 3
        # the same feeds through another engine: the same predictions (int8 kernels may round differently)
        assert ov_row["metric"] == pytest.approx(ort_row["metric"], abs=0.02 if name.endswith("dynamic") else 1e-9)


def test_ort_openvino_runs_or_names_the_reason():
    pytest.importorskip("onnxruntime_ep_openvino")
    from kdedge_runtime import plugins

    vendor = plugins.cpu_vendor()
    for _ in range(2):  # the second time with the plugin registered (and so listed among ONNX Runtime's providers)
        why = BACKENDS["ort-openvino"].unavailable()
        if vendor and vendor[1] != 0x8086:  # the plugin offers Intel devices only
            assert why and "Intel devices only" in why and f"0x{vendor[1]:04x}" in why and "openvino-cpu" in why
        else:
            assert why is None


def test_bench_gates_exit_non_zero_with_the_failing_rows(tiny_bundles, glue_dir, tmp_path):
    from click.testing import CliRunner

    from kdedge.cli import main

    args = ["bench", "--bundle", str(tiny_bundles["bilstm-none"]), "--backends", "ort-cpu",
            "--data-dir", str(glue_dir), "--max-eval-samples", "40", "--batch-sizes", "1", "--seq-lens", "8",
            "--warmup", "1", "--min-runs", "3", "--min-time", "0", "--no-accuracy", "--max-p99-ms", "0.000001",
            "--out", str(tmp_path / "r")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert "gates failed" in result.output and "bilstm-none on ort-cpu: p99" in result.output
    assert json.loads((tmp_path / "r" / "gates.json").read_text())["failures"]
    result = CliRunner().invoke(main, args[:-4] + ["--max-p99-ms", "100000", "--out", str(tmp_path / "r2")])
    assert result.exit_code == 0, result.output


def test_bench_refuses_mixed_tasks_and_empty_runs(tiny_bundles, glue_dir, tmp_path):
    with pytest.raises(KdedgeError, match="nothing to benchmark"):
        _bench(tmp_path, glue_dir)
    with pytest.raises(KdedgeError, match="is not a bundle"):
        _bench(tmp_path, glue_dir, bundle=(str(tmp_path),))


def test_doctor_lists_every_backend():
    from click.testing import CliRunner

    from kdedge.cli import main

    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 0
    for name in BACKENDS:
        assert name in result.output
    assert "ort-cpu       usable" in result.output
    assert "int8 preset for this CPU: " in result.output


@pytest.mark.parametrize("flag, says", [("avx512_bf16", "fp32, or bf16 autocast with --mixed-precision bf16"),
                                        ("avx512_vnni", "fp32 (no bfloat16 instructions)")])
def test_doctor_says_whether_this_cpu_trains_in_bf16(monkeypatch, flag, says):
    from kdedge.bench import environment

    cpu = {**environment.describe(), "flags": {"avx2": True, flag: True}}
    monkeypatch.setattr(environment, "describe", lambda: cpu)
    assert f"Training on this CPU: {says}" in environment.doctor_report()


@pytest.mark.parametrize("lo, hi, expected", [
    (0.15, 15.0, [0.2, 0.5, 1.0, 2.0, 5.0, 10.0]),  # 1-2-5 when decades alone are too few
    (0.05, 200.0, [0.1, 1.0, 10.0, 100.0]),  # decades when they suffice
    (0.31, 0.46, [0.31, 0.38, 0.46]),  # within one digit: three rounded values, never 3x10^-1 4x10^-1 clutter
])
def test_log_ticks_are_round_and_few(lo, hi, expected):
    from kdedge.bench.report import parse_retention_gates, log_ticks

    ticks = log_ticks(lo, hi)
    assert ticks == pytest.approx(expected)
    assert len({f"{t:g}" for t in ticks}) == len(ticks)  # distinct labels


def test_report_plot_takes_more_models_than_there_are_colours(tmp_path):
    """A frontier run benches two dozen bundles; the plot must not run out of colours (it did at 11)."""
    from kdedge.bench.report import parse_retention_gates, plot

    row = {"role": "student", "format": "onnx", "backend": "ort-cpu", "status": "ok", "precision": "int8",
           "size_mb": 2.0, "batch": 1}
    rows = [{**row, "model": f"student-{i}", "metric": 0.8 + i / 1000, "p50_ms": 0.2 + i / 10} for i in range(25)]
    rows += [{**row, "model": name, "role": "teacher", "precision": precision, "metric": 0.89, "p50_ms": p50}
             for name, precision, p50 in (("teacher", "fp32", 7.0), ("teacher-int8", "int8", 3.0))]
    plot({"task": {"name": "sst2", "metrics": ["accuracy"]}, "rows": rows}, tmp_path / "report.png")
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_rounds_take_the_median_of_each_figure_and_alternate_their_order():
    from kdedge.bench.rounds import median_over_rounds, round_order

    def summary(p50, runs=10):
        return {"runs": runs, "p50_ms": p50, "p99_ms": 2 * p50, "throughput": 1000 / p50}

    rounds = [{"real": {"1": summary(p50)}, "padded": {"1": {"16": summary(p50 + 1)}}} for p50 in (5.0, 1.0, 2.0)]
    merged = median_over_rounds(rounds)
    assert merged["real"]["1"] == {"runs": 30, "p50_ms": 2.0, "p99_ms": 4.0, "throughput": 500.0,
                                   "p50_rounds_ms": [5.0, 1.0, 2.0]}
    assert merged["padded"]["1"]["16"]["p50_ms"] == 3.0
    assert [round_order(3, r) for r in range(3)] == [[0, 1, 2], [2, 1, 0], [0, 1, 2]]


def test_bench_rounds_time_every_model_again_and_report_the_median(tiny_bundles, glue_dir, tmp_path):
    out, _ = _bench(tmp_path, glue_dir, bundle=(str(tiny_bundles["bilstm-none"]), str(tiny_bundles["tinybert-none"])),
                    backends="ort-cpu", rounds=3)
    report = json.loads((out / "report.json").read_text())
    for row in report["rows"]:
        cell = row["latency"]["real"]["1"]
        assert len(cell["p50_rounds_ms"]) == 3
        assert row["p50_ms"] == pytest.approx(float(np.median(cell["p50_rounds_ms"])))
        assert row["metric"] is not None  # the first round still scores the dev set
    assert "median of 3 rounds" in (out / "report.md").read_text()


def test_two_models_of_one_name_are_refused_before_anything_runs(tiny_bundles, tiny_trained_teacher, glue_dir,
                                                                  tmp_path):
    bundle = str(tiny_bundles["tinybert-none"])
    with pytest.raises(KdedgeError, match=f"two models are named tinybert-none \\({bundle}, {bundle}\\): give each"):
        _bench(tmp_path, glue_dir, bundle=(bundle, bundle), backends="ort-cpu")
    renamed = tmp_path / "teacher-int8"
    shutil.copytree(bundle, renamed)
    with pytest.raises(KdedgeError, match="two models are named teacher-int8 .*the teacher's int8 export"):
        _bench(tmp_path, glue_dir, bundle=(str(renamed),), teacher=str(tiny_trained_teacher), backends="ort-cpu")
    assert not (tmp_path / "report").exists()


def test_bundles_with_the_slow_fusions_are_named(tiny_tinybert_student, glue_dir, tmp_path):
    """A graph fused the way `--optimize` fused before kdedge left SkipLayerNormalization out gets a warning; one
    exported now does not. Every position kept (--no-first-token): the tiny student's one layer is its last, whose
    residuals otherwise run on one row, where there is nothing to fuse."""
    from onnxruntime.transformers.optimizer import optimize_model

    from kdedge.bench.models import bundle_model
    from kdedge.bench.run import fusion_warnings
    from tests.conftest import export_tiny

    bundle = export_tiny(tiny_tinybert_student, glue_dir, tmp_path / "b", first_token=False)
    current = bundle_model(str(bundle))
    config = json.loads((bundle / "config.json").read_text())
    old = tmp_path / "old"
    old.mkdir()
    optimize_model(str(bundle / "model.onnx"), model_type="bert",
                   num_heads=config["num_attention_heads"], hidden_size=config["hidden_size"]
                   ).save_model_to_file(str(old / "model.onnx"))  # ONNX Runtime's defaults: every fusion
    assert fusion_warnings([current]) == []
    [warning] = fusion_warnings([dataclasses.replace(current, name="old", path=str(old))])
    assert warning.startswith("old: its graph has SkipLayerNormalization") and "export it again" in warning


def test_an_interrupted_bench_resumes_without_timing_again_what_it_finished(tiny_bundles, glue_dir, tmp_path,
                                                                            monkeypatch):
    import kdedge.bench.run as bench_run

    real, calls = bench_run.run_in_process, []

    def counted(job, tmp):
        calls.append((job["model"]["name"], job["accuracy"]))
        if len(calls) == interrupt_at:
            raise KeyboardInterrupt
        return real(job, tmp)

    monkeypatch.setattr(bench_run, "run_in_process", counted)
    bundles = (str(tiny_bundles["bilstm-none"]), str(tiny_bundles["tinybert-none"]))
    interrupt_at = 3  # two models, two rounds: round 1 finished, then the interruption
    with pytest.raises(KeyboardInterrupt):
        _bench(tmp_path, glue_dir, bundle=bundles, backends="ort-cpu", rounds=2)
    assert len(list((tmp_path / "report.partial" / "stage-jobs").glob("*.json"))) == 2
    assert not (tmp_path / "report").exists()
    with pytest.raises(KdedgeError, match="pass --resume to continue it"):
        _bench(tmp_path, glue_dir, bundle=bundles, backends="ort-cpu", rounds=2)

    calls.clear()
    interrupt_at = None
    out, _ = _bench(tmp_path, glue_dir, bundle=bundles, backends="ort-cpu", rounds=2, resume=True)
    assert sorted(calls) == [("bilstm-none", False), ("tinybert-none", False)]  # round 2 only
    report = json.loads((out / "report.json").read_text())
    for row in report["rows"]:
        assert row["status"] == "ok" and row["metric"] is not None
        assert len(row["latency"]["real"]["1"]["p50_rounds_ms"]) == 2
    assert not (out / "stage-jobs").exists()

    # what was kept is keyed by all it measured: the same interruption with other timing options times it all again
    calls.clear()
    interrupt_at = 3
    with pytest.raises(KeyboardInterrupt):
        _bench(tmp_path, glue_dir, bundle=bundles, backends="ort-cpu", rounds=2, out=str(tmp_path / "again"))
    calls.clear()
    interrupt_at = None
    _bench(tmp_path, glue_dir, bundle=bundles, backends="ort-cpu", rounds=2, out=str(tmp_path / "again"),
           min_runs=4, resume=True)
    assert len(calls) == 4
