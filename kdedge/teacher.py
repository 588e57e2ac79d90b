"""`kdedge teacher`: fine-tune an encoder on a task; write an HF folder + metrics.json + manifest.json."""

from __future__ import annotations

from pathlib import Path

from accelerate.utils import set_seed

from kdedge.config import TeacherConfig, to_dict
from kdedge.data import compute_metrics, load_task_data
from kdedge.data.batching import encode, hf_inputs
from kdedge.models.teacher import hf_logits, load_tokenizer, new_classifier
from kdedge.outputs import RunDir, manifest, write_json
from kdedge.training import TrainJob, train


def fine_tune_teacher(cfg: TeacherConfig) -> Path:
    with RunDir(cfg.out, overwrite=cfg.overwrite, resume=cfg.resume) as run:
        return _fine_tune(cfg, run)


def _fine_tune(cfg: TeacherConfig, run: RunDir) -> Path:
    run.check_config(to_dict(cfg))
    data = load_task_data(cfg)
    task = data.task
    tokenizer = load_tokenizer(cfg.model)
    set_seed(cfg.seed)  # the new classification head is drawn from the seeded generator
    model = new_classifier(cfg.model, task)

    train_features = encode(tokenizer, data.train, cfg.max_length)
    dev_features = encode(tokenizer, data.dev, cfg.max_length)

    def save(model, path):
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)

    best, state = train(cfg, run, TrainJob(
        model, train_features, dev_features,
        pad_token_id=tokenizer.pad_token_id,
        loss_fn=lambda m, b, progress: m(**hf_inputs(b), labels=b["labels"]).loss,
        logits_fn=hf_logits,
        metrics_fn=lambda logits, labels: compute_metrics(task, logits, labels),
        main_metric=task.main_metric,
        save_fn=save,
        name="teacher",
    ))
    metrics = {"dev": best, "best_step": state.best_step, "steps": state.global_step,
               "train_time_s": round(state.train_time_s, 2),
               "parameters": sum(p.numel() for p in model.parameters())}
    write_json(run.work / "metrics.json", metrics)
    write_json(run.work / "manifest.json", manifest(
        "teacher", to_dict(cfg), inputs=data.describe(), metrics=metrics, wall_time_s=state.train_time_s,
        extra={"task": task.to_dict(), "base_model": cfg.model, "max_length": cfg.max_length},
    ))
    return run.finalize()
