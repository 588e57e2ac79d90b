"""TinyBERT-style transformer students: a BERT encoder built from a config, sharing the teacher's tokenizer.

Initialisation strategies, by name: `random`; `teacher-layers` (copy embeddings, the chosen teacher
layers and the pooler, as DistilBERT does; widths must match); `prune` (the chosen teacher layers, pruned to
the student's widths by importance on the task's data: kdedge/compress); `pretrained:<id or path>` (start
from a small pretrained encoder, e.g. a BERT-Tiny).
"""

from __future__ import annotations

import copy
import hashlib
import re
from pathlib import Path
from typing import Callable

import numpy as np
from transformers import AutoModelForSequenceClassification

from kdedge.compress.importance import Importance, measure_importance
from kdedge.compress.prune import plan_pruning, prune_classifier
from kdedge.data.batching import encode
from kdedge.data.tasks import Task
from kdedge.errors import KdedgeError
from kdedge.models.students import Student
from kdedge.models.teacher import load_tokenizer, model_fingerprint
from kdedge.models.teacher_cache import default_cache_dir
from kdedge.quiet import NEW_HEAD_NOISE, known_noise
from kdedge.students.mapping import ACROSS_TOKENIZERS, loss_weights, parse_layers, resolve_mapping
from kdedge.training import eval_loader

_LAYER_KEY = re.compile(r"^(.*\.layer\.)(\d+)(\..*)$")


def _head_kwargs(task: Task | None) -> dict:
    if task is None:  # task-agnostic distillation: the head is never trained, a task's run replaces it
        return {}
    if task.is_regression:
        return {"num_labels": 1, "problem_type": "regression"}
    return {"num_labels": task.num_labels, "problem_type": "single_label_classification",
            "id2label": dict(enumerate(task.label_names)), "label2id": {n: i for i, n in enumerate(task.label_names)}}


def _fewest_heads(hidden: int, head_dim: int) -> int:
    """The fewest heads that divide `hidden` and are no wider than `head_dim`: a pruned student keeps the teacher's
    head width where it can (224 of MiniLM's 32-wide heads: 7) and narrows its heads where it cannot (of 64: 4 of 56)."""
    return next(h for h in range(-(-hidden // head_dim), hidden + 1) if hidden % h == 0)


def student_shape(cfg, t, same_width: bool = False, pruned: bool = False) -> tuple[int, int, int]:
    """Hidden size, heads and feed-forward size of a student of teacher config `t`, refused unless buildable
    (`same_width`: the init copies teacher layers, so the widths must be the teacher's; `pruned`: the parts are
    the teacher's, so by default heads are at most the teacher's head width and the feed-forward layer its size)."""
    hidden = cfg.hidden or t.hidden_size
    teacher_head_dim = t.hidden_size // t.num_attention_heads
    heads = cfg.heads or (_fewest_heads(hidden, teacher_head_dim) if pruned else t.num_attention_heads)
    if hidden % heads:
        raise KdedgeError(f"--hidden {hidden} is not divisible by --heads {heads}")
    intermediate = cfg.intermediate or (t.intermediate_size if hidden == t.hidden_size else 4 * hidden)
    if pruned:
        intermediate = cfg.intermediate or min(intermediate, t.intermediate_size)
        if hidden > t.hidden_size or heads > t.num_attention_heads or intermediate > t.intermediate_size:
            raise KdedgeError(
                f"--init prune keeps parts of the teacher, so the student cannot be wider than it: hidden {hidden} "
                f"of {t.hidden_size}, heads {heads} of {t.num_attention_heads}, intermediate {intermediate} of "
                f"{t.intermediate_size}")
        if hidden // heads > teacher_head_dim:
            raise KdedgeError(
                f"--hidden {hidden} with --heads {heads} makes heads {hidden // heads} wide, wider than the "
                f"teacher's {teacher_head_dim}: use at least {-(-hidden // teacher_head_dim)} heads")
    if same_width and (hidden, heads, intermediate) != (t.hidden_size, t.num_attention_heads, t.intermediate_size):
        raise KdedgeError(
            f"--init teacher-layers copies teacher layers, so the student must have the teacher's widths "
            f"(hidden {t.hidden_size}, heads {t.num_attention_heads}, intermediate {t.intermediate_size}); "
            "drop --hidden/--heads/--intermediate or use --init random"
        )
    return hidden, heads, intermediate


def _student_config(cfg, task: Task, teacher, same_width: bool):
    t = teacher.config
    hidden, heads, intermediate = student_shape(cfg, t, same_width)
    config = copy.deepcopy(t)
    head = _head_kwargs(task)
    config.num_labels = head.pop("num_labels")
    config.update({**head, "hidden_size": hidden, "num_attention_heads": heads, "intermediate_size": intermediate,
                   "num_hidden_layers": cfg.layers, "architectures": None, "_name_or_path": ""})
    return config


def init_random(cfg, task, teacher, spec: str, **_):
    return AutoModelForSequenceClassification.from_config(_student_config(cfg, task, teacher, same_width=False)), None


def teacher_layer_choice(cfg, teacher) -> list[int]:
    chosen = parse_layers(cfg.init_layers)
    if chosen is None:
        pairs = resolve_mapping(cfg.mapping,
                                teacher.config.num_hidden_layers, cfg.layers, parse_layers(cfg.layer_map))
        chosen = [p.teacher[-1] for p in pairs]
    if len(chosen) != cfg.layers or not all(1 <= x <= teacher.config.num_hidden_layers for x in chosen):
        raise KdedgeError(f"--init-layers needs {cfg.layers} teacher layers in 1..{teacher.config.num_hidden_layers}")
    return chosen


def init_teacher_layers(cfg, task, teacher, spec: str, **_):
    """Copy embeddings, pooler and the chosen encoder layers (1-based) of the teacher; a fresh head."""
    model = AutoModelForSequenceClassification.from_config(_student_config(cfg, task, teacher, same_width=True))
    chosen = teacher_layer_choice(cfg, teacher)
    new_index = {t - 1: s for s, t in enumerate(chosen)}
    student_keys = set(model.state_dict())
    state = {}
    for key, value in teacher.state_dict().items():
        m = _LAYER_KEY.match(key)
        if m:
            if int(m.group(2)) not in new_index:
                continue
            key = f"{m.group(1)}{new_index[int(m.group(2))]}{m.group(3)}"
        if key in student_keys and "classifier" not in key:
            state[key] = value
    missing = [k for k in student_keys - set(state) if "classifier" not in k and "position_ids" not in k]
    if missing:
        raise KdedgeError(f"teacher-layers init could not find {missing[0]} in the teacher; use --init random")
    model.load_state_dict(state, strict=False)
    return model, {"teacher_layers": chosen}


def init_pretrained(cfg, task, teacher, spec: str, **_):
    name = spec.split(":", 1)[1]
    try:
        with known_noise(logs=NEW_HEAD_NOISE):
            model = AutoModelForSequenceClassification.from_pretrained(name, **_head_kwargs(task))
    except Exception as e:
        raise KdedgeError(f"--init {spec}: cannot load '{name}' ({type(e).__name__}: {e})") from None
    return model, {"pretrained": name}


def init_prune(cfg, task, teacher, spec: str, *, tokenizer, train, criterion: str = "taylor", **_):
    """Structured pruning of the teacher: the mapped layers (or --init-layers), and in each the heads, value
    dimensions, feed-forward neurons and hidden channels that matter most on a sample of the training rows."""
    if train is None:
        raise KdedgeError("--init prune measures importance on training rows, and none were given")
    keep, importance = pruning_plan(cfg, task, teacher, tokenizer, train, criterion)
    return prune_classifier(teacher, keep), {"pruned": {**keep.describe(teacher.config),
                                                        "importance": importance.to_dict()}}


def pruning_plan(cfg, task, teacher, tokenizer, train, criterion: str = "taylor"):
    """What `--init prune` keeps of the teacher for this config, and the importance it was ranked by
    (kdedge.compress.importance: `taylor` on the task's loss, `activation` without a task)."""
    hidden, heads, intermediate = student_shape(cfg, teacher.config, pruned=True)
    layers = teacher_layer_choice(cfg, teacher)
    importance = cached_importance(teacher, importance_batches(cfg, tokenizer, train),
                                   task is not None and task.is_regression, criterion, cfg.cache_dir)
    return plan_pruning(importance, teacher.config, layers, hidden, heads, intermediate), importance


def cached_importance(teacher, batches, regression: bool, criterion: str, cache_dir=None) -> Importance:
    """measure_importance, kept on disk by (the teacher's weights, the batches, the criterion): a resumed run, every
    `kdedge tune` trial of one seed and `distill` after `inspect` reuse it, where a base-size teacher's forward and
    backward passes over the sample took a resumed MPNet run on 2 CPU cores over 10 minutes."""
    key = hashlib.sha256(f"{model_fingerprint(teacher)}:{criterion}:{regression}".encode())
    for batch in batches:
        for name in sorted(batch):
            key.update(name.encode())
            key.update(batch[name].contiguous().numpy().tobytes())
    path = Path(cache_dir or default_cache_dir()) / "importance" / f"{key.hexdigest()[:40]}.safetensors"
    importance = Importance.load(path, teacher.config)
    if importance is None:
        importance = measure_importance(teacher, batches, regression, criterion)
        importance.save(path)
    return importance


def importance_batches(cfg, tokenizer, train):
    """`--prune-samples` training rows (a seeded sample), length-bucketed batches padded as for training."""
    rng = np.random.default_rng(cfg.seed)
    size = min(cfg.prune_samples, len(train))
    sample = train.select(np.sort(rng.choice(len(train), size=size, replace=False)))
    features = encode(tokenizer, sample, cfg.max_length)
    loader, _ = eval_loader(features, 32, tokenizer.pad_token_id)
    return loader


INITS: dict[str, Callable] = {"random": init_random, "teacher-layers": init_teacher_layers, "pretrained": init_pretrained,
                              "prune": init_prune}


def same_vocabulary(a, b) -> bool:
    return a.get_vocab() == b.get_vocab()


def build_tinybert(cfg, task: Task | None, teacher, teacher_tokenizer, train=None, criterion: str = "taylor") -> Student:
    """The student for `task`, or with `task` None for task-agnostic distillation (its head never trained; pruning
    then ranks the teacher's parts by `criterion` "activation", having no task loss to differentiate)."""
    kind = cfg.init.split(":", 1)[0]
    if kind not in INITS or (kind == "pretrained" and ":" not in cfg.init):
        raise KdedgeError(f"unknown --init '{cfg.init}' (use random, teacher-layers, prune or pretrained:<id or path>)")
    model, info = INITS[kind](cfg, task, teacher, cfg.init, tokenizer=teacher_tokenizer, train=train,
                              criterion=criterion)
    tokenizer = teacher_tokenizer
    if kind == "pretrained":
        tokenizer = load_tokenizer(cfg.init.split(":", 1)[1])
        if not same_vocabulary(tokenizer, teacher_tokenizer):
            if cfg.recipe != "prediction" and loss_weights(cfg, with_prediction=False).att:
                raise KdedgeError(ACROSS_TOKENIZERS)
        else:
            tokenizer = teacher_tokenizer
    if model.config.vocab_size < len(tokenizer):
        raise KdedgeError(f"the student's embedding table ({model.config.vocab_size}) is smaller than its tokenizer")
    c = model.config
    meta = {"architecture": "tinybert", "init": cfg.init, **(info or {}),
            "model": {"layers": c.num_hidden_layers, "hidden": c.hidden_size, "heads": c.num_attention_heads,
                      "intermediate": c.intermediate_size},
            "siamese": False, "add_special_tokens": True}
    return Student(model, tokenizer, meta)
