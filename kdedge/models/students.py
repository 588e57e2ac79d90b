"""Student registry: how each architecture is built for a distillation run, saved, and reloaded on its own.

A student folder holds `student.json` (architecture, hyper-parameters, task, tokenizer rules), the
weights and the tokenizer files; `load_student(folder)` needs nothing else. Transformer students are
also plain Hugging Face folders (config.json + model.safetensors), so `from_pretrained` and the optimum
exporter read them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from kdedge.data.batching import hf_inputs
from kdedge.errors import KdedgeError
from kdedge.models.bilstm import BiLSTMConfig, BiLSTMStudent
from kdedge.models.ngram import NgramConfig, NgramStudent
from kdedge.models.ngram_tokenizer import VOCAB_FILE, NgramTextTokenizer
from kdedge.outputs import read_json, write_json

META_FILE = "student.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass
class Student:
    model: torch.nn.Module
    tokenizer: object
    meta: dict  # architecture, model config, task, max_length, tokenizer rules

    @property
    def architecture(self) -> "Architecture":
        return ARCHITECTURES[self.meta["architecture"]]

    @property
    def siamese(self) -> bool:
        return self.meta.get("siamese", False)

    @property
    def add_special_tokens(self) -> bool:
        return self.meta.get("add_special_tokens", True)

    def logits(self, model: torch.nn.Module, batch: dict) -> torch.Tensor:
        return self.architecture.logits(model, batch)


@dataclass(frozen=True)
class Architecture:
    save: Callable[[torch.nn.Module, Path, dict], None]
    load: Callable[[Path, dict], torch.nn.Module]
    logits: Callable[[torch.nn.Module, dict], torch.Tensor]
    model_files: tuple[str, ...] = ("config.json", WEIGHTS_FILE)  # a BiLSTM's shape is in student.json
    # A tokenizer of its own (folder, student.json -> tokenizer) and its files; None: a Hugging Face tokenizer folder
    load_tokenizer: Callable[[Path, dict], object] | None = None
    tokenizer_files: tuple[str, ...] = ("tokenizer.json", "tokenizer_config.json")
    # --max-length counts words (its own split), not the teacher's tokens: a transfer set labelled at any length fits
    length_in_words: bool = False


def _bilstm_save(model, path: Path, meta: dict) -> None:
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, path / WEIGHTS_FILE)


def _bilstm_load(path: Path, meta: dict):
    model = BiLSTMStudent(BiLSTMConfig(**meta["model"]))
    model.load_state_dict(load_file(path / WEIGHTS_FILE))
    return model


def _ngram_load(path: Path, meta: dict):
    model = NgramStudent(NgramConfig(**meta["model"]))
    model.load_state_dict(load_file(path / WEIGHTS_FILE))
    return model


def bilstm_inputs(batch: dict) -> dict:
    keys = ("input_ids", "attention_mask", "input_ids_b", "attention_mask_b")
    return {k: batch[k] for k in keys if k in batch}


def _hf_save(model, path: Path, meta: dict) -> None:
    model.save_pretrained(path)


def _hf_load(path: Path, meta: dict):
    from kdedge.models.teacher import float32_weights

    return AutoModelForSequenceClassification.from_pretrained(path, **float32_weights())


ARCHITECTURES: dict[str, Architecture] = {
    "bilstm": Architecture(_bilstm_save, _bilstm_load, lambda m, b: m(**bilstm_inputs(b)), (WEIGHTS_FILE,)),
    "tinybert": Architecture(_hf_save, _hf_load, lambda m, b: m(**hf_inputs(b)).logits),
    "ngram": Architecture(_bilstm_save, _ngram_load, lambda m, b: m(**bilstm_inputs(b)), (WEIGHTS_FILE,),
                          NgramTextTokenizer.load, (VOCAB_FILE,), length_in_words=True),
}


def save_student(student: Student, path: str | Path, model: torch.nn.Module | None = None) -> None:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    student.architecture.save(model if model is not None else student.model, path, student.meta)
    student.tokenizer.save_pretrained(path)
    write_json(path / META_FILE, student.meta)


def load_student(path: str | Path) -> Student:
    """A student folder from `kdedge distill`, or a teacher folder from `kdedge teacher` (loaded the same way, so
    teachers export and benchmark through the same code)."""
    path = Path(path)
    meta_path = path / META_FILE
    if not meta_path.is_file() and _is_teacher_folder(path):
        return _load_teacher_folder(path)
    if not meta_path.is_file():
        raise KdedgeError(f"{path} is not a kdedge student folder (no {META_FILE}); give the output of `kdedge distill`")
    meta = read_json(meta_path)
    arch = meta.get("architecture")
    if arch not in ARCHITECTURES:
        raise KdedgeError(f"{meta_path}: unknown student architecture '{arch}' (known: {', '.join(ARCHITECTURES)})")
    architecture = ARCHITECTURES[arch]
    model, tokenizer = _load_files(path, "student", lambda: architecture.load(path, meta), architecture.model_files,
                                   architecture, meta)
    if meta.get("qat"):  # a QAT student is evaluated as it was trained: fake-quantized
        from kdedge.quant.qat import prepare_qat, trained_for_first_token

        prepare_qat(model, first_token=trained_for_first_token(meta["qat"]))
    model.eval()
    return Student(model, tokenizer, meta)


def _is_teacher_folder(path: Path) -> bool:
    manifest = path / "manifest.json"
    return (path / "config.json").is_file() and manifest.is_file() and "base_model" in read_json(manifest)


def _load_teacher_folder(path: Path) -> Student:
    run = read_json(path / "manifest.json")
    model, tokenizer = _load_files(path, "teacher", lambda: _hf_load(path, {}), _HF_FILES)
    meta = {"architecture": "tinybert", "role": "teacher", "base_model": run["base_model"], "task": run["task"],
            "max_length": run["max_length"]}
    return Student(model.eval(), tokenizer, meta)


_HF_FILES = ("config.json", WEIGHTS_FILE)  # a BiLSTM student's shape is in student.json: WEIGHTS_FILE alone
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
# where a tokenizer's vocabulary can come from: kdedge writes tokenizer.json; the others are slow tokenizers' files
_VOCABULARIES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model",
                 "tokenizer.model")


def _load_files(path: Path, role: str, load_model: Callable[[], torch.nn.Module], model_files: tuple[str, ...],
                architecture: Architecture | None = None, meta: dict | None = None):
    """The model and tokenizer of a folder; a file that is missing or corrupt is one KdedgeError line naming the
    folder and the file (transformers, safetensors and tokenizers each raise their own types, over several lines)."""
    model = _loaded(path, role, load_model, model_files)
    if architecture is not None and architecture.load_tokenizer is not None:  # a tokenizer of the student's own
        own = architecture.load_tokenizer
        return model, _loaded(path, role, lambda: own(path, meta), architecture.tokenizer_files)
    if not any((path / n).is_file() for n in _VOCABULARIES):
        # transformers would build a tokenizer with only the special tokens, and every word would be [UNK]
        raise KdedgeError(f"{path}: the {role}'s files are missing or corrupt: tokenizer.json is missing")
    tokenizer = _loaded(path, role, lambda: AutoTokenizer.from_pretrained(path), _TOKENIZER_FILES)
    if tokenizer.pad_token_id is None:  # batches are padded: without tokenizer_config.json the tokenizer has no pad
        config = path / "tokenizer_config.json"
        raise KdedgeError(f"{path}: the {role}'s files are missing or corrupt: tokenizer_config.json "
                          f"{'names no pad token' if config.is_file() else 'is missing'}")
    return model, tokenizer


def _loaded(path: Path, role: str, load: Callable[[], object], names: tuple[str, ...]):
    try:
        return load()
    except Exception as e:
        raise KdedgeError(f"{path}: the {role}'s files are missing or corrupt: {_file_problem(path, names, e)}") from None


def _file_problem(path: Path, names: tuple[str, ...], error: Exception) -> str:
    """Which of `names` is missing or does not parse, in a few words; else the library's first line."""
    import json

    from tokenizers import Tokenizer

    missing = [n for n in names if not (path / n).is_file()]
    if missing:
        return f"{missing[0]} is missing"
    for name in names:
        try:
            if name == "tokenizer.json":
                Tokenizer.from_file(str(path / name))
            elif name.endswith(".json"):
                json.loads((path / name).read_text(encoding="utf-8"))
        except Exception as e:
            return f"{name} is corrupt ({_first_line(e)})"
    return f"{' or '.join(names)} cannot be loaded ({_first_line(error)})"


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0][:200]}" if text else type(error).__name__
