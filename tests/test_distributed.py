"""The distributed path: teacher fine-tuning, distillation and teacher labelling under `accelerate launch` with two
processes on the CPU (gloo), checked against one process."""

import glob
import json
import math
import os
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.conftest import GLOVE, GLUE_DIR

TWO_PROCESSES = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                 "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "kdedge.cli"]
ONE_PROCESS = [sys.executable, "-m", "kdedge.cli"]
# Two processes see the same rows in another order and average gradients over twice the batch: the dev metric of
# a small run moves by a few points, not more.
METRIC_TOLERANCE = 0.1


def _run(launcher, args, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([*launcher, *args], capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    # a failure shows why: each rank's error lines, and the launcher's last lines (a rank killed by a signal, e.g. a
    # C++ abort in the process group, leaves no Python "Error" line)
    why = [l for l in proc.stderr.splitlines() if any(w in l for w in ("rank", "Error", "terminate", "what()"))]
    assert proc.returncode == 0, "\n".join(why)[-3000:] + "\n...\n" + proc.stderr[-2000:]
    return proc.stdout


def _written_once(out, stdout):
    assert stdout.count(" written to ") == 1, stdout  # one report, not one per process
    assert out.is_dir() and not out.with_name(out.name + ".partial").exists()
    leftovers = [p for p in out.rglob("*") if p.name.endswith(".tmp") or p.name.startswith("checkpoint")]
    assert leftovers == []


def _log_records(out):
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    keys = [(r.get("stage"), r["step"], "dev" in r) for r in records]
    assert len(keys) == len(set(keys)), "a log record was written by both processes"
    return records


@pytest.fixture(scope="module")
def data_args():
    if not (GLUE_DIR / "SST-2" / "train.tsv").is_file():
        pytest.skip(f"GLUE data not found under {GLUE_DIR}")
    return ["--task", "sst2", "--data-dir", str(GLUE_DIR), "--max-eval-samples", "200"]


def test_teacher_and_distillation_under_two_processes(tiny_teacher, data_args, tmp_path):
    if not GLOVE.is_file():
        pytest.skip(f"GloVe vectors not found at {GLOVE}")
    results = {}
    for name, launcher in (("one", ONE_PROCESS), ("two", TWO_PROCESSES)):
        teacher = tmp_path / f"teacher-{name}"
        stdout = _run(launcher, ["teacher", "--model", str(tiny_teacher), *data_args, "--max-train-samples", "200",
                                 "--epochs", "1", "--batch-size", "16", "--lr", "1e-3", "--save-steps", "3",
                                 "--out", str(teacher)], tmp_path)
        _written_once(teacher, stdout)
        _log_records(teacher)
        student = tmp_path / f"student-{name}"
        stdout = _run(launcher, ["distill", "--teacher", str(tiny_teacher), *data_args, "--max-train-samples", "400",
                                 "--word-vectors", str(GLOVE), "--lstm-hidden", "16", "--mlp-hidden", "16",
                                 "--lr", "1e-2", "--alpha", "1", "--epochs", "3", "--batch-size", "16",
                                 "--save-steps", "5", "--cache-dir", str(tmp_path / f"cache-{name}"),
                                 "--out", str(student)], tmp_path)
        _written_once(student, stdout)
        _log_records(student)
        results[name] = {kind: json.loads((folder / "metrics.json").read_text())
                         for kind, folder in (("teacher", teacher), ("student", student))}
    one, two = results["one"], results["two"]
    # each process takes half of every epoch's batches
    assert two["teacher"]["steps"] == math.ceil(200 / 32) and one["teacher"]["steps"] == math.ceil(200 / 16)
    assert two["student"]["steps"] == 3 * math.ceil(400 / 32) and one["student"]["steps"] == 3 * math.ceil(400 / 16)
    for kind in ("teacher", "student"):
        assert abs(one[kind]["dev"]["accuracy"] - two[kind]["dev"]["accuracy"]) <= METRIC_TOLERANCE, (kind, one, two)
    # the teacher's dev logits, computed by two processes over an uneven split, are those of one process
    assert one["student"]["teacher_dev"] == two["student"]["teacher_dev"]


def _rows(folder):
    import pandas as pd

    return pd.concat([pq.read_table(f).to_pandas() for f in sorted(glob.glob(f"{folder}/shard-*.parquet"))],
                     ignore_index=True)


def test_teacher_labelling_under_two_processes_is_complete_in_order_and_once(tiny_teacher, data_args, tmp_path):
    # 101 originals with batches of 16: the last batch is uneven, and the two processes get unequal shares
    args = ["augment", "--teacher", str(tiny_teacher), *data_args, "--max-train-samples", "101", "--method", "rules",
            "--variants", "2", "--shard-size", "50", "--batch-size", "16", "--tagger", "none"]
    for name, launcher in (("one", ONE_PROCESS), ("two", TWO_PROCESSES)):
        _written_once(tmp_path / name, _run(launcher, [*args, "--out", str(tmp_path / name)], tmp_path))
    one, two = _rows(tmp_path / "one"), _rows(tmp_path / "two")
    assert len(two) == len(one) and list(two.text) == list(one.text) and not two.text.duplicated().any()
    np.testing.assert_allclose(np.stack(two.logits), np.stack(one.logits), atol=1e-5)
    assert json.loads((tmp_path / "two" / "manifest.json").read_text())["metrics"]["rows"] == len(one)


def test_the_process_group_is_taken_down_before_the_interpreter_exits(tmp_path):
    """end_processes (run at exit once kdedge.processes is loaded): a no-op without a process group, and the group
    gone after it (one process over gloo)."""
    import torch.distributed as dist

    from kdedge.processes import end_processes

    end_processes()  # none yet: nothing to do
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    assert dist.is_initialized()
    end_processes()
    assert not dist.is_initialized()
