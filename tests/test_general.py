"""Task-agnostic distillation (`kdedge distill --recipe general`): the teacher's encoder distilled on plain text into
a folder that a task's run starts from with --init pretrained:DIR; and the activation importance it prunes by."""

import json

import pytest
import torch
from transformers import AutoModel

from kdedge.config import DistillConfig, build_config
from kdedge.data import get_glue_task
from kdedge.distill.run import distill_student
from kdedge.errors import KdedgeError
from kdedge.models.teacher import load_teacher
from kdedge.outputs import read_json
from kdedge.students.tinybert import build_tinybert
from tests.conftest import _distil_at, build_tiny_mpnet


def _sentences(glue_dir, n=600):
    lines = (glue_dir / "SST-2" / "train.tsv").read_text().splitlines()[1:n + 1]
    return [line.split("\t")[0] for line in lines]


def _general(tmp_path, teacher, text_file, **kw):
    base = dict(recipe="general", student="tinybert", teacher=str(teacher), unlabeled=(f"sst2={text_file}",),
                init="prune", layers=1, hidden=16, heads=1, intermediate=32, epochs=4, batch_size=16, lr=1e-3,
                max_length=64, seed=0, log_steps=5, out=str(tmp_path / "general"))
    base.update(kw)
    return distill_student(build_config(DistillConfig, None, **base))


def test_general_distillation_lowers_its_loss_and_writes_an_encoder_a_task_starts_from(tiny_teacher, glue_dir,
                                                                                        tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("\n".join(_sentences(glue_dir)) + "\n")
    out = _general(tmp_path, tiny_teacher, text)

    metrics = read_json(out / "metrics.json")
    assert metrics["held_out_loss"]["after"] < 0.8 * metrics["held_out_loss"]["before"]
    logged = [json.loads(line)["loss"] for line in (out / "train_log.jsonl").read_text().splitlines()
              if "loss" in json.loads(line)]
    assert len(logged) > 5 and sum(logged[-3:]) < sum(logged[:3])
    manifest = read_json(out / "manifest.json")
    assert manifest["student"]["pruned"]["layers"] and manifest["inputs"]["text"]["sst2"]["new_rows"] > 500
    encoder = AutoModel.from_pretrained(out)  # an encoder without a head, at the student's shape
    assert (encoder.config.num_hidden_layers, encoder.config.hidden_size) == (1, 16)

    task_student = _distil_at(tmp_path / "task", tiny_teacher, glue_dir, student="tinybert",
                              init=f"pretrained:{out}", epochs=1, max_train_samples=64, max_eval_samples=32)
    meta = read_json(task_student / "student.json")
    assert meta["pretrained"] == str(out) and meta["model"]["hidden"] == 16
    # a task's student built from it starts with the general student's encoder, weight for weight
    teacher, tokenizer = load_teacher(str(tiny_teacher), get_glue_task("sst2"))
    cfg = build_config(DistillConfig, None, teacher=str(tiny_teacher), out=str(tmp_path / "x"), student="tinybert",
                       init=f"pretrained:{out}")
    fresh = build_tinybert(cfg, get_glue_task("sst2"), teacher, tokenizer).model
    for name, value in encoder.state_dict().items():
        torch.testing.assert_close(fresh.base_model.state_dict()[name], value)


def test_general_prunes_by_activation_on_an_mpnet_teacher(glue_dir, tmp_path):
    texts = _sentences(glue_dir, 300)
    teacher = build_tiny_mpnet(tmp_path / "mpnet", texts)
    text = tmp_path / "text.txt"
    text.write_text("\n".join(texts) + "\n")
    out = _general(tmp_path, teacher, text, epochs=1, hidden=16, intermediate=32)
    assert AutoModel.from_pretrained(out).config.model_type == "mpnet"
    assert read_json(out / "manifest.json")["student"]["pruned"]["hidden"] == "16 of 32"


@pytest.mark.parametrize("change, message", [
    (dict(unlabeled=None), "--unlabeled text"),
    (dict(student="bilstm"), "--student tinybert"),
    (dict(trim_vocab=True), "no --qat, --trim-vocab"),
    (dict(recipe="two-stage", task="sst2"), "--unlabeled is the text of --recipe general"),
])
def test_general_refuses_what_it_cannot_do(tiny_teacher, tmp_path, change, message):
    text = tmp_path / "text.txt"
    text.write_text("a line\nanother line\n")
    with pytest.raises(KdedgeError, match=message):
        _general(tmp_path, tiny_teacher, text, **change)
    assert not (tmp_path / "general").exists()


def test_activation_importance_needs_no_gradient_and_ranks_by_magnitude():
    from transformers import BertConfig, BertForSequenceClassification

    from kdedge.compress.importance import measure_importance

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                                     num_attention_heads=2, intermediate_size=8))
    with torch.no_grad():  # neuron 3 of the feed-forward layer made loud, neuron 5 silent
        model.bert.encoder.layer[0].intermediate.dense.weight[3] *= 20
        model.bert.encoder.layer[0].intermediate.dense.bias[5] = -100
    batch = {"input_ids": torch.randint(1, 50, (4, 7)), "attention_mask": torch.ones(4, 7, dtype=torch.long)}
    scores = measure_importance(model, [batch], regression=False, criterion="activation")
    neurons = scores.neurons[0]
    assert int(neurons.argmax()) == 3 and float(neurons[5]) < 1e-3
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(KdedgeError, match="unknown importance criterion"):
        measure_importance(model, [batch], regression=False, criterion="magic")
