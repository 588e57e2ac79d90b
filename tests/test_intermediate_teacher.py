"""`kdedge distill --intermediate-teacher`: a second, smaller classifier (a teacher assistant) gives the student its
layers, tokenizer and intermediate-layer targets, while --teacher stays the source of the soft labels and the base of
the retention."""

import json

import numpy as np
import pytest

from kdedge.config import DataOptions, DistillConfig, build_config
from kdedge.data import compute_metrics, load_task_data
from kdedge.distill.run import distill_student
from kdedge.errors import KdedgeError
from kdedge.models.teacher import load_teacher, model_fingerprint
from kdedge.models.teacher_cache import compute_teacher_logits
from tests.conftest import build_tiny_bert


@pytest.fixture(scope="module")
def assistant(tmp_path_factory, glue_dir):
    """An SST-2 classifier of another layout than `tiny_teacher` (3 layers, 16 wide, its own 400-piece vocabulary)."""
    import torch
    from transformers import AutoConfig, BertForSequenceClassification

    data = load_task_data(DataOptions(task="sst2", data_dir=str(glue_dir), max_train_samples=1000))
    folder = build_tiny_bert(tmp_path_factory.mktemp("assistant"), data.train.text, 2,
                             label_names=("negative", "positive"), vocab_size=400)
    config = AutoConfig.from_pretrained(folder)
    config.update(dict(num_hidden_layers=3, hidden_size=16, num_attention_heads=2, intermediate_size=32))
    torch.manual_seed(1)
    BertForSequenceClassification(config).save_pretrained(folder)
    return folder


def _config(tmp_path, teacher, glue_dir, **kw) -> DistillConfig:
    base = dict(task="sst2", data_dir=str(glue_dir), teacher=str(teacher), out=str(tmp_path / "s"),
                max_train_samples=300, max_eval_samples=200, epochs=1, batch_size=32, seed=0, lr=1e-3,
                student="tinybert", layers=1, init="prune", prune_samples=64, cache_dir=str(tmp_path / "cache"))
    return build_config(DistillConfig, None, **{**base, **kw})


def test_the_student_comes_from_the_assistant_and_learns_the_teachers_logits(tiny_teacher, assistant, glue_dir,
                                                                             tmp_path):
    cfg = _config(tmp_path, tiny_teacher, glue_dir, intermediate_teacher=str(assistant), recipe="two-stage",
                  intermediate_epochs=1)
    out = distill_student(cfg)
    data = load_task_data(cfg)
    teacher, teacher_tokenizer = load_teacher(str(tiny_teacher), data.task)
    small, small_tokenizer = load_teacher(str(assistant), data.task)
    assert len(small_tokenizer) != len(teacher_tokenizer) and small.config.hidden_size != teacher.config.hidden_size

    # layers, width and vocabulary: the assistant's (3 layers of 16, 400 pieces), not the teacher's (2 of 32, 600)
    meta = json.loads((out / "student.json").read_text())
    assert meta["model"]["hidden"] == 16 and meta["pruned"]["layers"] == [3]
    config = json.loads((out / "config.json").read_text())
    assert config["hidden_size"] == 16 and config["vocab_size"] == len(small_tokenizer)
    assert json.loads((out / "tokenizer.json").read_text())["model"]["vocab"] == small_tokenizer.get_vocab()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["layer_mapping"] == ["student 1 <- teacher 3"]  # the assistant's top layer (the teacher has 2)
    assert [s["stage"] for s in json.loads((out / "metrics.json").read_text())["stages"]] == ["intermediate",
                                                                                              "prediction"]
    # both models are recorded; the soft labels and the retention are the teacher's
    inputs = manifest["inputs"]
    assert inputs["teacher"] == {"name": str(tiny_teacher), "sha256_weights": model_fingerprint(teacher)}
    assert inputs["intermediate_teacher"] == {"name": str(assistant), "sha256_weights": model_fingerprint(small)}
    soft_labels = np.load(inputs["teacher_logits_cache"])
    np.testing.assert_allclose(soft_labels, compute_teacher_logits(teacher, teacher_tokenizer, data.train,
                                                                   max_length=cfg.max_length, batch_size=64),
                               atol=1e-5)
    teacher_dev = compute_metrics(data.task, compute_teacher_logits(teacher, teacher_tokenizer, data.dev,
                                                                    max_length=cfg.max_length, batch_size=64),
                                  data.dev.labels)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["teacher_dev"] == pytest.approx(teacher_dev)
    assert metrics["retention"] == pytest.approx(metrics["dev"]["accuracy"] / teacher_dev["accuracy"])


def test_a_transfer_set_must_come_from_the_teacher_not_the_assistant(tiny_teacher, assistant, glue_dir, tmp_path):
    from tests.test_augment import _augment

    transfer = _augment(tmp_path, tiny_teacher, glue_dir, method="none")  # the training rows, labelled by the teacher
    out = distill_student(_config(tmp_path, tiny_teacher, glue_dir, transfer=str(transfer),
                                  intermediate_teacher=str(assistant)))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"]["train"]["source"] == str(transfer)
    assert json.loads((out / "config.json").read_text())["hidden_size"] == 16  # pruned from the assistant
    with pytest.raises(KdedgeError, match="was built for teacher weights .* \\(not --teacher's"):
        distill_student(_config(tmp_path / "swapped", assistant, glue_dir, transfer=str(transfer),
                                intermediate_teacher=str(tiny_teacher)))


@pytest.mark.parametrize("options, message", [
    (dict(student="bilstm", init="teacher-layers"), "--intermediate-teacher .* needs --student tinybert"),
    (dict(init="random", recipe="prediction"),
     "--intermediate-teacher has nothing to do with --init random and --recipe prediction: use --init prune"),
    (dict(recipe="general", unlabeled=("text.txt",)), "--intermediate-teacher is for a task's run; --recipe general"),
], ids=["bilstm", "nothing-to-do", "general"])
def test_intermediate_teacher_refuses_what_it_cannot_serve(options, message):
    cfg = build_config(DistillConfig, None, **{"teacher": "t", "out": "o", "student": "tinybert",
                                               "intermediate_teacher": "a", **options})
    with pytest.raises(KdedgeError, match=message) as error:
        distill_student(cfg)
    assert "\n" not in str(error.value)


def test_the_flag_reaches_distill_from_the_command_line(tiny_teacher, glue_dir, tmp_path):
    from click.testing import CliRunner

    from kdedge.cli import main

    result = CliRunner().invoke(main, ["distill", "--teacher", str(tiny_teacher), "--task", "sst2", "--data-dir",
                                       str(glue_dir), "--defaults", "built-in", "--student", "bilstm",
                                       "--intermediate-teacher", str(tiny_teacher), "--out", str(tmp_path / "s")])
    assert result.exit_code == 1 and "--intermediate-teacher gives a transformer student" in result.output, \
        result.output


def test_inspect_describes_the_assistants_layers(tiny_teacher, assistant):
    from click.testing import CliRunner

    from kdedge.cli import main

    result = CliRunner().invoke(main, ["inspect", "--teacher", str(tiny_teacher), "--intermediate-teacher",
                                       str(assistant), "--task", "sst2", "--student", "tinybert", "--layers", "1",
                                       "--init", "teacher-layers", "--recipe", "two-stage"])
    assert result.exit_code == 0, result.output
    assert f"intermediate teacher: {assistant} (3 layers, hidden 16, 2 heads)" in result.output
    assert "student: tinybert, 1 layers, hidden 16, 2 heads" in result.output
    assert "student 1 <- teacher 3" in result.output
