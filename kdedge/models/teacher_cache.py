"""Teacher logits computed once per (teacher weights, data, max length) and cached on disk."""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

import numpy as np
from accelerate.data_loader import prepare_data_loader

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
    cached = _read_entry(path, len(split))
    if cached is not None:
        return cached, path
    logits = as_cached_logits(compute_teacher_logits(teacher, tokenizer, split, max_length=max_length,
                                                     batch_size=batch_size, accelerator=accelerator))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + f".{os.getpid()}.tmp.npy")
    np.save(tmp, logits)
    os.replace(tmp, path)
    return logits, path


def as_cached_logits(logits) -> np.ndarray:
    """Logits as the cache and the transfer set store them: a float32 numpy array in host memory, whatever device and
    dtype computed them (a CUDA tensor under fp16/bf16 autocast included)."""
    if hasattr(logits, "detach"):  # a torch tensor
        logits = logits.detach().float().cpu().numpy()
    return np.ascontiguousarray(logits, dtype=np.float32)


def _read_entry(path: Path, rows: int) -> np.ndarray | None:
    """A cache entry, or None when there is none or it is damaged (unreadable, wrong shape, not finite):
    it is then computed and written again."""
    if not path.is_file():
        return None
    try:
        logits = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if logits.ndim != 2 or len(logits) != rows or logits.dtype.kind != "f" or not np.isfinite(logits).all():
        return None
    return logits


def compute_teacher_logits(teacher, tokenizer, split: Split, *, max_length: int, batch_size: int,
                           accelerator=None) -> np.ndarray:
    """Batched inference, dynamic padding, length-sorted batches; sharded over processes under `accelerate
    launch`. Logits come back in the split's order."""
    if len(split) == 0:  # e.g. a shard whose every candidate was filtered out
        return np.zeros((0, teacher.config.num_labels), np.float32)
    loader, order = eval_loader(encode(tokenizer, split, max_length), batch_size, tokenizer.pad_token_id)
    autocast = contextlib.nullcontext()
    if accelerator is not None:
        # Not accelerator.prepare(): the teacher must not be registered, or it would land in checkpoints.
        teacher.to(accelerator.device)
        autocast = accelerator.autocast()
        if accelerator.num_processes > 1:
            loader = prepare_data_loader(loader, accelerator.device, num_processes=accelerator.num_processes,
                                         process_index=accelerator.process_index, put_on_device=True)
    with autocast:
        return as_cached_logits(predict_logits(teacher, loader, order, hf_logits, accelerator, desc="teacher logits"))
