"""Transformer students: mappings, intermediate losses, inits and recipes on tiny models."""

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from kdedge.config import DistillConfig, build_config
from kdedge.data import get_glue_task
from kdedge.distill.hooks import AttentionScores
from kdedge.distill.intermediate import IntermediateDistiller, LossWeights
from kdedge.distill.losses import attention_kl, attention_mse, hidden_cosine, hidden_mse, soft_cross_entropy
from kdedge.errors import KdedgeError
from kdedge.students.mapping import resolve_mapping
from kdedge.students.tinybert import build_tinybert


def _teachers(n):
    return [p.teacher for p in n]


@pytest.mark.parametrize("name,n_t,n_s,expected", [
    ("uniform", 12, 4, [(3,), (6,), (9,), (12,)]),
    ("uniform", 6, 2, [(3,), (6,)]),
    ("uniform", 6, 3, [(2,), (4,), (6,)]),
    ("last", 12, 4, [(9,), (10,), (11,), (12,)]),
    ("last", 6, 2, [(5,), (6,)]),
    ("last", 6, 3, [(4,), (5,), (6,)]),
    ("mean", 12, 4, [(1, 2, 3), (4, 5, 6), (7, 8, 9), (10, 11, 12)]),
    ("mean", 6, 2, [(1, 2, 3), (4, 5, 6)]),
    ("mean", 6, 3, [(1, 2), (3, 4), (5, 6)]),
    ("learnable", 6, 3, [(1, 2), (3, 4), (5, 6)]),
])
def test_mappings_resolve_to_the_expected_layers(name, n_t, n_s, expected):
    pairs = resolve_mapping(name, n_t, n_s)
    assert [p.student for p in pairs] == list(range(1, n_s + 1))
    assert _teachers(pairs) == expected
    assert all(p.learnable for p in pairs) == (name == "learnable")


def test_explicit_mapping_and_its_errors():
    assert _teachers(resolve_mapping("explicit", 6, 3, [1, 3, 6])) == [(1,), (3,), (6,)]
    with pytest.raises(KdedgeError, match="needs --layer-map with 3"):
        resolve_mapping("explicit", 6, 3, [1, 2])
    with pytest.raises(KdedgeError, match="out of range 1..6"):
        resolve_mapping("explicit", 6, 2, [1, 7])
    with pytest.raises(KdedgeError, match="more layers"):
        resolve_mapping("uniform", 2, 4)


def _bert(layers=2, hidden=32, heads=2, seed=0, vocab=100, attn_implementation=None):
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=2 * hidden, max_position_embeddings=64, num_labels=2)
    if attn_implementation:
        config._attn_implementation = attn_implementation
    return BertForSequenceClassification(config).eval()


def _batch(lengths=(5, 3), width=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 100, (len(lengths), width), generator=g)
    mask = torch.zeros_like(ids)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    ids[mask == 0] = 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids),
            "labels": torch.tensor([0, 1][: len(lengths)]), "teacher_logits": torch.zeros(len(lengths), 2)}


def test_hooks_and_hidden_states_have_the_right_shapes():
    # eager attention returns its probabilities, so the hooked scores can be checked against them
    teacher = _bert(layers=4, hidden=48, heads=4, attn_implementation="eager")
    student = _bert(layers=2, hidden=32, heads=2, attn_implementation="eager")
    batch = _batch()
    for model, layers, hidden, heads in ((teacher, 4, 48, 4), (student, 2, 32, 2)):
        recorder = AttentionScores(model)
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True,
                    output_attentions=True)
        scores = recorder.scores()
        assert len(out.hidden_states) == layers + 1 and out.hidden_states[-1].shape == (2, 6, hidden)
        assert len(scores) == layers and scores[0].shape == (2, heads, 6, 6)
        # the recorded pre-softmax scores give back the model's own attention probabilities
        probs = torch.softmax(scores[0].masked_fill(batch["attention_mask"][:, None, None, :] == 0, -1e9), -1)
        torch.testing.assert_close(probs, out.attentions[0], atol=1e-5, rtol=1e-4)
        recorder.remove()


def test_mpnet_scores_include_its_relative_position_bias():
    from transformers import MPNetConfig, MPNetForSequenceClassification

    torch.manual_seed(0)
    model = MPNetForSequenceClassification(MPNetConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2,
                                                       num_attention_heads=2, intermediate_size=64, num_labels=2)).eval()
    with torch.no_grad():  # a visible bias: without it the scores below would not give MPNet's probabilities
        model.mpnet.encoder.relative_attention_bias.weight.normal_(0, 2.0)
    batch = _batch()
    recorder = AttentionScores(model)
    with torch.no_grad():
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_attentions=True)
    scores = recorder.scores()
    assert len(scores) == 2 and scores[0].shape == (2, 2, 6, 6)
    for layer in range(2):
        probs = torch.softmax(scores[layer].masked_fill(batch["attention_mask"][:, None, None, :] == 0, -1e9), -1)
        torch.testing.assert_close(probs, out.attentions[layer], atol=1e-5, rtol=1e-4)
    recorder.remove()


def test_hooked_scores_and_outputs_do_not_depend_on_the_attention_implementation():
    """eager and SDPA (the default in recent transformers) compute the same layers: the hooks on the query/key
    projections read the same scores, and the logits agree, whichever is active."""
    batch = _batch()
    results = []
    for implementation in ("eager", "sdpa"):
        model = _bert(layers=2, hidden=32, heads=2, attn_implementation=implementation)
        recorder = AttentionScores(model)
        with torch.no_grad():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        results.append((logits, recorder.scores()))
        recorder.remove()
    (eager_logits, eager_scores), (sdpa_logits, sdpa_scores) = results
    torch.testing.assert_close(sdpa_logits, eager_logits, atol=1e-5, rtol=1e-4)
    for a, b in zip(sdpa_scores, eager_scores):
        torch.testing.assert_close(a, b)


def test_attention_losses_ignore_padding():
    torch.manual_seed(0)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    s, t = torch.randn(2, 2, 4, 4), torch.randn(2, 2, 4, 4)
    for loss in (attention_mse, attention_kl):
        base = loss(s, t, mask)
        s2, t2 = s.clone(), t.clone()
        s2[0, :, 3, :] = 50.0  # a padded query row
        s2[1, :, :, 2:] = -30.0  # padded key columns
        t2[1, :, 3, 3] = 99.0
        torch.testing.assert_close(loss(s2, t2, mask), base)
        s3 = s.clone()
        s3[0, 0, 0, 1] += 1.0  # a real position does count
        assert not torch.isclose(loss(s3, t, mask), base)
    for loss in (hidden_mse, hidden_cosine):
        h_s, h_t = torch.randn(2, 4, 8), torch.randn(2, 4, 8)
        base = loss(h_s, h_t, mask)
        h_s[1, 2:] = 7.0
        torch.testing.assert_close(loss(h_s, h_t, mask), base)


def test_soft_cross_entropy_matches_kl_up_to_the_teacher_entropy():
    from kdedge.distill.losses import kl_with_t2

    s, t = torch.randn(3, 4), torch.randn(3, 4)
    p = torch.softmax(t / 2.0, -1)
    entropy = -(p * p.log()).sum(-1).mean() * 4.0
    torch.testing.assert_close(soft_cross_entropy(s, t, 2.0), kl_with_t2(s, t, 2.0) + entropy, atol=1e-5, rtol=1e-5)


def test_projection_makes_hidden_loss_zero_for_a_student_that_copies_a_projected_teacher():
    teacher, student = _bert(layers=2, hidden=48, heads=4), _bert(layers=2, hidden=32, heads=2)
    pairs = resolve_mapping("uniform", 2, 2)
    d = IntermediateDistiller(student, teacher, pairs, LossWeights(emb=1, hid=1, att=0))
    assert isinstance(d.projection, torch.nn.Linear) and d.projection.weight.shape == (48, 32)
    batch = _batch()
    with torch.no_grad():
        s_h = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                      output_hidden_states=True).hidden_states
        target = [d.projection(h) for h in s_h]
    # Feed the loss a teacher whose states are exactly the projected student's.
    mask = batch["attention_mask"]
    for h, t in zip(s_h, target):
        assert d.hidden_loss(d.projection(h), t, mask).item() == pytest.approx(0.0, abs=1e-10)
    loss, parts = d(batch)
    assert parts["hid"] > 0 and set(parts) == {"emb", "hid"}


def test_learnable_mapping_weights_get_gradients_and_start_as_the_mean():
    teacher, student = _bert(layers=4, hidden=32, heads=2), _bert(layers=2, hidden=32, heads=2, seed=3)
    d = IntermediateDistiller(student, teacher, resolve_mapping("learnable", 4, 2), LossWeights(emb=0, hid=1, att=1))
    assert len(d.mapping_logits) == 2
    torch.testing.assert_close(d.block_weights(d.pairs[0], "cpu"), torch.tensor([0.5, 0.5]))
    loss, _ = d(_batch())
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in d.mapping_logits)
    assert all(p.grad is None for p in d.teacher.parameters())


def _cfg(**kw):
    base = dict(out="x", teacher="t", task="sst2", student="tinybert", layers=2)
    base.update(kw)
    return build_config(DistillConfig, None, **base)


def _hidden(layer_output):
    """A BERT layer's hidden states: transformers 4 returns a tuple, 5 the tensor."""
    return layer_output[0] if isinstance(layer_output, tuple) else layer_output


def test_teacher_layers_init_reproduces_the_teacher_layers():
    teacher = _bert(layers=4, hidden=32, heads=2)
    task = get_glue_task("sst2")
    student = build_tinybert(_cfg(init="teacher-layers", init_layers="2,4"), task, teacher, _FakeTok()).model.eval()
    batch = _batch()
    kw = dict(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True)
    with torch.no_grad():
        t_h, s_h = teacher(**kw).hidden_states, student(**kw).hidden_states
    torch.testing.assert_close(s_h[0], t_h[0])  # same embeddings
    # BERT's additive mask (padding -> the most negative float), built here: transformers 5 dropped the helper
    ext = (1.0 - batch["attention_mask"][:, None, None, :].float()) * torch.finfo(torch.float32).min
    with torch.no_grad():
        for s_layer, t_layer in ((0, 2), (1, 4)):  # each copied layer maps the same input to the same output
            x = t_h[t_layer - 1]
            expected = _hidden(teacher.bert.encoder.layer[t_layer - 1](x, attention_mask=ext))
            got = _hidden(student.bert.encoder.layer[s_layer](x, attention_mask=ext))
            torch.testing.assert_close(got, expected)
    full = build_tinybert(_cfg(init="teacher-layers", layers=4), task, teacher, _FakeTok()).model.eval()
    with torch.no_grad():
        for a, b in zip(full(**kw).hidden_states, t_h):  # copying every layer reproduces the whole encoder
            torch.testing.assert_close(a, b)
    with pytest.raises(KdedgeError, match="teacher's widths"):
        build_tinybert(_cfg(init="teacher-layers", hidden=16, heads=2), task, teacher, _FakeTok())


def test_pretrained_student_with_another_vocabulary_needs_prediction_recipe(tmp_path):
    from tests.conftest import build_tiny_bert

    task = get_glue_task("sst2")
    other = build_tiny_bert(tmp_path / "other", ["completely different words here"] * 5, 2,
                            label_names=("negative", "positive"))
    teacher = _bert(layers=2)
    with pytest.raises(KdedgeError, match="--recipe prediction"):
        build_tinybert(_cfg(init=f"pretrained:{other}", recipe="two-stage"), task, teacher, _FakeTok())
    student = build_tinybert(_cfg(init=f"pretrained:{other}", recipe="prediction"), task, teacher, _FakeTok())
    assert student.meta["pretrained"] == str(other) and student.tokenizer.get_vocab() != _FakeTok().get_vocab()


class _FakeTok:
    """Stands in for the teacher tokenizer where only the vocabulary matters."""

    def get_vocab(self):
        return {f"w{i}": i for i in range(100)}

    def __len__(self):
        return 100


def _losses(out, stage):
    import json

    lines = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    return [r["loss"] for r in lines if r.get("stage") == stage and "loss" in r]


def test_two_stage_run_lowers_both_stage_losses(tiny_teacher, glue_dir, tmp_path):
    from kdedge.distill.run import distill_student
    from kdedge.models.students import load_student
    from kdedge.outputs import read_json

    cfg = build_config(DistillConfig, None, task="sst2", data_dir=str(glue_dir), teacher=str(tiny_teacher),
                       out=str(tmp_path / "s"), student="tinybert", layers=1, init="random", hidden=16, heads=2,
                       recipe="two-stage", intermediate_epochs=3, epochs=3, lr=3e-3, max_train_samples=200,
                       max_eval_samples=64, batch_size=16, log_steps=3, mapping="uniform", seed=1)
    out = distill_student(cfg)
    for stage in ("intermediate", "prediction"):
        losses = _losses(out, stage)
        assert len(losses) >= 10, stage
        assert sum(losses[-3:]) < 0.7 * sum(losses[:3]), (stage, losses)
    metrics, manifest = read_json(out / "metrics.json"), read_json(out / "manifest.json")
    assert [s["stage"] for s in metrics["stages"]] == ["intermediate", "prediction"]
    assert manifest["layer_mapping"] == ["student 1 <- teacher 2"]
    assert not any(p.name.startswith(("stage-", "checkpoint")) for p in out.iterdir())
    student = load_student(out)  # an ordinary HF folder plus student.json
    assert student.model.config.num_hidden_layers == 1 and (out / "config.json").is_file()


def test_intermediate_samples_sizes_only_the_intermediate_stage(tiny_teacher, glue_dir, tmp_path):
    from kdedge.distill.run import distill_student
    from kdedge.outputs import read_json

    kw = dict(task="sst2", data_dir=str(glue_dir), teacher=str(tiny_teacher), student="tinybert", layers=1,
              init="random", hidden=16, heads=2, max_train_samples=96, max_eval_samples=16, batch_size=16, seed=1)
    cfg = build_config(DistillConfig, None, out=str(tmp_path / "s"), recipe="two-stage", intermediate_epochs=2,
                       intermediate_samples=32, epochs=1, **kw)
    stages = read_json(distill_student(cfg) / "metrics.json")["stages"]
    assert [(s["stage"], s["steps"]) for s in stages] == [("intermediate", 2 * 32 // 16), ("prediction", 96 // 16)]
    with pytest.raises(KdedgeError, match="--intermediate-samples sizes the intermediate stage"):
        distill_student(build_config(DistillConfig, None, out=str(tmp_path / "j"), recipe="joint",
                                     intermediate_samples=32, **kw))
    with pytest.raises(KdedgeError, match="--max-vocab caps a word-level vocabulary"):
        distill_student(build_config(DistillConfig, None, out=str(tmp_path / "v"), max_vocab=100, **kw))


def test_joint_recipe_on_a_pair_regression_task(tiny_pair_teacher, glue_dir, tmp_path):
    from kdedge.distill.run import distill_student
    from kdedge.outputs import read_json

    cfg = build_config(DistillConfig, None, task="stsb", data_dir=str(glue_dir), teacher=str(tiny_pair_teacher),
                       out=str(tmp_path / "s"), student="tinybert", layers=1, init="teacher-layers",
                       recipe="joint", mapping="learnable", attention_loss="kl", hidden_loss="cosine", epochs=1,
                       max_train_samples=100, max_eval_samples=50, batch_size=16,
                       temperature=4.0, temperature_end=1.0, alpha=0.5, alpha_end=0.0)
    out = distill_student(cfg)
    assert set(read_json(out / "metrics.json")["dev"]) == {"pearson", "spearmanr"}
    assert read_json(out / "student.json")["teacher_layers"] == [2]


def test_intermediate_recipes_need_a_transformer_student(tiny_teacher, glue_dir, tmp_path):
    from kdedge.distill.run import distill_student

    cfg = build_config(DistillConfig, None, task="sst2", data_dir=str(glue_dir), teacher=str(tiny_teacher),
                       out=str(tmp_path / "s"), recipe="two-stage")
    with pytest.raises(KdedgeError, match="needs --student tinybert"):
        distill_student(cfg)


def test_inspect_prints_pairs_and_terms(tiny_teacher):
    from click.testing import CliRunner

    from kdedge.cli import main

    result = CliRunner().invoke(main, ["inspect", "--teacher", str(tiny_teacher), "--task", "sst2", "--student",
                                       "tinybert", "--layers", "1", "--hidden", "16", "--init", "random",
                                       "--mapping", "mean", "--recipe", "two-stage", "--rep-ratio", "0.25"])
    assert result.exit_code == 0, result.output
    assert "student 1 <- mean of teacher 1, 2" in result.output
    assert "0.5 x hidden mse over 1 layer pair(s) (through a learned 16->32 projection)" in result.output
    assert "1.5 x attention mse over 1 layer pair(s), per head" in result.output


@pytest.mark.parametrize("args, message", [
    (["--layers", "1", "--hidden", "30", "--heads", "4", "--init", "random"],
     "--hidden 30 is not divisible by --heads 4"),
    (["--layers", "1", "--hidden", "16"], "--init teacher-layers copies teacher layers, so the student must have the teacher's widths"),
    (["--layers", "3"], "the student has more layers (3) than the teacher (2)"),
])
def test_inspect_refuses_shapes_that_distill_cannot_build(tiny_teacher, args, message):
    from click.testing import CliRunner

    from kdedge.cli import main

    result = CliRunner().invoke(main, ["inspect", "--teacher", str(tiny_teacher), "--task", "sst2", "--student",
                                       "tinybert", *args])
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output
    assert "student:" not in result.output  # no plan printed for a student that cannot be built


def test_two_stage_resumes_in_the_second_stage(tiny_teacher, glue_dir, tmp_path, monkeypatch):
    import numpy as np
    from safetensors.numpy import load_file

    from kdedge.distill import run as distill_run

    def cfg(out, **kw):
        return build_config(DistillConfig, None, task="sst2", data_dir=str(glue_dir), teacher=str(tiny_teacher),
                            out=str(out), student="tinybert", layers=1, init="random", hidden=16, heads=2,
                            recipe="two-stage", intermediate_epochs=1, epochs=2, lr=3e-3, max_train_samples=96,
                            max_eval_samples=32, batch_size=16, save_steps=4, seed=5, **kw)

    reference = distill_run.distill_student(cfg(tmp_path / "ref"))
    calls = {"n": 0}
    original = distill_run.PredictionDistillLoss.__call__

    def crashing(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 7:  # prediction stage, step 7 (checkpoint after step 4)
            raise RuntimeError("killed")
        return original(self, *a, **k)

    monkeypatch.setattr(distill_run.PredictionDistillLoss, "__call__", crashing)
    with pytest.raises(RuntimeError, match="killed"):
        distill_run.distill_student(cfg(tmp_path / "res"))
    partial = tmp_path / "res.partial"
    assert (partial / "stage-intermediate" / "done").exists() and (partial / "checkpoint-prediction").is_dir()
    calls["n"] = -10**9
    resumed = distill_run.distill_student(cfg(tmp_path / "res", resume=True))
    a, b = load_file(reference / "model.safetensors"), load_file(resumed / "model.safetensors")
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=0, atol=1e-6)
