"""`kdedge distill --recipe general`: task-agnostic distillation (TinyBERT's general distillation, Jiao et al. 2020,
§3.2). The teacher's encoder (embeddings, hidden states and attention through the layer mapping; no task head) is
distilled into a small transformer on plain unlabelled text. The folder it writes is a Hugging Face encoder with
the teacher's tokenizer, which a task's `kdedge distill --init pretrained:DIR` starts from (a fresh head on top).

A held-out sample of the text (HELD_OUT) is scored before and after, so metrics.json says how far the student came.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from accelerate.utils import set_seed

from kdedge.augment.unlabeled import read_unlabeled
from kdedge.config import DistillConfig, to_dict
from kdedge.data.batching import encode
from kdedge.data.evalsets import parse_named_files
from kdedge.data.loaders import Split
from kdedge.distill.intermediate import IntermediateDistiller
from kdedge.errors import KdedgeError
from kdedge.models.teacher import load_encoder, model_fingerprint
from kdedge.outputs import RunDir, manifest, write_json
from kdedge.students.mapping import loss_weights, parse_layers, resolve_mapping
from kdedge.students.tinybert import build_tinybert
from kdedge.training import TrainJob, eval_loader, make_accelerator, train

HELD_OUT = (0.02, 2000)  # the share of the text rows held out to score the loss on, and its cap


def distill_general(cfg: DistillConfig) -> Path:
    with RunDir(cfg.out, overwrite=cfg.overwrite, resume=cfg.resume) as run:
        return _distill_general(cfg, run)


def _distill_general(cfg: DistillConfig, run: RunDir) -> Path:
    run.check_config(to_dict(cfg))
    teacher, tokenizer = load_encoder(cfg.teacher)
    texts, sources = _read_texts(cfg)
    train_rows, held_rows = _hold_out(texts, cfg.seed)
    set_seed(cfg.seed)
    student = build_tinybert(cfg, None, teacher, tokenizer, train_rows, criterion="activation")
    pairs = resolve_mapping(cfg.mapping, teacher.config.num_hidden_layers, student.model.config.num_hidden_layers,
                            parse_layers(cfg.layer_map))
    accelerator = make_accelerator(cfg.mixed_precision)
    set_seed(cfg.seed)  # the projection starts the same whatever the init drew
    distiller = IntermediateDistiller(student.model, teacher, pairs, loss_weights(cfg, with_prediction=False),
                                      cfg.hidden_loss, cfg.attention_loss).to(accelerator.device)
    held_features = encode(tokenizer, held_rows, cfg.max_length)
    loss_before = _mean_loss(distiller, held_features, cfg, tokenizer.pad_token_id, accelerator)
    _, state = train(cfg, run, TrainJob(
        distiller, encode(tokenizer, train_rows, cfg.max_length), [], pad_token_id=tokenizer.pad_token_id,
        loss_fn=lambda m, b, progress: m(b)[0], logits_fn=None, metrics_fn=None, main_metric="", save_fn=None,
        name="general", evaluate_dev=False,
        lr_overrides={IntermediateDistiller.MAPPING_PREFIX: cfg.mapping_lr},
    ), accelerator)
    loss_after = _mean_loss(distiller, held_features, cfg, tokenizer.pad_token_id, accelerator)

    encoder = student.model.base_model  # the head was never trained: a task's run puts its own on top
    encoder.save_pretrained(run.work)
    tokenizer.save_pretrained(run.work)
    metrics = {"held_out_loss": {"before": loss_before, "after": loss_after}, "rows": len(train_rows),
               "held_out_rows": len(held_rows), "steps": state.global_step,
               "train_time_s": round(state.train_time_s, 2),
               "parameters": sum(p.numel() for p in encoder.parameters())}
    write_json(run.work / "metrics.json", metrics)
    write_json(run.work / "manifest.json", manifest(
        "distill-general", to_dict(cfg), inputs={"text": sources, "teacher": {
            "name": cfg.teacher, "sha256_weights": model_fingerprint(teacher)}},
        metrics=metrics, wall_time_s=state.train_time_s,
        extra={"student": {k: v for k, v in student.meta.items() if k != "siamese"},
               "layer_mapping": [p.describe() for p in pairs]},
    ))
    return run.finalize()


def _read_texts(cfg: DistillConfig) -> tuple[list[str], dict]:
    """The --unlabeled files' texts, exact duplicates dropped, a seeded sample of --max-train-samples of them."""
    files = parse_named_files(cfg.unlabeled, "--unlabeled")
    texts, sources = {}, {}
    for name, path in files.items():
        before = len(texts)
        texts.update((text, None) for text, _ in read_unlabeled(path, cfg.unlabeled_column, None, is_pair=False))
        sources[name] = {"path": str(path), "new_rows": len(texts) - before}
    texts = list(texts)
    if cfg.max_train_samples is not None and cfg.max_train_samples < len(texts):
        texts = random.Random(cfg.seed).sample(texts, cfg.max_train_samples)
    if len(texts) < 2:
        raise KdedgeError(f"--recipe general needs text to distil on: --unlabeled gave {len(texts)} distinct row(s)")
    return texts, sources


def _hold_out(texts: list[str], seed: int) -> tuple[Split, Split]:
    share, cap = HELD_OUT
    order = np.random.default_rng(seed).permutation(len(texts))
    n = max(1, min(cap, int(len(texts) * share)))

    def split(indices) -> Split:
        return Split(text=[texts[i] for i in indices], labels=np.zeros(len(indices), dtype=np.int64))
    return split(order[n:]), split(order[:n])


@torch.no_grad()
def _mean_loss(distiller: IntermediateDistiller, features: list[dict], cfg: DistillConfig, pad_token_id: int,
               accelerator) -> float:
    """The intermediate loss over `features`, weighted by rows (dropout off)."""
    was_training = distiller.training
    distiller.eval()
    loader, _ = eval_loader(features, cfg.eval_batch_size, pad_token_id)
    total, rows = 0.0, 0
    with accelerator.autocast():
        for batch in loader:
            batch = {k: v.to(accelerator.device) for k, v in batch.items()}
            total += float(distiller(batch)[0]) * len(batch["input_ids"])
            rows += len(batch["input_ids"])
    distiller.train(was_training)
    return round(total / max(rows, 1), 6)
