"""`kdedge distill`: train a student on the teacher's cached logits (and gold labels, weighted by alpha)."""

from __future__ import annotations

import time
from pathlib import Path

from accelerate.utils import set_seed

from kdedge.config import DistillConfig, to_dict
from kdedge.data import compute_metrics, load_task_data
from kdedge.data.batching import encode
from kdedge.distill.losses import PredictionDistillLoss
from kdedge.distill.teacher_cache import teacher_logits
from kdedge.errors import KdedgeError
from kdedge.models.students import STUDENT_BUILDERS, save_student, student_inputs
from kdedge.models.teacher import load_teacher, model_fingerprint
from kdedge.outputs import RunDir, manifest, write_json
from kdedge.training import make_accelerator, train


def distill_student(cfg: DistillConfig) -> Path:
    if cfg.student not in STUDENT_BUILDERS:
        raise KdedgeError(f"unknown --student '{cfg.student}' (known: {', '.join(STUDENT_BUILDERS)})")
    run = RunDir(cfg.out, overwrite=cfg.overwrite, resume=cfg.resume)
    run.check_config(to_dict(cfg))
    data = load_task_data(cfg)
    task = data.task
    teacher, teacher_tokenizer = load_teacher(cfg.teacher, task)

    set_seed(cfg.seed)
    student = STUDENT_BUILDERS[cfg.student](cfg, task, teacher, teacher_tokenizer, data.train)

    accelerator = make_accelerator(cfg.mixed_precision)
    t0 = time.time()
    common = dict(max_length=cfg.max_length, batch_size=cfg.eval_batch_size, cache_dir=cfg.cache_dir,
                  accelerator=accelerator)
    train_logits, cache_path = teacher_logits(teacher, teacher_tokenizer, data.train, **common)
    dev_logits, _ = teacher_logits(teacher, teacher_tokenizer, data.dev, **common)
    teacher_time = time.time() - t0
    teacher_dev = compute_metrics(task, dev_logits, data.dev.labels)
    teacher_id = {"name": cfg.teacher, "sha256_weights": model_fingerprint(teacher)}
    del teacher

    def features(split):
        return encode(student.tokenizer, split, cfg.max_length, siamese=student.siamese,
                      add_special_tokens=student.add_special_tokens)

    train_features = features(data.train)
    for f, logits in zip(train_features, train_logits):
        f["teacher_logits"] = logits
    dev_features = features(data.dev)

    loss = PredictionDistillLoss(task, cfg.soft_loss, cfg.alpha, cfg.temperature)
    student_meta = {**student.meta, "task": task.to_dict(), "max_length": cfg.max_length}
    student.meta = student_meta

    best, state = train(
        cfg, run, student.model, train_features, dev_features,
        pad_token_id=student.tokenizer.pad_token_id,
        loss_fn=lambda m, b: loss(m(**student_inputs(b)), b["teacher_logits"], b["labels"]),
        logits_fn=lambda m, b: m(**student_inputs(b)),
        metrics_fn=lambda logits, labels: compute_metrics(task, logits, labels),
        main_metric=task.main_metric,
        save_fn=lambda m, path: save_student(student, path, model=m),
        accelerator=accelerator,
    )
    main = task.main_metric
    metrics = {
        "dev": best,
        "teacher_dev": teacher_dev,
        "retention": best[main] / teacher_dev[main] if teacher_dev[main] else None,
        "best_step": state.best_step,
        "steps": state.global_step,
        "train_time_s": round(state.train_time_s, 2),
        "teacher_logits_time_s": round(teacher_time, 2),
        "parameters": sum(p.numel() for p in student.model.parameters()),
    }
    write_json(run.work / "metrics.json", metrics)
    write_json(run.work / "manifest.json", manifest(
        "distill", to_dict(cfg), inputs={**data.describe(), "teacher": teacher_id,
                                         "teacher_logits_cache": str(cache_path)},
        metrics=metrics, wall_time_s=state.train_time_s + teacher_time,
        extra={"task": task.to_dict(), "student": student_meta},
    ))
    return run.finalize()
