"""Structured pruning (`--init prune`): importance on real SST-2 rows, planted useless parts ranked last, nothing
pruned keeps the teacher's function, and the distill stage builds and trains a pruned student."""

import json

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from kdedge.compress.importance import measure_importance
from kdedge.compress.prune import plan_pruning, prune_classifier
from kdedge.config import DataOptions, DistillConfig, build_config
from kdedge.data import load_task_data
from kdedge.students.tinybert import importance_batches


@pytest.fixture(scope="module")
def teacher_and_batches(tiny_teacher, glue_dir):
    model = AutoModelForSequenceClassification.from_pretrained(tiny_teacher).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_teacher)
    train = load_task_data(DataOptions(task="sst2", data_dir=str(glue_dir), max_train_samples=300)).train
    cfg = build_config(DistillConfig, None, teacher=str(tiny_teacher), out="-", prune_samples=96)
    return model, list(importance_batches(cfg, tokenizer, train))


def _logits(model, batches):
    with torch.no_grad():
        return torch.cat([model(input_ids=b["input_ids"], attention_mask=b["attention_mask"],
                                token_type_ids=b["token_type_ids"]).logits for b in batches])


def test_keeping_everything_keeps_the_teachers_logits(teacher_and_batches):
    model, batches = teacher_and_batches
    c = model.config
    importance = measure_importance(model, batches, regression=False)
    assert importance.examples == 96 and (importance.heads > 0).all() and (importance.neurons > 0).any()
    keep = plan_pruning(importance, c, list(range(1, c.num_hidden_layers + 1)), c.hidden_size,
                        c.num_attention_heads, c.intermediate_size)
    student = prune_classifier(model, keep).eval()
    assert torch.equal(_logits(student, batches), _logits(model, batches))


def _other_architecture(kind: str, bert):
    """A tiny RoBERTa or MPNet classifier of the BERT teacher's sizes and vocabulary, random weights."""
    from transformers import MPNetConfig, RobertaConfig

    c = bert.config
    sizes = dict(vocab_size=c.vocab_size, hidden_size=c.hidden_size, num_hidden_layers=c.num_hidden_layers,
                 num_attention_heads=c.num_attention_heads, intermediate_size=c.intermediate_size, num_labels=2,
                 pad_token_id=0)
    config = RobertaConfig(max_position_embeddings=c.max_position_embeddings + 2, type_vocab_size=1, **sizes) \
        if kind == "roberta" else MPNetConfig(max_position_embeddings=c.max_position_embeddings + 2, **sizes)
    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_config(config).eval()


@pytest.mark.parametrize("kind", ["roberta", "mpnet"])
def test_other_layouts_prune_too_and_mpnet_keeps_the_same_heads_everywhere(kind, teacher_and_batches):
    bert, batches = teacher_and_batches
    model = _other_architecture(kind, bert)
    batches = [{k: v for k, v in b.items() if k != "token_type_ids"} for b in batches]
    c = model.config
    importance = measure_importance(model, batches, regression=False)
    assert (importance.heads > 0).all() and (importance.neurons > 0).any()
    everything = plan_pruning(importance, c, list(range(1, c.num_hidden_layers + 1)), c.hidden_size,
                              c.num_attention_heads, c.intermediate_size)
    student = prune_classifier(model, everything).eval()

    def logits(m):
        with torch.no_grad():
            return torch.cat([m(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits for b in batches])

    assert torch.equal(logits(student), logits(model))  # head (dense + projection) and MPNet's bias table included
    # layer 1 prefers head 1, layer 2 head 2 (head 2 more strongly): per layer for RoBERTa; one head for both in
    # MPNet, whose bias table is shared
    importance.heads = torch.tensor([[2.0, 1.0], [0.0, 5.0]])
    keep = plan_pruning(importance, c, [1, 2], 16, 1, 16)
    assert keep.heads == ([[1], [1]] if kind == "mpnet" else [[0], [1]])
    smaller = prune_classifier(model, keep).eval()
    assert smaller.config.num_attention_heads == 1 and torch.isfinite(logits(smaller)).all()


def test_planted_useless_head_neuron_and_channel_are_ranked_last(teacher_and_batches):
    model, batches = teacher_and_batches
    planted = AutoModelForSequenceClassification.from_config(model.config)
    planted.load_state_dict(model.state_dict())
    planted.eval()
    c, head_dim = model.config, model.config.hidden_size // model.config.num_attention_heads
    layer = planted.bert.encoder.layer[1]
    with torch.no_grad():
        layer.attention.self.value.weight[0:head_dim] = 0  # head 1 of layer 2 outputs nothing
        layer.attention.self.value.bias[0:head_dim] = 0
        layer.output.dense.weight[:, 7] = 0  # neuron 8 of layer 2 feeds nothing
    importance = measure_importance(planted, batches, regression=False)
    assert importance.heads[1].argmin() == 0 and importance.heads[1, 0] == 0 < importance.heads[1, 1]
    assert importance.neurons[1].argmin() == 7 and importance.neurons[1, 7] == 0
    keep = plan_pruning(importance, c, [1, 2], c.hidden_size, c.num_attention_heads - 1, c.intermediate_size - 1)
    assert keep.heads[1] == [1] and 7 not in keep.neurons[1].tolist()
    # a narrower student: half the heads' width and a third of the hidden channels gone, still a working model
    keep = plan_pruning(importance, c, [2], 20, 2, 16)
    student = prune_classifier(planted, keep).eval()
    assert (student.config.hidden_size, student.config.num_attention_heads, student.config.intermediate_size,
            student.config.num_hidden_layers) == (20, 2, 16, 1)
    assert keep.head_dim == 10 and len(keep.qkv_rows[0]) == 20 and torch.isfinite(_logits(student, batches)).all()


def test_measuring_importance_leaves_no_activation_alive(teacher_and_batches):
    """The gradient hooks must not keep the batches' activations: a cycle through autograd leaked ~1.5 GB a
    `kdedge tune` trial (the process was killed for memory after 18 trials)."""
    import gc

    model, batches = teacher_and_batches

    def live_tensors() -> int:
        gc.collect()
        return sum(isinstance(o, torch.Tensor) for o in gc.get_objects())

    measure_importance(model, batches, regression=False)  # first use: lazily built state, not a leak
    before = live_tensors()
    importance = measure_importance(model, batches, regression=False)
    assert live_tensors() - before <= 5  # the five score tensors it returns
    assert importance.examples == 96


def test_importance_is_measured_once_per_teacher_sample_and_criterion(teacher_and_batches, tmp_path, monkeypatch):
    """A resumed run, another `kdedge tune` trial or `distill` after `inspect` reuses the scores on disk; another
    sample or criterion measures anew, and so does a damaged entry or one of another model's shape."""
    import copy

    import kdedge.students.tinybert as tinybert
    from kdedge.compress.importance import Importance

    model, batches = teacher_and_batches
    measured = []
    monkeypatch.setattr(tinybert, "measure_importance",
                        lambda *a, **k: measured.append(a[2:]) or measure_importance(*a, **k))
    first = tinybert.cached_importance(model, batches, False, "taylor", tmp_path)
    (entry,) = (tmp_path / "importance").iterdir()
    again = tinybert.cached_importance(model, batches, False, "taylor", tmp_path)
    assert len(measured) == 1 and again.examples == first.examples == 96
    for name in ("heads", "head_dims", "neurons", "hidden", "layers"):
        assert torch.equal(getattr(again, name), getattr(first, name)), name
    tinybert.cached_importance(model, batches[:-1], False, "taylor", tmp_path)
    tinybert.cached_importance(model, batches, False, "activation", tmp_path)
    assert len(measured) == 3 and len(list((tmp_path / "importance").iterdir())) == 3

    deeper = copy.deepcopy(model.config)
    deeper.num_hidden_layers += 1
    assert Importance.load(entry, deeper) is None
    entry.write_bytes(entry.read_bytes()[:100])  # cut short, as by a full disk
    assert Importance.load(entry, model.config) is None
    tinybert.cached_importance(model, batches, False, "taylor", tmp_path)
    assert len(measured) == 4 and Importance.load(entry, model.config) is not None  # measured and written again


def test_distill_with_a_pruned_init(tiny_teacher, glue_dir, tmp_path):
    from tests.conftest import _distil_at

    out = _distil_at(tmp_path, tiny_teacher, glue_dir, student="tinybert", init="prune", layers=1, hidden=16,
                     intermediate=32, recipe="two-stage", intermediate_epochs=1, epochs=1, lr=1e-3, prune_samples=64)
    meta = json.loads((out / "student.json").read_text())
    assert meta["model"] == {"layers": 1, "hidden": 16, "heads": 1, "intermediate": 32}  # heads keep their width
    pruned = meta["pruned"]
    assert pruned["layers"] == [2] and pruned["hidden"] == "16 of 32" and pruned["importance"]["examples"] == 64
    assert 0.0 <= json.loads((out / "metrics.json").read_text())["dev"]["accuracy"] <= 1.0


def test_distill_a_pruned_mpnet_student_with_every_intermediate_loss(glue_dir, tmp_path):
    from tests.conftest import _distil_at, build_tiny_mpnet

    train = load_task_data(DataOptions(task="sst2", data_dir=str(glue_dir), max_train_samples=2000)).train
    teacher = build_tiny_mpnet(tmp_path / "teacher", train.text)
    out = _distil_at(tmp_path, teacher, glue_dir, student="tinybert", init="prune", layers=1, hidden=16, heads=1,
                     intermediate=32, recipe="two-stage", intermediate_epochs=1, epochs=1, lr=1e-3, prune_samples=64)
    meta = json.loads((out / "student.json").read_text())
    assert meta["model"] == {"layers": 1, "hidden": 16, "heads": 1, "intermediate": 32}
    stages = json.loads((out / "metrics.json").read_text())["stages"]
    assert [s["stage"] for s in stages] == ["intermediate", "prediction"]
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "mpnet"


@pytest.mark.parametrize("args, message", [
    (["--hidden", "64"], "cannot be wider than it: hidden 64 of 32"),
    (["--hidden", "32", "--heads", "1"], "makes heads 32 wide, wider than the teacher's 16: use at least 2 heads"),
])
def test_prune_refuses_shapes_it_cannot_cut_from_the_teacher(tiny_teacher, args, message):
    from click.testing import CliRunner

    from kdedge.cli import main

    result = CliRunner().invoke(main, ["inspect", "--teacher", str(tiny_teacher), "--task", "sst2", "--student",
                                       "tinybert", "--layers", "1", "--init", "prune", *args])
    assert result.exit_code == 1 and message in result.output, result.output


@pytest.mark.parametrize("hidden, head_dim, heads", [
    (224, 32, 7),  # all-MiniLM-L6-v2 as the assistant: its head width kept
    (256, 64, 4),  # MPNet/BERT-base: the same
    (224, 64, 4),  # 224 is no multiple of 64: the fewest heads that divide it, each 56 wide
    (24, 16, 2),   # narrower than two teacher heads: 2 of 12, where one head would be wider than the teacher's
    (8, 16, 1),
])
def test_a_pruned_student_gets_the_fewest_heads_no_wider_than_the_teachers(hidden, head_dim, heads):
    from types import SimpleNamespace

    from kdedge.students.tinybert import student_shape

    teacher = SimpleNamespace(hidden_size=12 * head_dim, num_attention_heads=12, intermediate_size=4 * 12 * head_dim)
    cfg = SimpleNamespace(hidden=hidden, heads=None, intermediate=None)
    assert student_shape(cfg, teacher, pruned=True) == (hidden, heads, 4 * hidden)


def test_a_shape_that_is_no_multiple_of_the_head_width_prunes_to_narrower_heads(tiny_teacher, glue_dir):
    from click.testing import CliRunner

    from kdedge.cli import main

    result = CliRunner().invoke(main, ["inspect", "--teacher", str(tiny_teacher), "--task", "sst2", "--student",
                                       "tinybert", "--layers", "1", "--init", "prune", "--hidden", "24",
                                       "--data-dir", str(glue_dir)])  # pruning ranks the parts on training rows
    assert result.exit_code == 0, result.output
    assert "hidden 24, 2 heads, init prune" in result.output and "heads 12 of 16 wide" in result.output, result.output


def test_trimming_keeps_the_logits_of_text_whose_tokens_are_kept(tiny_tinybert_student, glue_dir):
    from kdedge.compress.vocab import count_tokens, trim_embeddings, trim_vocabulary
    from kdedge.models.students import load_student

    student = load_student(tiny_tinybert_student)
    texts = load_task_data(DataOptions(task="sst2", data_dir=str(glue_dir), max_train_samples=200)).train.text
    original = len(student.tokenizer)
    trimmed = trim_vocabulary(student.tokenizer, count_tokens(student.tokenizer, texts))
    assert 0 < len(trimmed.kept_ids) < original and len(trimmed.tokenizer) == len(trimmed.kept_ids)
    before = student.tokenizer(texts[:50], padding=True, return_tensors="pt")
    after = trimmed.tokenizer(texts[:50], padding=True, return_tensors="pt")
    # the same pieces, renumbered; the special tokens (CLS, SEP, PAD) too
    assert torch.equal(trimmed.kept_ids[after["input_ids"]], before["input_ids"])
    assert trimmed.tokenizer.convert_ids_to_tokens(after["input_ids"][0].tolist()) == \
        student.tokenizer.convert_ids_to_tokens(before["input_ids"][0].tolist())
    with torch.no_grad():
        expected = student.model(**before).logits
        trim_embeddings(student.model, trimmed.kept_ids)
        assert torch.equal(student.model(**after).logits, expected)
    assert student.model.config.vocab_size == len(trimmed.kept_ids)
    # a word whose piece was dropped is spelled with the kept pieces instead (WordPiece's longest match first)
    kept = set(trimmed.kept_ids.tolist())
    dropped = next(t for t, i in sorted(student.tokenizer.get_vocab().items(), key=lambda kv: kv[1])
                   if i not in kept and t.isalpha() and len(t) > 2)
    assert student.tokenizer.tokenize(dropped) == [dropped]
    respelled = trimmed.tokenizer.tokenize(dropped)
    assert len(respelled) > 1 and "".join(p.removeprefix("##") for p in respelled) == dropped


def test_distill_trim_vocab_two_stage_then_export_and_pipeline(tiny_teacher, glue_dir, tmp_path):
    from transformers import pipeline

    from kdedge_runtime import Classifier
    from tests.conftest import _distil_at, export_tiny

    out = _distil_at(tmp_path, tiny_teacher, glue_dir, student="tinybert", init="teacher-layers", layers=1,
                     recipe="two-stage", intermediate_epochs=1, epochs=1, lr=1e-3, trim_vocab=True, trim_min_count=2)
    vocabulary = json.loads((out / "student.json").read_text())["vocabulary"]
    teacher_size = len(AutoTokenizer.from_pretrained(tiny_teacher))
    assert vocabulary["of"] == teacher_size and 0 < vocabulary["kept"] < teacher_size and vocabulary["min_count"] == 2
    bundle = export_tiny(out, glue_dir, tmp_path / "b", quantize="dynamic")
    assert json.loads((bundle / "config.json").read_text())["vocab_size"] == vocabulary["kept"]
    runtime = Classifier(bundle).predict(["a gorgeous , witty film", "zyzzyva"])
    optimum = pytest.importorskip("optimum.onnxruntime")  # the rest: optimum's pipeline loads the trimmed bundle
    model = optimum.ORTModelForSequenceClassification.from_pretrained(bundle)
    result = pipeline("text-classification", model=model, tokenizer=AutoTokenizer.from_pretrained(bundle))
    assert [r["label"] for r in result(["a gorgeous , witty film", "zyzzyva"])] == [p.label for p in runtime]


def test_trim_vocab_refuses_the_bilstm(tiny_teacher, glue_dir, tmp_path):
    from kdedge.errors import KdedgeError
    from tests.conftest import _distil_at

    with pytest.raises(KdedgeError, match="--trim-vocab trims a shared WordPiece vocabulary"):
        _distil_at(tmp_path, tiny_teacher, glue_dir, trim_vocab=True)
