"""Student builders by name: each makes a fresh student (model, tokenizer, meta) for a distillation run."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from kdedge.config import char_ngram_sizes, ngram_scope_names
from kdedge.data.loaders import Split
from kdedge.data.tasks import Task
from kdedge.errors import KdedgeError
from kdedge.models.bilstm import BiLSTMConfig, BiLSTMStudent
from kdedge.models.ngram import NgramConfig, NgramStudent
from kdedge.models.ngram_tokenizer import (
    NgramTextTokenizer,
    build_vocabulary,
    ngram_rules,
)
from kdedge.models.students import Student
from kdedge.models.word_vectors import build_word_tokenizer, load_word_vectors
from kdedge.students.tinybert import build_tinybert


def build_bilstm(cfg, task: Task, teacher, teacher_tokenizer, train: Split) -> Student:
    """Word-level vocabulary + word vectors (--word-vectors), or the teacher's WordPiece tokenizer and
    embedding matrix."""
    if cfg.word_vectors:
        texts = train.text + (train.text_pair or [])
        tokenizer = build_word_tokenizer(texts, min_freq=cfg.min_word_freq, max_words=cfg.max_vocab)
        matrix, coverage = load_word_vectors(cfg.word_vectors, tokenizer.get_vocab(), seed=cfg.seed)
        embeddings = torch.from_numpy(matrix)
        source = {"kind": "word", "vectors": cfg.word_vectors, "coverage": round(coverage, 4)}
    else:
        tokenizer = teacher_tokenizer
        embeddings = teacher.get_input_embeddings().weight.detach().clone()
        source = {"kind": "wordpiece", "from_teacher": cfg.teacher}
    config = BiLSTMConfig(
        vocab_size=embeddings.shape[0], num_labels=task.num_labels, embedding_dim=embeddings.shape[1],
        lstm_hidden=cfg.lstm_hidden, mlp_hidden=cfg.mlp_hidden, dropout=cfg.dropout,
        pad_token_id=tokenizer.pad_token_id, pair=task.is_pair,
    )
    model = BiLSTMStudent(config)
    with torch.no_grad():
        model.embedding.weight.copy_(embeddings)
    model.embedding.weight.requires_grad_(not cfg.freeze_embeddings)
    meta = {"architecture": "bilstm", "model": config.to_dict(), "embeddings": source,
            "siamese": task.is_pair, "add_special_tokens": False}
    return Student(model, tokenizer, meta)


def build_ngram(cfg, task: Task, teacher, teacher_tokenizer, train: Split) -> Student:
    """fastText's bag of n-grams: a word vocabulary from the training (transfer) texts plus hash buckets for word
    n-grams (and character n-grams with --ngram-chars), embedded from scratch; nothing is taken from the teacher."""
    rules = ngram_rules(cfg.ngram_words, char_ngram_sizes(cfg.ngram_chars), cfg.ngram_buckets,
                        ngram_scope_names(cfg.ngram_scopes))
    words = build_vocabulary(train.text + (train.text_pair or []), cfg.min_word_freq, cfg.max_vocab)
    tokenizer = NgramTextTokenizer(words, rules)
    config = NgramConfig(vocab_size=len(tokenizer), num_labels=task.num_labels, embedding_dim=cfg.ngram_dim,
                         hidden=cfg.ngram_hidden, hidden_layers=cfg.ngram_hidden_layers, dropout=cfg.dropout,
                         word_dropout=cfg.ngram_word_dropout, pad_token_id=tokenizer.pad_token_id, pair=task.is_pair)
    meta = {"architecture": "ngram", "model": config.to_dict(), "ngram": rules, "vocabulary_words": len(words),
            "siamese": task.is_pair, "add_special_tokens": False}
    model = NgramStudent(config)
    if cfg.word_vectors:  # averaged pretrained vectors beat random ones (Iyyer et al. 2015: DAN, 86.3 vs 83.2 on SST)
        vectors, coverage = load_word_vectors(cfg.word_vectors, {w: i for i, w in enumerate(words)}, seed=cfg.seed)
        if vectors.shape[1] < cfg.ngram_dim:
            raise KdedgeError(f"--ngram-dim {cfg.ngram_dim} is more than the {vectors.shape[1]} dimensions of "
                              f"--word-vectors {cfg.word_vectors}; use at most {vectors.shape[1]}")
        with torch.no_grad():  # word i has id 1 + i; the buckets keep their small random start
            model.embedding.weight[1:1 + len(words)] = torch.from_numpy(principal_components(vectors, cfg.ngram_dim))
        meta["embeddings"] = {"kind": "word", "vectors": cfg.word_vectors, "coverage": round(coverage, 4),
                              "dimensions": vectors.shape[1], "reduced_to": cfg.ngram_dim}
    return Student(model, tokenizer, meta)


def principal_components(vectors: np.ndarray, dim: int) -> np.ndarray:
    """`vectors` centred and projected on their first `dim` principal components (their own width: only centred),
    the reduction that keeps word vectors' similarities best among the simple ones (Raunak et al. 2019)."""
    centred = vectors - vectors.mean(axis=0)
    if dim == vectors.shape[1]:
        return centred.astype(np.float32)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    return (centred @ components[:dim].T).astype(np.float32)


STUDENT_BUILDERS: dict[str, Callable[..., Student]] = {
    "bilstm": build_bilstm,
    "tinybert": build_tinybert,
    "ngram": build_ngram,
}
