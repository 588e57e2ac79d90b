"""benchmarks/gpu/run.sh in its CPU smoke mode (issue 46): the GPU run's stages and output files, on a tiny teacher
and a few hundred SST-2 rows, so the script cannot rot while no GPU is lent. Slow for this suite (a minute or two on
two cores): it runs every stage once, as the GPU call will."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["teacher", "transfer", "pruned-2l-128-ffn256-long", "bilstm-glove",
          "export-pruned-2l-128-ffn256-long-int8", "export-pruned-2l-128-ffn256-long-fp32",
          "export-bilstm-glove-int8", "export-bilstm-glove-fp32", "bench-torch", "bench-onnx"]


def _smoke_env(base: Path, glue_dir: Path) -> dict:
    # the device image has no `kdedge` command (kdedge is not installed there, only on PYTHONPATH): the PATH here
    # leaves out the venv's console script, as the first GPU call found out
    path = os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep) if not (Path(d) / "kdedge").exists())
    return {**os.environ, "PATH": path, "DEVICE": "cpu", "SMOKE": "1", "RUN": str(base / "run"),
            "OUT": str(base / "out"), "PYTHON": sys.executable, "KDEDGE_DATA_DIR": str(glue_dir), "THREADS": "1"}


def _run_script(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "benchmarks/gpu/run.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, glue_dir):
    base = tmp_path_factory.mktemp("gpu-smoke")
    proc = _run_script({**_smoke_env(base, glue_dir), "RES": str(base / "results")})
    return proc, base


def test_every_stage_runs_and_is_timed(smoke_run):
    proc, base = smoke_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    times = dict(line.split(" ", 1) for line in (base / "results" / "times.txt").read_text().splitlines())
    assert [s for s in STAGES if "rc=0" not in times.get(s, "")] == []
    for stage in STAGES:
        assert (base / "results" / f"{stage}.log").is_file()


def test_what_comes_back_from_the_device(smoke_run):
    """$OUT holds what the device tool returns (at most 8 files): the summary, the stage times, the log, and the
    results folder packed (bench reports, logs, summary.json; no model files)."""
    _, base = smoke_run
    out = sorted(p.name for p in (base / "out").iterdir())
    assert out == ["results.tar.gz", "run.log", "summary.md", "times.txt"]
    with tarfile.open(base / "out" / "results.tar.gz") as tar:
        names = set(tar.getnames())
    for name in ("summary.json", "summary.md", "environment.txt", "bench-torch/report.json", "bench-onnx/report.json"):
        assert f"results/{name}" in names
    assert not [n for n in names if n.endswith((".onnx", ".safetensors"))]


def test_the_summary_compares_with_the_recorded_cpu_runs(smoke_run):
    _, base = smoke_run
    summary = json.loads((base / "results" / "summary.json").read_text())
    for stage in ("teacher", "transfer", "pruned-2l-128-ffn256-long", "bilstm-glove"):
        entry = summary["stages"][stage]
        assert entry["here"]["rows"] > 0 and entry["here"]["rows_per_s"] > 0
        assert entry["cpu"]["rows_per_s"] > 0 and entry["speedup"] == pytest.approx(
            entry["here"]["rows_per_s"] / entry["cpu"]["rows_per_s"])
    # the recorded CPU runs: teacher 2 epochs of SST-2 at batch 32, three seeds of each student
    assert summary["stages"]["teacher"]["cpu"]["rows"] == 4210 * 32
    assert len(summary["accuracy"]["bilstm-glove"]["cpu"]) == 3
    assert all(summary["accuracy"][m]["within_noise"] in (True, False)
               for m in ("teacher", "pruned-2l-128-ffn256-long", "bilstm-glove"))


def test_the_bench_rows_cover_every_backend_and_say_why_not(smoke_run):
    _, base = smoke_run
    summary = json.loads((base / "results" / "summary.json").read_text())
    torch_rows, onnx_rows = summary["bench-torch"], summary["bench-onnx"]
    assert {r["model"] for r in torch_rows} == {"teacher", "pruned-2l-128-ffn256-long", "bilstm-glove"}
    ok = [r for r in torch_rows if r["status"] == "ok"]
    assert {r["backend"] for r in ok} == {"torch-cpu"} and all(set(r["latency"]["real"]) == {"1", "8"} for r in ok)
    cuda = [r for r in torch_rows if r["backend"].startswith("torch-cuda")]
    assert len(cuda) == 9 and all(r["status"] == "unavailable" and r["why"] for r in cuda)
    assert {r["precision"] for r in cuda} == {"fp32", "fp16", "bf16"}
    assert {r["model"] for r in onnx_rows if r["backend"] == "ort-cpu" and r["status"] == "ok"} == {
        "teacher", "teacher-int8", "pruned-2l-128-ffn256-long-int8", "pruned-2l-128-ffn256-long-fp32",
        "bilstm-glove-int8", "bilstm-glove-fp32"}
    for backend in ("ort-cuda", "ort-tensorrt"):
        rows = [r for r in onnx_rows if r["backend"] == backend]
        assert rows and all(r["status"] == "unavailable" and "onnxruntime" in r["why"] for r in rows)
    markdown = (base / "results" / "summary.md").read_text()
    assert "ort-tensorrt" in markdown and "Rows per second" in markdown


@pytest.fixture
def prepare(glue_dir, monkeypatch):
    """benchmarks/gpu/prepare.py as a module, reading the test GLUE folder."""
    sys.path.insert(0, str(ROOT / "benchmarks" / "gpu"))
    try:
        import prepare
    finally:
        sys.path.remove(str(ROOT / "benchmarks" / "gpu"))
    monkeypatch.setenv("KDEDGE_DATA_DIR", str(glue_dir))
    return prepare


def test_prepare_builds_a_folder_that_run_unpacks(tmp_path, glue_dir, prepare):
    """prepare.py's layout (smoke build; the real one differs only in the teacher and the row counts)."""
    prepare.build(tmp_path / "carry", smoke=True)
    import torch
    from safetensors.torch import load_file

    tensors = load_file(tmp_path / "carry" / "teacher-base" / "model.safetensors")
    assert {t.dtype for t in tensors.values() if t.is_floating_point()} == {torch.float16}
    prepare.unpack(tmp_path / "carry", tmp_path / "inputs")
    train = (tmp_path / "inputs" / "glue" / "SST-2" / "train.tsv").read_text().splitlines()
    assert train[0] == (glue_dir / "SST-2" / "train.tsv").read_text().splitlines()[0]
    assert len(train) == prepare.SMOKE_ROWS["train.tsv"] + 1
    first = (tmp_path / "inputs" / "vectors.txt").read_text().splitlines()[0].split(" ")
    assert len(first) > 2 and all(float(v) == float(v) for v in first[1:])


def test_a_second_call_resumes_the_first(smoke_run, glue_dir):
    """Two device calls on one warm machine: the second finds the first's results folder through the run folder
    (no RES given), runs only what is not finished (here the ONNX bench, its report removed) and packs it all."""
    first, base = smoke_run
    assert first.returncode == 0
    shutil.rmtree(base / "results" / "bench-onnx")
    before = (base / "results" / "times.txt").read_text().splitlines()
    proc = _run_script(_smoke_env(base, glue_dir))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    after = (base / "results" / "times.txt").read_text().splitlines()
    added = [line.split()[0] for line in after[len(before):]]
    assert added == ["bench-onnx", "total"] and after[:len(before)] == before
    for stage in STAGES[:-1]:
        assert f"{stage}: done by an earlier call" in proc.stdout
    assert (base / "results" / "bench-onnx" / "report.json").is_file()


@pytest.fixture(scope="module")
def fast_end_run(tmp_path_factory, glue_dir):
    base = tmp_path_factory.mktemp("fast-end-smoke")
    env = {**_smoke_env(base, glue_dir), "SEEDS": "42 43"}
    proc = subprocess.run(["bash", "benchmarks/gpu/fast_end.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
    return proc, base


def test_the_fast_end_script_trains_both_caps_and_packs_what_the_cpu_measures(fast_end_run):
    """benchmarks/gpu/fast_end.sh (issue 49) in its smoke mode: teacher, set (b) with the carried IMDB halves, the
    n-gram students at both caps for each seed, their bundles and the teacher's, and $OUT within the device tool's
    bounds (at most 8 files, each under 16 MiB; the larger two in pieces that join back into tars)."""
    proc, base = fast_end_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    students = [f"{name}-imdb-s{seed}" for seed in (42, 43) for name in ("ngram", "ngram-long")]
    times = (base / "run" / "results-dir").read_text().strip()
    last = dict(line.split(" ", 1) for line in (Path(times) / "times.txt").read_text().splitlines())
    stages = ["teacher", "transfer", "export-teacher", *students, *(f"export-{s}" for s in students)]
    assert [s for s in stages if "rc=0" not in last.get(s, "")] == []
    out = base / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "results.tar.gz", "students.tar", "teacher.tar.00", "times.txt", "transfer.tar.00"]
    assert all(p.stat().st_size < 16 * 2 ** 20 for p in out.iterdir())
    with tarfile.open(out / "students.tar") as tar:
        caps = {Path(n).parent.name: json.load(tar.extractfile(n))["max_length"]
                for n in tar.getnames() if n.endswith("manifest.json")}
    assert caps == {f"{s}-int8": (2048 if "long" in s else 128) for s in students}
    for piece in ("teacher", "transfer"):
        joined = b"".join(p.read_bytes() for p in sorted(out.glob(f"{piece}.tar.*")))
        with tarfile.open(fileobj=io.BytesIO(joined)) as tar:
            manifest = json.load(tar.extractfile(next(n for n in tar.getnames() if n.endswith("/manifest.json"))))
        if piece == "transfer":  # the reviews are in set (b), the held-out half is its evaluation set
            assert "imdb" in json.dumps(manifest["inputs"])
    with tarfile.open(out / "results.tar.gz") as tar:
        metrics = json.load(tar.extractfile(next(n for n in tar.getnames()
                                                 if n.endswith("students/ngram-long-imdb-s42/metrics.json"))))
    assert 0 <= metrics["eval"]["imdb"]["student"]["accuracy"] <= 1


def test_prepare_carries_the_imdb_halves_as_the_cpu_splits_them(tmp_path, glue_dir, prepare):
    prepare.build(tmp_path / "carry", smoke=True, imdb=True)
    prepare.unpack(tmp_path / "carry", tmp_path / "inputs")
    sample = (glue_dir.parent / "imdb" / "test-2k.tsv").read_text(encoding="utf-8").split("\n")
    head = "\n".join(sample[: prepare.SMOKE_ROWS["imdb"] + 1])
    (tmp_path / "head.tsv").write_text(head, encoding="utf-8")
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "split_labelled.py"), str(tmp_path / "head.tsv"),
                    str(tmp_path / "u.txt"), str(tmp_path / "e.tsv"), "--unlabeled-rows",
                    str(prepare.SMOKE_ROWS["imdb"] // 2), "--seed", "0"], check=True, capture_output=True)
    for mine, cpu in (("unlabeled.txt", "u.txt"), ("eval.tsv", "e.tsv")):
        assert (tmp_path / "inputs" / "imdb" / mine).read_bytes() == (tmp_path / cpu).read_bytes()
    unlabeled = (tmp_path / "inputs" / "imdb" / "unlabeled.txt").read_text(encoding="utf-8").split("\n")[:-1]
    held = [r.split("\t")[0] for r in (tmp_path / "e.tsv").read_text(encoding="utf-8").split("\n")[1:] if r]
    assert len(unlabeled) == len(held) == prepare.SMOKE_ROWS["imdb"] // 2 and not set(unlabeled) & set(held)
