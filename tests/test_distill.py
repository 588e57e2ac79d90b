import json

import numpy as np
import pytest
import torch

from kdedge.config import DataOptions, DistillConfig, build_config
from kdedge.data import compute_metrics, load_task_data
from kdedge.data.batching import encode
from kdedge.distill.run import distill_student
from kdedge.errors import KdedgeError
from kdedge.models import teacher_cache
from kdedge.models.students import load_student, save_student
from kdedge.models.teacher import load_teacher
from kdedge.outputs import read_json
from kdedge.training import eval_loader, predict_logits


def test_cached_teacher_logits_are_reused(tiny_teacher, glue_dir, tmp_path, monkeypatch):
    data = load_task_data(DataOptions(task="sst2", data_dir=str(glue_dir), max_train_samples=100))
    teacher, tok = load_teacher(str(tiny_teacher), data.task)
    first, path = teacher_cache.teacher_logits(teacher, tok, data.train, max_length=64, batch_size=32)
    assert first.shape == (100, 2) and path.is_file()

    def must_not_run(*a, **k):
        raise AssertionError("teacher ran again")

    monkeypatch.setattr(teacher_cache, "predict_logits", must_not_run)
    again, again_path = teacher_cache.teacher_logits(teacher, tok, data.train, max_length=64, batch_size=32)
    assert again_path == path
    np.testing.assert_array_equal(first, again)
    with pytest.raises(AssertionError, match="teacher ran again"):  # other data: another key
        teacher_cache.teacher_logits(teacher, tok, data.dev, max_length=64, batch_size=32)
    # and the cached values are the teacher's own outputs, in the original row order
    with torch.no_grad():
        enc = tok(data.train.text[:3], padding=True, return_tensors="pt")
        direct = teacher(**enc).logits.numpy()
    np.testing.assert_allclose(first[:3], direct, atol=1e-5)


def test_label_mismatch_is_refused(tiny_teacher, glue_dir):
    data = load_task_data(DataOptions(task="cola", data_dir=str(glue_dir), max_train_samples=10))
    with pytest.raises(KdedgeError, match=r"predicts labels \['negative', 'positive'\] but task 'cola'"):
        load_teacher(str(tiny_teacher), data.task)
    data = load_task_data(DataOptions(task="stsb", data_dir=str(glue_dir), max_train_samples=10))
    with pytest.raises(KdedgeError, match="has 2 output"):
        load_teacher(str(tiny_teacher), data.task)


@pytest.mark.parametrize("vectors", [True, False], ids=["glove", "wordpiece"])
def test_student_reloads_on_its_own_and_predicts_the_same(tiny_teacher, glue_dir, glove_path, tmp_path, vectors):
    cfg = build_config(DistillConfig, None, task="sst2", data_dir=str(glue_dir), teacher=str(tiny_teacher),
                       out=str(tmp_path / "s"), max_train_samples=200, max_eval_samples=100, epochs=1,
                       lstm_hidden=8, mlp_hidden=8, word_vectors=str(glove_path) if vectors else None)
    out = distill_student(cfg)
    student = load_student(out)
    meta = read_json(out / "student.json")
    assert meta["embeddings"]["kind"] == ("word" if vectors else "wordpiece")
    if vectors:
        assert meta["model"]["embedding_dim"] == 100 and meta["embeddings"]["coverage"] > 0.9
    data = load_task_data(cfg)
    features = encode(student.tokenizer, data.dev, cfg.max_length, add_special_tokens=student.add_special_tokens)
    loader, order = eval_loader(features, 32, student.tokenizer.pad_token_id)
    logits = predict_logits(student.model, loader, order, student.logits)
    assert compute_metrics(data.task, logits, data.dev.labels) == read_json(out / "metrics.json")["dev"]
    # a second save/load round trip gives bit-identical logits
    save_student(student, tmp_path / "copy")
    again = load_student(tmp_path / "copy")
    np.testing.assert_array_equal(
        predict_logits(again.model, loader, order, again.logits), logits)


def test_pair_regression_task_distils_with_a_siamese_student(tiny_pair_teacher, glue_dir, tmp_path):
    cfg = build_config(DistillConfig, None, task="stsb", data_dir=str(glue_dir), teacher=str(tiny_pair_teacher),
                       out=str(tmp_path / "s"), max_train_samples=150, max_eval_samples=60, epochs=1,
                       lstm_hidden=8, mlp_hidden=8, alpha=0.5)
    out = distill_student(cfg)
    metrics = read_json(out / "metrics.json")
    assert set(metrics["dev"]) == {"pearson", "spearmanr"}
    student = load_student(out)
    assert student.siamese and student.model.classifier[0].in_features == 4 * 2 * 8


def test_epochs_zero_skips_the_intermediate_stage_too():
    from kdedge.config import DistillConfig, build_config
    from kdedge.distill.run import plan_stages

    base = dict(teacher="t", out="o", student="tinybert", recipe="two-stage", intermediate_epochs=2, epochs=3,
                lr=1e-4)
    stages = {s.name: s.epochs for s in plan_stages(build_config(DistillConfig, None, **base))}
    assert stages == {"intermediate": 2, "prediction": 3}
    stages = {s.name: s.epochs for s in plan_stages(build_config(DistillConfig, None, **{**base, "epochs": 0},
                                                                 qat=True, qat_epochs=1))}
    assert stages == {"intermediate": 0, "prediction": 0, "qat": 1}


def test_qat_keeps_the_student_it_started_from_when_no_step_beats_it(tiny_teacher, glue_dir, tmp_path):
    from tests.conftest import _distil_at

    # a QAT learning rate too small to move the student: no later evaluation can beat (only tie) the start
    student_dir = _distil_at(tmp_path, tiny_teacher, glue_dir, student="tinybert", layers=1, init="teacher-layers",
                             lr=1e-3, epochs=1, qat=True, qat_epochs=1, qat_lr=1e-12)
    evals = [r for r in map(json.loads, (student_dir / "train_log.jsonl").read_text().splitlines())
             if r["stage"] == "qat" and "dev" in r]
    start, later = evals[0], evals[1:]
    assert start["step"] == 0 and start["best"] and later  # scored fake-quantized before the first step
    assert all(r["dev"] == start["dev"] and not r["best"] for r in later)
    metrics = read_json(student_dir / "metrics.json")
    assert metrics["best_step"] == 0 and metrics["dev"] == start["dev"]
    assert read_json(student_dir / "student.json")["qat"]  # the kept student is the fake-quantized one
