"""Student registry: how each architecture is built for a distillation run, saved, and reloaded on its own.

A student folder holds `config.json` (architecture, hyper-parameters, task, tokenizer rules),
`model.safetensors` and the tokenizer files; `load_student(folder)` needs nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer

from kdedge.data.loaders import Split
from kdedge.data.tasks import Task
from kdedge.errors import KdedgeError
from kdedge.models.bilstm import BiLSTMConfig, BiLSTMStudent
from kdedge.models.word_vectors import build_word_tokenizer, load_word_vectors
from kdedge.outputs import read_json, write_json

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass
class Student:
    model: torch.nn.Module
    tokenizer: object
    meta: dict  # architecture, model config, task, max_length, tokenizer rules

    @property
    def siamese(self) -> bool:
        return self.meta.get("siamese", False)

    @property
    def add_special_tokens(self) -> bool:
        return self.meta.get("add_special_tokens", True)


# architecture name -> (module class, config class)
ARCHITECTURES: dict[str, tuple[type, type]] = {
    "bilstm": (BiLSTMStudent, BiLSTMConfig),
}


def build_bilstm(cfg, task: Task, teacher, teacher_tokenizer, train: Split) -> Student:
    """Word-level vocabulary + word vectors (--word-vectors), or the teacher's WordPiece tokenizer and
    embedding matrix."""
    if cfg.word_vectors:
        texts = train.text + (train.text_pair or [])
        tokenizer = build_word_tokenizer(texts, min_freq=cfg.min_word_freq)
        matrix, coverage = load_word_vectors(cfg.word_vectors, tokenizer.get_vocab(), seed=cfg.seed)
        embeddings, source = torch.from_numpy(matrix), {"kind": "word", "vectors": cfg.word_vectors,
                                                         "coverage": round(coverage, 4)}
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


STUDENT_BUILDERS: dict[str, Callable[..., Student]] = {
    "bilstm": build_bilstm,
}


def save_student(student: Student, path: str | Path, model: torch.nn.Module | None = None) -> None:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model = model if model is not None else student.model
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, path / WEIGHTS_FILE)
    student.tokenizer.save_pretrained(path)
    write_json(path / CONFIG_FILE, {"kdedge_student": 1, **student.meta})


def load_student(path: str | Path) -> Student:
    path = Path(path)
    config_path = path / CONFIG_FILE
    if not config_path.is_file():
        raise KdedgeError(f"{path} is not a kdedge student folder (no {CONFIG_FILE})")
    meta = read_json(config_path)
    meta.pop("kdedge_student", None)
    arch = meta.get("architecture")
    if arch not in ARCHITECTURES:
        raise KdedgeError(f"{config_path}: unknown student architecture '{arch}' (known: {', '.join(ARCHITECTURES)})")
    module_cls, config_cls = ARCHITECTURES[arch]
    model = module_cls(config_cls(**meta["model"]))
    model.load_state_dict(load_file(path / WEIGHTS_FILE))
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    return Student(model, tokenizer, meta)


def student_inputs(batch: dict) -> dict:
    keys = ("input_ids", "attention_mask", "input_ids_b", "attention_mask_b")
    return {k: batch[k] for k in keys if k in batch}
