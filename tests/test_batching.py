import numpy as np
import torch

from kdedge.data.batching import LengthBucketBatchSampler, PadCollator


def test_every_index_once_and_len_matches():
    lengths = np.random.default_rng(0).integers(1, 60, size=1037).tolist()
    sampler = LengthBucketBatchSampler(lengths, batch_size=16, seed=3, pool_batches=10)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    assert sorted(i for b in batches for i in b) == list(range(1037))


def test_seeded_per_epoch_and_bucketed():
    lengths = np.random.default_rng(0).integers(1, 60, size=2000).tolist()
    sampler = LengthBucketBatchSampler(lengths, batch_size=32, seed=1)
    first = list(sampler)
    assert first == list(sampler)  # same epoch, same order (what resume relies on)
    sampler.set_epoch(1)
    assert first != list(sampler)
    # buckets pad far less than random batches
    padded = sum(max(lengths[i] for i in b) * len(b) for b in first)
    rng = np.random.default_rng(0).permutation(2000)
    random_padded = sum(max(lengths[i] for i in rng[k:k + 32]) * len(rng[k:k + 32]) for k in range(0, 2000, 32))
    assert padded < 0.6 * random_padded


def test_eval_order_is_sorted_and_complete():
    sampler = LengthBucketBatchSampler([3, 9, 1, 5], batch_size=3, shuffle=False)
    assert list(sampler) == [[1, 3, 0], [2]]


def test_pad_collator():
    batch = PadCollator(pad_token_id=7)([
        {"input_ids": [1, 2, 3], "attention_mask": [1, 1, 1], "labels": 1, "teacher_logits": np.array([0.5, 1.0])},
        {"input_ids": [4], "attention_mask": [1], "labels": 0, "teacher_logits": np.array([2.0, 3.0])},
    ])
    assert batch["input_ids"].tolist() == [[1, 2, 3], [4, 7, 7]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [1, 0]
    assert batch["teacher_logits"].dtype == torch.float64 and batch["teacher_logits"].shape == (2, 2)
