"""Tokenized features, dynamic padding and length-bucketed batches (most of CPU time is padding otherwise)."""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler

from kdedge.data.loaders import Split

HF_INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids")
# Keys padded with the tokenizer's pad id; every other list-valued key is padded with 0.
_ID_KEYS = ("input_ids", "input_ids_b")


def encode(tokenizer, split: Split, max_length: int, *, siamese: bool = False,
           add_special_tokens: bool = True) -> list[dict]:
    """Tokenize a split into per-example feature dicts (no padding).

    Pairs are joined into one sequence for cross-encoders; `siamese` students encode each side on its
    own (keys `input_ids`/`attention_mask` and `input_ids_b`/`attention_mask_b`).
    """
    kw = dict(truncation=True, max_length=max_length, add_special_tokens=add_special_tokens)
    if split.text_pair is not None and not siamese:
        enc = tokenizer(split.text, split.text_pair, **kw)
    else:
        enc = tokenizer(split.text, **kw)
    features = [{k: enc[k][i] for k in enc if k in ("input_ids", "attention_mask", "token_type_ids")}
                for i in range(len(split))]
    if split.text_pair is not None and siamese:
        enc_b = tokenizer(split.text_pair, **kw)
        for i, f in enumerate(features):
            f["input_ids_b"] = enc_b["input_ids"][i]
            f["attention_mask_b"] = enc_b["attention_mask"][i]
    for f, label in zip(features, split.labels.tolist()):
        f["labels"] = label
    return features


def feature_length(f: dict) -> int:
    return len(f["input_ids"]) + len(f.get("input_ids_b", ()))


class PadCollator:
    """Pads each list-valued key to the longest in the batch; stacks scalars and arrays."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        batch = {}
        for key in features[0]:
            values = [f[key] for f in features]
            if isinstance(values[0], list):
                width = max(max(len(v) for v in values), 1)
                pad = self.pad_token_id if key in _ID_KEYS else 0
                batch[key] = torch.tensor([v + [pad] * (width - len(v)) for v in values], dtype=torch.long)
            else:
                batch[key] = torch.as_tensor(np.asarray(values))
        return batch


class LengthBucketBatchSampler(Sampler[list[int]]):
    """Shuffled batches of similar length: shuffle, cut into pools of `pool_batches` batches, sort each pool
    by length, batch it, then shuffle the batch order. Seeded per epoch so a resumed run sees the same order."""

    def __init__(self, lengths: list[int], batch_size: int, seed: int = 0, shuffle: bool = True,
                 pool_batches: int = 50):
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.pool = batch_size * pool_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        n = len(self.lengths)
        if not self.shuffle:  # evaluation: one global sort, longest first (fail fast on memory)
            order = np.argsort(-self.lengths, kind="stable")
            return [order[i:i + self.batch_size].tolist() for i in range(0, n, self.batch_size)]
        rng = np.random.default_rng(self.seed + self.epoch)
        perm = rng.permutation(n)
        batches = []
        for start in range(0, n, self.pool):
            pool = perm[start:start + self.pool]
            pool = pool[np.argsort(self.lengths[pool], kind="stable")]
            batches += [pool[i:i + self.batch_size].tolist() for i in range(0, len(pool), self.batch_size)]
        rng.shuffle(batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        if not self.shuffle:
            return math.ceil(len(self.lengths) / self.batch_size)
        n, full = len(self.lengths), len(self.lengths) // self.pool
        rest = n - full * self.pool
        return full * math.ceil(self.pool / self.batch_size) + math.ceil(rest / self.batch_size)


def hf_inputs(batch: dict) -> dict:
    """The keyword arguments of a Hugging Face model's forward in a padded batch."""
    return {k: batch[k] for k in HF_INPUT_KEYS if k in batch}
