"""Teacher logits computed once per (teacher weights, data, max length) and cached on disk."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from kdedge.data.batching import encode
from kdedge.data.loaders import Split
from kdedge.models.teacher import hf_logits, model_fingerprint
from kdedge.training import eval_loader, predict_logits


def default_cache_dir() -> Path:
    return Path(os.environ.get("KDEDGE_CACHE_DIR") or Path.home() / ".cache" / "kdedge")


def cache_key(teacher, split: Split, max_length: int) -> str:
    raw = f"{model_fingerprint(teacher)}:{split.fingerprint()}:{max_length}"
    return hashlib.sha256(raw.encode()).hexdigest()[:40]


def teacher_logits(teacher, tokenizer, split: Split, *, max_length: int, batch_size: int,
                   cache_dir: str | Path | None = None, accelerator=None) -> tuple[np.ndarray, Path]:
    """The teacher's logits for every row of `split` (original order), from the cache when present."""
    folder = Path(cache_dir) if cache_dir else default_cache_dir()
    path = folder / "teacher-logits" / f"{cache_key(teacher, split, max_length)}.npy"
    if path.is_file():
        return np.load(path), path
    loader, order = eval_loader(encode(tokenizer, split, max_length), batch_size, tokenizer.pad_token_id)
    if accelerator is not None:
        teacher = accelerator.prepare_model(teacher, evaluation_mode=True)
        loader = accelerator.prepare_data_loader(loader)
    logits = predict_logits(teacher, loader, order, hf_logits, accelerator, desc="teacher logits")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + f".{os.getpid()}.tmp.npy")
    np.save(tmp, logits)
    os.replace(tmp, path)
    return logits, path
