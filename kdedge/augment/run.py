"""`kdedge augment`: the task's training rows -> augmented, cleaned, teacher-labelled transfer set.

Streaming: the originals are taken `shard_size` at a time; each chunk is augmented by every method (RNG seeded
by the seed and the shard number), cleaned against everything kept so far and the dev set, labelled by the
teacher and written as one Parquet shard. Memory holds one shard (plus the duplicate index), and an
interrupted run resumes at the next missing shard, producing the same shards as an uninterrupted run.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from kdedge.augment.clean import Cleaner
from kdedge.augment.generative import GenerativeAugmentation
from kdedge.augment.replace import WordReplacement
from kdedge.augment.rules import RuleAugmentation
from kdedge.augment.transfer import shard_path, write_shard
from kdedge.config import AugmentConfig, to_dict
from kdedge.data import load_task_data
from kdedge.data.loaders import Split
from kdedge.distill.teacher_cache import compute_teacher_logits
from kdedge.errors import KdedgeError
from kdedge.models.teacher import load_teacher, model_fingerprint
from kdedge.outputs import RunDir, manifest, read_json, write_json
from kdedge.training import make_accelerator

AUGMENTERS = {
    "replace": lambda cfg, data, work, device: WordReplacement(cfg),
    "rules": lambda cfg, data, work, device: RuleAugmentation(cfg, data.train.text + (data.train.text_pair or [])),
    "generative": lambda cfg, data, work, device: GenerativeAugmentation(cfg, data.train, data.task, work, device),
}


def _validate(cfg: AugmentConfig) -> list[str]:
    methods = cfg.methods()
    unknown = [m for m in methods if m not in AUGMENTERS]
    if unknown or not methods:
        raise KdedgeError(f"unknown --method {', '.join(unknown) or '(none)'}; known: {', '.join(AUGMENTERS)}")
    return methods


def augment_transfer_set(cfg: AugmentConfig) -> Path:
    methods = _validate(cfg)
    with RunDir(cfg.out, overwrite=cfg.overwrite, resume=cfg.resume) as run:
        return _augment(cfg, methods, run)


def _augment(cfg: AugmentConfig, methods: list[str], run: RunDir) -> Path:
    run.check_config(to_dict(cfg))
    started = time.time()
    data = load_task_data(cfg)
    task = data.task
    teacher, tokenizer = load_teacher(cfg.teacher, task)
    accelerator = make_accelerator(cfg.mixed_precision)
    augmenters = [AUGMENTERS[m](cfg, data, run.work, accelerator.device) for m in methods]
    cleaner = Cleaner(min_words=cfg.min_words, max_words=cfg.max_words, near_duplicate=cfg.near_duplicate, seed=cfg.seed)
    cleaner.add_dev(data.dev.text, data.dev.text_pair)

    originals = data.train
    shards = math.ceil(len(originals) / cfg.shard_size)
    counts, candidates, total, label_time, written = Counter(), Counter(), 0, 0.0, []
    for k in range(shards):
        path = shard_path(run.work, k)
        lo = k * cfg.shard_size
        chunk = originals.select(range(lo, min(lo + cfg.shard_size, len(originals))))
        if path.is_file():  # written before an interruption: replay it into the duplicate index
            stats = read_json(path.with_suffix(".json"))
            table = pq.read_table(path, columns=["text", "source"] + (["text_pair"] if task.is_pair else []))
            texts, pairs = table.column("text").to_pylist(), (table.column("text_pair").to_pylist()
                                                              if task.is_pair else None)
            for i, text in enumerate(texts):
                cleaner.keep(text, None if pairs is None else pairs[i], original=True)
            cleaner.removed.update(stats["removed"])
        else:
            rng = np.random.default_rng([cfg.seed, k])
            before = Counter(cleaner.removed)
            rows, shard_candidates = _candidates(cfg, chunk, lo, augmenters, cleaner, rng)
            if cfg.max_examples is not None:
                rows = rows[: max(0, cfg.max_examples - total)]
            t0 = time.time()
            split = Split(text=[r["text"] for r in rows], labels=np.zeros(len(rows)),
                          text_pair=[r["pair"] for r in rows] if task.is_pair else None)
            logits = compute_teacher_logits(teacher, tokenizer, split, max_length=cfg.max_length,
                                            batch_size=cfg.batch_size, accelerator=accelerator)
            label_time += time.time() - t0
            stats = {"rows": len(rows), "sources": dict(Counter(r["source"] for r in rows)),
                     "candidates": dict(shard_candidates), "removed": dict(cleaner.removed - before)}
            if accelerator.is_main_process:
                write_json(path.with_suffix(".json"), stats)  # before the shard: a shard file implies its stats
                write_shard(path, rows, logits, task.is_regression, task.is_pair)
        counts.update(stats["sources"])
        candidates.update(stats["candidates"])
        total += stats["rows"]
        written.append(path.name)
        if cfg.max_examples is not None and total >= cfg.max_examples:
            break

    wall = time.time() - started
    summary = {
        "rows": total, "rows_by_source": dict(counts), "candidates_by_method": dict(candidates),
        "removed_by_filter": dict(cleaner.removed), "originals_used": min(len(originals), len(written) * cfg.shard_size),
        "shards": written, "wall_time_s": round(wall, 2), "teacher_labelling_s": round(label_time, 2),
        "examples_per_s": round(total / wall, 2) if wall else None,
    }
    write_json(run.work / "manifest.json", manifest(
        "augment", to_dict(cfg), inputs={**data.describe(), "teacher": {
            "name": cfg.teacher, "sha256_weights": model_fingerprint(teacher)}},
        metrics=summary, wall_time_s=wall,
        extra={"task": task.to_dict(), "max_length": cfg.max_length, "seed": cfg.seed,
               "methods": {a.name: a.describe() for a in augmenters}},
    ))
    for stats_file in run.work.glob("shard-*.json"):
        stats_file.unlink()
    return run.finalize()


def _candidates(cfg, chunk: Split, offset: int, augmenters, cleaner: Cleaner, rng) -> tuple[list[dict], Counter]:
    """The shard's rows (originals first, so a variant never displaces the row it came from), cleaned."""
    rows, made = [], Counter()
    if cfg.include_originals:
        for i, text in enumerate(chunk.text):
            pair = chunk.text_pair[i] if chunk.text_pair is not None else None
            kept = cleaner.keep(text, pair, original=True)
            if kept:
                label = chunk.labels[i].item()
                rows.append({"text": kept[0], "pair": kept[1], "source": "original", "parent": offset + i,
                             "label": label})
    for augmenter in augmenters:
        for i, text, pair in augmenter.variants(chunk, rng):
            made[augmenter.name] += 1
            kept = cleaner.keep(text, pair)
            if kept:
                rows.append({"text": kept[0], "pair": kept[1], "source": augmenter.name, "parent": offset + i,
                             "label": None})
    return rows, made
