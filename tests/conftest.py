"""Shared fixtures: real GLUE slices from ../shared and tiny models built from configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kdedge_runtime.cpu import EXACT_U8_S8, preset_for, read_cpu

# The int8 preset of the CPU the tests run on: a test that compares int8 outputs with float ones quantizes for it.
HOST_PRESET = preset_for(*read_cpu())
# ONNX Runtime multiplies u8 activations by s8 weights exactly with VNNI or on ARM; plain AVX2 and AVX-512 use
# VPMADDUBSW, whose 16-bit intermediate sums can saturate, so a QAT int8 bundle is not bit-faithful there (a known
# gap: the QAT scheme does not yet emulate those presets).
INT8_GEMM_EXACT = HOST_PRESET in EXACT_U8_S8

SHARED = Path(os.environ.get("KDEDGE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
GLUE_DIR = SHARED / "data" / "glue"
GLOVE = SHARED / "vectors" / "glove.6B.100d.60k.txt"


def pytest_configure(config):
    # offline whatever the shell says; the tests of going offline by themselves unset these (pyproject.toml's
    # --allow-hosts blocks any other connection made in this process)
    os.environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@pytest.fixture(scope="session")
def glue_dir() -> Path:
    if not (GLUE_DIR / "SST-2" / "train.tsv").is_file():
        pytest.skip(f"GLUE data not found under {GLUE_DIR}")
    return GLUE_DIR


@pytest.fixture(scope="session")
def glove_path() -> Path:
    if not GLOVE.is_file():
        pytest.skip(f"GloVe vectors not found at {GLOVE}")
    return GLOVE


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KDEDGE_CACHE_DIR", str(tmp_path / "cache"))


def build_tiny_bert(folder: Path, texts: list[str], num_labels: int, *, label_names=None, regression=False,
                    seed: int = 0, vocab_size: int = 600) -> Path:
    """A 2-layer, hidden-32 BERT classifier with a WordPiece vocab trained on `texts`, saved as an HF folder."""
    import torch
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    wp = BertWordPieceTokenizer(lowercase=True)
    wp.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=1)
    wp.save_model(str(folder))
    tokenizer = BertTokenizerFast.from_pretrained(str(folder), do_lower_case=True)  # vocab.txt (vocab_file= is gone in 5.x)
    kw = dict(problem_type="regression") if regression else dict(
        id2label=dict(enumerate(label_names)), label2id={n: i for i, n in enumerate(label_names)})
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=256, num_labels=num_labels, **kw)
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_tiny_mpnet(folder: Path, texts: list[str]) -> Path:
    """A 2-layer MPNet classifier whose tokenizer has RoBERTa's post-processor (<s> A </s></s> B </s>) and gives no
    token type ids, as all-mpnet-base-v2's."""
    import torch
    from tokenizers import BertWordPieceTokenizer
    from tokenizers.processors import RobertaProcessing
    from transformers import MPNetConfig, MPNetForSequenceClassification, PreTrainedTokenizerFast

    special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    wp = BertWordPieceTokenizer(lowercase=True, unk_token="<unk>", sep_token="</s>", cls_token="<s>",
                                pad_token="<pad>", mask_token="<mask>")
    wp.train_from_iterator(texts, vocab_size=600, min_frequency=1, special_tokens=special)
    wp.post_processor = RobertaProcessing(("</s>", 2), ("<s>", 0))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=wp._tokenizer, bos_token="<s>", eos_token="</s>",
                                        sep_token="</s>", cls_token="<s>", unk_token="<unk>", pad_token="<pad>",
                                        mask_token="<mask>", model_input_names=["input_ids", "attention_mask"])
    config = MPNetConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, num_labels=2, pad_token_id=1,
                         id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    torch.manual_seed(0)
    MPNetForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory, glue_dir) -> Path:
    """A tiny SST-2 'teacher' (random weights are enough to exercise the pipeline)."""
    from kdedge.config import DataOptions
    from kdedge.data import load_task_data

    data = load_task_data(DataOptions(task="sst2", data_dir=str(glue_dir), max_train_samples=2000))
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-teacher"), data.train.text + data.dev.text, 2,
                           label_names=("negative", "positive"))


@pytest.fixture(scope="session")
def tiny_pair_teacher(tmp_path_factory, glue_dir) -> Path:
    from kdedge.config import DataOptions
    from kdedge.data import load_task_data

    data = load_task_data(DataOptions(task="stsb", data_dir=str(glue_dir), max_train_samples=1000))
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-stsb"), data.train.text + data.train.text_pair, 1,
                           regression=True)


def _distil_at(folder: Path, teacher, glue_dir, **kw):
    """Distil a small student on 400 SST-2 rows with gold labels (alpha=1), so its logits are decisive."""
    from kdedge.config import DistillConfig, build_config
    from kdedge.distill.run import distill_student

    base = dict(task="sst2", data_dir=str(glue_dir), teacher=str(teacher), out=str(folder / "s"),
                max_train_samples=400, max_eval_samples=200, alpha=1.0, epochs=3, batch_size=16, seed=0,
                cache_dir=str(folder / "cache"))
    base.update(kw)
    return distill_student(build_config(DistillConfig, None, **base))


def _distil(tmp_path_factory, teacher, glue_dir, name, **kw):
    return _distil_at(tmp_path_factory.mktemp(name), teacher, glue_dir, **kw)


@pytest.fixture(scope="session")
def tiny_bilstm_student(tmp_path_factory, tiny_teacher, glue_dir, glove_path):
    """A small GloVe BiLSTM trained on gold labels (alpha=1), so its logits are decisive."""
    return _distil(tmp_path_factory, tiny_teacher, glue_dir, "bilstm", word_vectors=str(glove_path),
                   lstm_hidden=16, mlp_hidden=16, lr=1e-2)


@pytest.fixture(scope="session")
def tiny_tinybert_student(tmp_path_factory, tiny_teacher, glue_dir):
    return _distil(tmp_path_factory, tiny_teacher, glue_dir, "tinybert", student="tinybert", layers=1,
                   init="teacher-layers", lr=1e-3)


@pytest.fixture(scope="session")
def tiny_trained_teacher(tmp_path_factory, tiny_teacher, glue_dir) -> Path:
    """A `kdedge teacher` output folder (manifest, metrics) from one short epoch on the tiny BERT."""
    from kdedge.config import TeacherConfig, build_config
    from kdedge.teacher import fine_tune_teacher

    out = tmp_path_factory.mktemp("trained-teacher") / "t"
    return fine_tune_teacher(build_config(TeacherConfig, None, model=str(tiny_teacher), task="sst2",
                                          data_dir=str(glue_dir), max_train_samples=300, max_eval_samples=200,
                                          epochs=1, batch_size=32, lr=1e-3, out=str(out)))


def export_tiny(student_dir: Path, glue_dir: Path, out: Path, **kw) -> Path:
    from kdedge.config import ExportConfig, build_config
    from kdedge.onnx.bundle import export_bundle

    return export_bundle(build_config(ExportConfig, None, model=str(student_dir), out=str(out), data_dir=str(glue_dir),
                                      max_eval_samples=200, **kw))


@pytest.fixture(scope="session")
def tiny_bundles(tmp_path_factory, tiny_bilstm_student, tiny_tinybert_student, glue_dir) -> dict[str, Path]:
    """fp32 and dynamic int8 bundles of the tiny BiLSTM and transformer students."""
    root = tmp_path_factory.mktemp("bundles")
    return {f"{name}-{q}": export_tiny(student, glue_dir, root / f"{name}-{q}", quantize=q)
            for name, student in (("bilstm", tiny_bilstm_student), ("tinybert", tiny_tinybert_student))
            for q in ("none", "dynamic")}
