"""`kdedge distill`: train a student from a teacher.

Recipes, by name: `prediction` (the student learns the teacher's cached logits, plus gold labels
weighted by alpha), `two-stage` (TinyBERT: intermediate layers first, then the prediction layer) and
`joint` (all losses in one stage). Each stage checkpoints on its own, so `--resume` continues from the
stage and step where a run stopped.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from accelerate.utils import set_seed
from safetensors.torch import load_file, save_file

from kdedge.compress.vocab import count_tokens, trim_embeddings, trim_vocabulary
from kdedge.config import DistillConfig, to_dict
from kdedge.data import compute_metrics, load_task_data
from kdedge.data.batching import encode
from kdedge.data.evalsets import describe as describe_sets
from kdedge.data.evalsets import load_eval_sets
from kdedge.data.loaders import sample_rows
from kdedge.distill.align import cross_tokenizer_features
from kdedge.distill.general import distill_general
from kdedge.distill.intermediate import IntermediateDistiller
from kdedge.distill.losses import PredictionDistillLoss
from kdedge.errors import KdedgeError
from kdedge.models.students import ARCHITECTURES, Student, save_student
from kdedge.models.teacher import load_teacher, model_fingerprint
from kdedge.models.teacher_cache import teacher_logits
from kdedge.outputs import RunDir, manifest, read_json, write_json
from kdedge.quant.qat import prepare_qat, scheme_of
from kdedge.students.builders import STUDENT_BUILDERS
from kdedge.students.mapping import loss_weights, parse_layers, resolve_mapping
from kdedge.students.tinybert import same_vocabulary
from kdedge.training import TrainJob, eval_loader, make_accelerator, predict_logits, train

DEFAULT_LR = {"bilstm": 1e-3, "tinybert": 1e-4, "ngram": 1e-2}


@dataclass(frozen=True)
class Stage:
    name: str
    epochs: int
    lr: float
    intermediate: bool  # intermediate-layer losses (needs the teacher live)
    prediction: bool  # prediction-layer loss
    evaluate: bool
    qat: bool = False  # fake-quantized (see kdedge/quant/qat.py)


def plan_stages(cfg: DistillConfig) -> list[Stage]:
    if cfg.recipe == "two-stage":
        # The intermediate stage only prepares the prediction stage: `--epochs 0` (QAT alone) skips both.
        intermediate_epochs = cfg.intermediate_epochs if cfg.epochs > 0 else 0
        stages = [Stage("intermediate", intermediate_epochs, cfg.intermediate_lr or cfg.lr, True, False, False),
                  Stage("prediction", cfg.epochs, cfg.lr, False, True, True)]
    elif cfg.recipe == "joint":
        stages = [Stage("joint", cfg.epochs, cfg.lr, True, True, True)]
    else:
        stages = [Stage("prediction", cfg.epochs, cfg.lr, False, True, True)]
    if cfg.qat:  # the best float student, fine-tuned fake-quantized against the teacher's logits
        stages.append(Stage("qat", cfg.qat_epochs, cfg.qat_lr or cfg.lr / 5, False, True, True, qat=True))
    return stages


def _trim_vocabulary(student, train, cfg: DistillConfig, teacher_tokenizer) -> torch.Tensor | None:
    """Trim the student's vocabulary to the training texts' tokens, in place; returns the student id -> teacher id
    map the intermediate losses feed the teacher with (None when the student never shared its vocabulary)."""
    shared = same_vocabulary(student.tokenizer, teacher_tokenizer)
    original = len(student.tokenizer)
    trimmed = trim_vocabulary(student.tokenizer, count_tokens(student.tokenizer, train.text, train.text_pair),
                              cfg.trim_min_count)
    trim_embeddings(student.model, trimmed.kept_ids)
    student.tokenizer = trimmed.tokenizer
    student.meta = {**student.meta, "vocabulary": trimmed.describe(original, cfg.trim_min_count)}
    return trimmed.kept_ids if shared else None


def _stage_rows(stage, features: list[dict], split, cfg: DistillConfig, student, teacher_tokenizer,
                cross_tokenizers: bool) -> list[dict]:
    """The rows a stage trains on: for the intermediate stage the --intermediate-samples rows (a fixed sample, the
    same in every command) or all of them; with another tokenizer than the teacher's, an intermediate stage's rows
    also carry the teacher's tokens and their matches with the student's."""
    rows = sample_rows(len(features), cfg.intermediate_samples) if stage.name == "intermediate" else None
    chosen = features if rows is None else [features[i] for i in rows]
    if not (stage.intermediate and cross_tokenizers):
        return chosen
    extra = cross_tokenizer_features(student.tokenizer, teacher_tokenizer, split if rows is None else split.select(rows),
                                     cfg.max_length, add_special_tokens=student.add_special_tokens)
    return [{**f, **e} for f, e in zip(chosen, extra)]


def _linear(start: float, end: float | None, progress: float) -> float:
    return start if end is None else start + (end - start) * progress


def _validate(cfg: DistillConfig) -> DistillConfig:
    if cfg.recipe == "general":
        _validate_general(cfg)
    elif cfg.unlabeled:
        raise KdedgeError("--unlabeled is the text of --recipe general; to distil a task on your own text, add it "
                          "to a transfer set with `kdedge augment --unlabeled` and give --transfer")
    if cfg.student not in STUDENT_BUILDERS:
        raise KdedgeError(f"unknown --student '{cfg.student}' (known: {', '.join(STUDENT_BUILDERS)})")
    if cfg.recipe != "prediction" and cfg.student != "tinybert":
        raise KdedgeError(f"--recipe {cfg.recipe} matches intermediate layers and needs --student tinybert")
    if cfg.max_vocab is not None and not ((cfg.student == "bilstm" and cfg.word_vectors) or cfg.student == "ngram"):
        raise KdedgeError("--max-vocab caps a word-level vocabulary (--student ngram, or --student bilstm "
                          "--word-vectors ...); a transformer's WordPiece vocabulary shrinks with --trim-vocab")
    if cfg.intermediate_samples is not None and cfg.recipe != "two-stage":
        raise KdedgeError("--intermediate-samples sizes the intermediate stage of --recipe two-stage; with --recipe "
                          f"{cfg.recipe} use --max-train-samples")
    if cfg.trim_vocab and cfg.student != "tinybert":
        raise KdedgeError("--trim-vocab trims a shared WordPiece vocabulary and needs --student tinybert; the BiLSTM's "
                          "word-level vocabulary comes from the training data (raise --min-word-freq to shrink it)")
    if cfg.qat and cfg.student != "tinybert":
        raise KdedgeError("--qat emulates the transformer int8 scheme and needs --student tinybert; export a BiLSTM "
                          "with --quantize dynamic (its LSTMs run on ONNX Runtime's int8 LSTM kernel)")
    if cfg.intermediate_teacher:
        _validate_intermediate_teacher(cfg)
    return dataclasses.replace(cfg, lr=cfg.lr or DEFAULT_LR[cfg.student])


def _validate_intermediate_teacher(cfg: DistillConfig) -> None:
    if cfg.recipe == "general":
        raise KdedgeError("--intermediate-teacher is for a task's run; --recipe general distils --teacher's encoder "
                          "itself: give the smaller model as --teacher there")
    if cfg.student != "tinybert":
        raise KdedgeError("--intermediate-teacher gives a transformer student its layers and needs --student tinybert")
    if cfg.init not in ("prune", "teacher-layers") and cfg.recipe not in ("two-stage", "joint"):
        raise KdedgeError(f"--intermediate-teacher has nothing to do with --init {cfg.init} and --recipe {cfg.recipe}: "
                          "use --init prune or teacher-layers (the student's layers come from it) or --recipe "
                          "two-stage or joint (the student's layers are matched to it)")


def _validate_general(cfg: DistillConfig) -> None:
    needs = [why for why, wrong in (
        ("--student tinybert", cfg.student != "tinybert"),
        ("--unlabeled text to distil on", not cfg.unlabeled),
        ("no --transfer (it distils the encoder on plain text; a task's run takes the transfer set)", cfg.transfer),
        ("no --qat, --trim-vocab or --eval-file (a task's run from --init pretrained:OUT does those)",
         cfg.qat or cfg.trim_vocab or cfg.eval_file),
    ) if wrong]
    if needs:
        raise KdedgeError(f"--recipe general needs {'; '.join(needs)}")


def distill_student(cfg: DistillConfig, on_evaluate: Callable[[float], None] | None = None) -> Path:
    """Distil and write the student folder; `on_evaluate` gets the selection metric after every evaluation."""
    cfg = _validate(cfg)
    if cfg.recipe == "general":
        return distill_general(cfg)
    with RunDir(cfg.out, overwrite=cfg.overwrite, resume=cfg.resume) as run:
        return _distill(cfg, run, on_evaluate)


def _distill(cfg: DistillConfig, run: RunDir, on_evaluate: Callable[[float], None] | None) -> Path:
    run.check_config(to_dict(cfg))
    data = load_task_data(cfg, train_optional=bool(cfg.transfer))  # a transfer set may be all the training rows
    task = data.task
    eval_sets = load_eval_sets(task, cfg, cfg.eval_file, cfg.max_eval_samples)
    if cfg.select_on != "dev" and cfg.select_on not in eval_sets:
        raise KdedgeError(f"--select-on {cfg.select_on}: no such set (known: {', '.join(['dev', *eval_sets])})")
    teacher, teacher_tokenizer = load_teacher(cfg.teacher, task)
    # the model the student's layers come from and are matched to: --teacher, or a smaller teacher assistant
    encoder, encoder_tokenizer = (load_teacher(cfg.intermediate_teacher, task) if cfg.intermediate_teacher
                                  else (teacher, teacher_tokenizer))
    transfer_logits, teacher_max_length = None, _teacher_max_length(cfg, teacher_tokenizer)
    if cfg.transfer:
        data, transfer_logits, teacher_max_length = _with_transfer_set(cfg, data, teacher)

    set_seed(cfg.seed)
    student = STUDENT_BUILDERS[cfg.student](cfg, task, encoder, encoder_tokenizer, data.train)
    student.meta = {**student.meta, "task": task.to_dict(), "max_length": cfg.max_length}
    teacher_ids = _trim_vocabulary(student, data.train, cfg, encoder_tokenizer) if cfg.trim_vocab else None
    # a student with its own tokenizer (not a trimmed copy of the teacher's): layers matched by character offsets
    cross_tokenizers = (cfg.student == "tinybert" and teacher_ids is None
                        and not same_vocabulary(student.tokenizer, encoder_tokenizer))

    accelerator = make_accelerator(cfg.mixed_precision)
    t0 = time.time()
    # the teacher reads as many of its tokens as it read when it labelled the transfer set
    common = dict(max_length=teacher_max_length, batch_size=cfg.eval_batch_size, cache_dir=cfg.cache_dir,
                  accelerator=accelerator)
    if transfer_logits is None:
        train_logits, cache_path = teacher_logits(teacher, teacher_tokenizer, data.train, **common)
    else:
        train_logits, cache_path = transfer_logits, Path(cfg.transfer)
    dev_logits, _ = teacher_logits(teacher, teacher_tokenizer, data.dev, **common)
    teacher_dev = compute_metrics(task, dev_logits, data.dev.labels)
    teacher_on_sets = {name: compute_metrics(task, teacher_logits(teacher, teacher_tokenizer, split, **common)[0],
                                             split.labels) for name, split in eval_sets.items()}
    teacher_time = time.time() - t0
    teacher_id = {"name": cfg.teacher, "sha256_weights": model_fingerprint(teacher)}
    encoder_id = ({"intermediate_teacher": {"name": cfg.intermediate_teacher,
                                            "sha256_weights": model_fingerprint(encoder)}}
                  if cfg.intermediate_teacher else {})

    def features(split):
        return encode(student.tokenizer, split, cfg.max_length, siamese=student.siamese,
                      add_special_tokens=student.add_special_tokens)

    train_features = features(data.train)
    for f, logits in zip(train_features, train_logits):
        f["teacher_logits"] = logits
    dev_features = features(data.dev)
    eval_features = {name: features(split) for name, split in eval_sets.items()}

    prediction = PredictionDistillLoss(task, cfg.soft_loss, cfg.alpha, cfg.temperature)
    pairs = None
    if cfg.recipe != "prediction":
        pairs = resolve_mapping(cfg.mapping, encoder.config.num_hidden_layers, student.model.config.num_hidden_layers,
                                parse_layers(cfg.layer_map))
        encoder.to(accelerator.device)

    def schedule(progress: float) -> dict:
        return {"temperature": _linear(cfg.temperature, cfg.temperature_end, progress),
                "alpha": _linear(cfg.alpha, cfg.alpha_end, progress)}

    best, state, stage_log, before_qat = {}, None, [], None
    stages = plan_stages(cfg)
    for index, stage in enumerate(stages):
        weights_dir = run.work / f"stage-{stage.name}"
        if stage.epochs == 0 and index < len(stages) - 1:  # e.g. QAT alone on an already distilled student
            continue
        if stage.qat:
            before_qat = _dev_metrics(student, dev_features, cfg, task)
            prepare_qat(student.model)
            student.meta = {**student.meta, "qat": scheme_of(student.model)}
        if (weights_dir / "done").exists():  # finished before an interruption
            student.model.load_state_dict(load_file(weights_dir / "model.safetensors"))
            stage_log.append(read_json(weights_dir / "result.json"))
            continue
        opts = dataclasses.replace(cfg, epochs=stage.epochs, lr=stage.lr)
        set_seed(cfg.seed)  # the projection and mapping weights start the same whatever ran before
        if stage.intermediate:
            model = IntermediateDistiller(student.model, encoder, pairs, loss_weights(cfg, stage.prediction),
                                          cfg.hidden_loss, cfg.attention_loss, prediction if stage.prediction else None,
                                          teacher_ids=teacher_ids,
                                          teacher_pad_token_id=(encoder_tokenizer.pad_token_id or 0) if cross_tokenizers
                                          else None)
            loss_fn = lambda m, b, p: m(b, **schedule(p))[0]  # noqa: E731
            logits_fn = lambda m, b: student.logits(_unwrap(m).student, b)  # noqa: E731
            save_model = lambda m: m.student  # noqa: E731
        else:
            model = student.model
            loss_fn = lambda m, b, p: prediction(student.logits(m, b), b["teacher_logits"], b["labels"],  # noqa: E731
                                                 **schedule(p))
            logits_fn = student.logits
            save_model = lambda m: m  # noqa: E731
        stage_features = _stage_rows(stage, train_features, data.train, cfg, student, encoder_tokenizer, cross_tokenizers)
        best, state = train(opts, run, TrainJob(
            model, stage_features, dev_features,
            pad_token_id=student.tokenizer.pad_token_id, loss_fn=loss_fn, logits_fn=logits_fn,
            metrics_fn=lambda logits, labels: compute_metrics(task, logits, labels),
            main_metric=task.main_metric,
            save_fn=lambda m, path: save_student(student, path, model=save_model(m)),
            stage=stage.name if len(stages) > 1 else "", name=f"{cfg.student} {stage.name}",
            evaluate_dev=stage.evaluate,
            lr_overrides={IntermediateDistiller.MAPPING_PREFIX: cfg.mapping_lr} if stage.intermediate else {},
            eval_sets=eval_features, select_on=cfg.select_on, on_evaluate=on_evaluate,
            evaluate_start=stage.qat,  # QAT keeps the fake-quantized start if no step of it beats it
        ), accelerator)
        result = {"stage": stage.name, "steps": state.global_step, "train_time_s": round(state.train_time_s, 2),
                  "dev": best or None}
        stage_log.append(result)
        if index < len(stages) - 1:  # hand the stage's result (its best checkpoint, if any) to the next stage
            if stage.evaluate:
                best_model = student.architecture.load(run.best_dir, student.meta)
                student.model.load_state_dict(best_model.state_dict())
            weights_dir.mkdir(exist_ok=True)
            save_file({k: v.detach().cpu().contiguous() for k, v in student.model.state_dict().items()},
                      weights_dir / "model.safetensors")
            write_json(weights_dir / "result.json", result)
            (weights_dir / "done").touch()
    del teacher, encoder

    main = task.main_metric
    metrics = {
        "dev": best,
        "teacher_dev": teacher_dev,
        "retention": best[main] / teacher_dev[main] if teacher_dev[main] else None,
        **({"eval": _on_sets(run, teacher_on_sets, main)} if eval_sets else {}),
        "selected_on": cfg.select_on,
        "best_step": state.best_step if state else None,
        "steps": state.global_step if state else None,
        "stages": stage_log,
        **({"dev_before_qat": before_qat} if cfg.qat else {}),
        "train_time_s": round(sum(s["train_time_s"] for s in stage_log), 2),
        "teacher_logits_time_s": round(teacher_time, 2),
        "parameters": sum(p.numel() for p in student.model.parameters()),
    }
    write_json(run.work / "metrics.json", metrics)
    write_json(run.work / "manifest.json", manifest(
        "distill", to_dict(cfg), inputs={**data.describe(), "eval_sets": describe_sets(eval_sets), "teacher": teacher_id,
                                         **encoder_id, "teacher_logits_cache": str(cache_path)},
        metrics=metrics, wall_time_s=metrics["train_time_s"] + teacher_time,
        extra={"task": task.to_dict(), "student": student.meta,
               "layer_mapping": [p.describe() for p in pairs] if pairs else None},
    ))
    return run.finalize()


def _teacher_max_length(cfg: DistillConfig, tokenizer) -> int:
    """How many of its tokens the teacher reads to label this run's rows (without a transfer set): --max-length, or
    for a student whose --max-length counts words (the n-gram student) at most what the teacher's tokenizer says the
    teacher can read (512 for BERT-base-class models), since a long text's words may need more tokens than that."""
    if ARCHITECTURES[cfg.student].length_in_words:
        return min(cfg.max_length, tokenizer.model_max_length)
    return cfg.max_length


def _with_transfer_set(cfg: DistillConfig, data, teacher):
    """Train on a `kdedge augment` transfer set: its rows (gold labels where known), its stored logits, which must
    come from this teacher and task (and max length, for a student that reads the teacher's tokens), and the max
    length the teacher labelled it at."""
    from kdedge.data.transfer import load_transfer_set

    split, logits, transfer = load_transfer_set(cfg.transfer, data.task.is_regression)
    labelled_by = transfer["inputs"]["teacher"]["sha256_weights"]
    mismatches = [what for what, ok in (
        (f"task {transfer['task']['name']} (not {data.task.name})", transfer["task"]["name"] == data.task.name),
        (f"teacher weights {labelled_by[:12]}… (not --teacher's {model_fingerprint(teacher)[:12]}…)",
         labelled_by == model_fingerprint(teacher)),
        (f"max length {transfer['max_length']} (not {cfg.max_length})",
         transfer["max_length"] == cfg.max_length or ARCHITECTURES[cfg.student].length_in_words),
    ) if not ok]
    if mismatches:
        raise KdedgeError(f"--transfer {cfg.transfer} was built for {'; '.join(mismatches)}: rebuild it with "
                          "`kdedge augment` for this teacher and task, or change the options")
    if (rows := sample_rows(len(split), cfg.max_train_samples)) is not None:
        split, logits = split.select(rows), logits[rows]
    return dataclasses.replace(data, train=split), logits, transfer["max_length"]


def _on_sets(run: RunDir, teacher_on_sets: dict, main: str) -> dict:
    """The best checkpoint's metrics on each evaluation set, with the teacher's and the retention."""
    student_on_sets = read_json(run.best_dir / "metrics.json").get("eval", {})
    return {name: {"student": student_on_sets.get(name), "teacher": teacher,
                   "retention": student_on_sets[name][main] / teacher[main]
                   if name in student_on_sets and teacher[main] else None}
            for name, teacher in teacher_on_sets.items()}


def _dev_metrics(student: Student, dev_features: list[dict], cfg: DistillConfig, task) -> dict:
    loader, order = eval_loader(dev_features, cfg.eval_batch_size, student.tokenizer.pad_token_id)
    labels = [f["labels"] for f in dev_features]
    return compute_metrics(task, predict_logits(student.model, loader, order, student.logits), labels)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "module", model)
