"""`kdedge augment`: the task's training rows and the user's unlabeled text -> augmented, cleaned, teacher-labelled
transfer set.

Streaming: the originals, then the unlabeled rows, are taken `shard_size` at a time; each chunk is augmented by
every method (RNG seeded by the seed and the shard number), cleaned against everything kept so far, dev and the
evaluation sets, labelled by the teacher and written as one Parquet shard. Memory holds one shard (plus the duplicate index), and an
interrupted run resumes at the next missing shard, producing the same shards as an uninterrupted run.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from kdedge.augment.clean import Cleaner
from kdedge.augment.generative import GenerativeAugmentation
from kdedge.augment.replace import WordReplacement
from kdedge.augment.rules import RuleAugmentation
from kdedge.augment.unlabeled import unlabeled_chunks
from kdedge.config import AugmentConfig, to_dict
from kdedge.data import load_task_data
from kdedge.data.evalsets import describe as describe_sets
from kdedge.data.evalsets import load_eval_sets, parse_named_files
from kdedge.data.loaders import Split
from kdedge.data.transfer import shard_path, write_shard
from kdedge.errors import KdedgeError
from kdedge.models.teacher import load_teacher, model_fingerprint
from kdedge.models.teacher_cache import compute_teacher_logits
from kdedge.outputs import RunDir, manifest, read_json, sha256_file, write_json
from kdedge.training import make_accelerator

AUGMENTERS = {
    "replace": lambda cfg, data, work, device: WordReplacement(cfg),
    "rules": lambda cfg, data, work, device: RuleAugmentation(cfg, data.train.text + (data.train.text_pair or [])),
    "generative": lambda cfg, data, work, device: GenerativeAugmentation(cfg, data.train, data.task, work, device),
}


def _validate(cfg: AugmentConfig) -> list[str]:
    methods = cfg.methods()
    unknown = [m for m in methods if m not in AUGMENTERS]
    if unknown:
        raise KdedgeError(f"unknown --method {', '.join(unknown)}; known: {', '.join(AUGMENTERS)}, none")
    if not methods and not cfg.include_originals and not cfg.unlabeled:
        raise KdedgeError("nothing to build a transfer set from: give --method, keep the originals "
                          "(--include-originals) or add --unlabeled text")
    if cfg.augment_unlabeled and not (methods and cfg.unlabeled):
        raise KdedgeError("--augment-unlabeled varies the --unlabeled rows with --method: give both")
    return methods


def augment_transfer_set(cfg: AugmentConfig) -> Path:
    methods = _validate(cfg)
    with RunDir(cfg.out, overwrite=cfg.overwrite, resume=cfg.resume) as run:
        return _augment(cfg, methods, run)


@dataclass(frozen=True)
class Chunk:
    """The input rows of one shard: a slice of the task's training rows, or of the unlabeled stream."""
    unlabeled: bool
    rows: Split | list[tuple[str, str, str | None]]  # task rows; (source, text, pair) for unlabeled text
    offset: int = 0  # task rows: the index of the first (a variant's parent)


def _chunks(cfg: AugmentConfig, data, methods: list[str], unlabeled: dict[str, Path]):
    """The task's rows (none when neither originals nor any method uses them), then the unlabeled stream."""
    originals = data.train
    if cfg.include_originals or methods:
        for lo in range(0, len(originals), cfg.shard_size):
            yield Chunk(False, originals.select(range(lo, min(lo + cfg.shard_size, len(originals)))), lo)
    for rows in unlabeled_chunks(unlabeled, cfg.unlabeled_column, cfg.unlabeled_pair_column, data.task.is_pair,
                                 cfg.shard_size):
        yield Chunk(True, rows)


def _unlabeled_cap(cfg: AugmentConfig, task_rows: int) -> int | None:
    """How many unlabeled rows the set may take, given how many rows the task's own data gave it."""
    caps = [cfg.max_unlabeled] if cfg.max_unlabeled is not None else []
    if cfg.unlabeled_ratio is not None:
        if task_rows == 0:
            raise KdedgeError("--unlabeled-ratio mixes unlabeled rows with the task's own, but the task gave the set "
                              "no rows; drop it (or cap with --max-unlabeled)")
        caps.append(int(cfg.unlabeled_ratio * task_rows))
    return min(caps) if caps else None


def _augment(cfg: AugmentConfig, methods: list[str], run: RunDir) -> Path:
    run.check_config(to_dict(cfg))
    started = time.time()
    data = load_task_data(cfg, train_optional=bool(cfg.unlabeled))
    task = data.task
    unlabeled = parse_named_files(cfg.unlabeled, "--unlabeled")
    eval_sets = load_eval_sets(task, cfg, cfg.eval_file)
    teacher, tokenizer = load_teacher(cfg.teacher, task)
    accelerator = make_accelerator(cfg.mixed_precision)
    augmenters = [AUGMENTERS[m](cfg, data, run.work, accelerator.device) for m in methods]
    cleaner = Cleaner(min_words=cfg.min_words, max_words=cfg.max_words, near_duplicate=cfg.near_duplicate, seed=cfg.seed)
    cleaner.add_held_out(data.dev.text, data.dev.text_pair, "dev")
    for split in eval_sets.values():
        cleaner.add_held_out(split.text, split.text_pair, "eval")

    counts, candidates, total, label_time, written = Counter(), Counter(), 0, 0.0, []
    task_rows, task_shards, unlabeled_rows, unlabeled_read, cap = 0, 0, 0, 0, None
    for k, chunk in enumerate(_chunks(cfg, data, methods, unlabeled)):
        if chunk.unlabeled and unlabeled_read == 0:
            cap = _unlabeled_cap(cfg, task_rows)
        path = shard_path(run.work, k)
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
            if chunk.unlabeled:
                rows, shard_candidates = _unlabeled_candidates(cfg, chunk.rows, augmenters, cleaner, rng)
                rows = rows[: None if cap is None else max(0, cap - unlabeled_rows)]
            else:
                rows, shard_candidates = _candidates(cfg, chunk.rows, chunk.offset, augmenters, cleaner, rng)
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
        if chunk.unlabeled:
            unlabeled_rows += stats["rows"]
            unlabeled_read += len(chunk.rows)
        else:
            task_rows += stats["rows"]
            task_shards += 1
        written.append(path.name)
        if cfg.max_examples is not None and total >= cfg.max_examples:
            break
        if chunk.unlabeled and cap is not None and unlabeled_rows >= cap:
            break

    wall = time.time() - started
    summary = {
        "rows": total, "rows_by_source": dict(counts), "candidates_by_method": dict(candidates),
        "removed_by_filter": dict(cleaner.removed),
        "originals_used": min(len(data.train), task_shards * cfg.shard_size),
        "unlabeled_rows_read": unlabeled_read, "unlabeled_rows": unlabeled_rows, "unlabeled_cap": cap,
        "shards": written, "wall_time_s": round(wall, 2), "teacher_labelling_s": round(label_time, 2),
        "examples_per_s": round(total / wall, 2) if wall else None,
    }
    if run.is_main:  # every process has the same figures; one writes them (two would race on the stats files)
        sources = {name: {"source": str(path), "sha256": sha256_file(path)} for name, path in unlabeled.items()}
        inputs = {**data.describe(), "eval_sets": describe_sets(eval_sets), "unlabeled": sources,
                  "teacher": {"name": cfg.teacher, "sha256_weights": model_fingerprint(teacher)}}
        write_json(run.work / "manifest.json", manifest(
            "augment", to_dict(cfg), inputs=inputs, metrics=summary, wall_time_s=wall,
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


def _unlabeled_candidates(cfg, chunk: list[tuple[str, str, str | None]], augmenters, cleaner: Cleaner, rng
                          ) -> tuple[list[dict], Counter]:
    """The user's rows, cleaned like any generated row (lengths, duplicates, held-out leaks), then (with
    --augment-unlabeled) their variants, sourced `unlabeled:NAME+method`. No gold label, no parent."""
    rows, made = [], Counter()
    kept_rows = []
    for source, text, pair in chunk:
        made[source] += 1
        kept = cleaner.keep(text, pair)
        if kept:
            rows.append({"text": kept[0], "pair": kept[1], "source": source, "parent": None, "label": None})
            kept_rows.append(rows[-1])
    if cfg.augment_unlabeled and kept_rows:
        split = Split(text=[r["text"] for r in kept_rows], labels=np.zeros(len(kept_rows)),
                      text_pair=[r["pair"] for r in kept_rows] if kept_rows[0]["pair"] is not None else None)
        for augmenter in augmenters:
            for i, text, pair in augmenter.variants(split, rng):
                made[augmenter.name] += 1
                kept = cleaner.keep(text, pair)
                if kept:
                    rows.append({"text": kept[0], "pair": kept[1], "source": f"{kept_rows[i]['source']}+{augmenter.name}",
                                 "parent": None, "label": None})
    return rows, made
