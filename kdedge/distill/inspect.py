"""`kdedge inspect`: what a distillation config resolves to: layer pairs, projections and loss terms."""

from __future__ import annotations

import dataclasses

from transformers import AutoConfig

from kdedge.config import DistillConfig
from kdedge.distill.run import DEFAULT_LR, plan_stages
from kdedge.errors import KdedgeError
from kdedge.students.mapping import loss_weights, parse_layers, resolve_mapping
from kdedge.students.tinybert import student_shape


def _load_config(name: str):
    try:
        return AutoConfig.from_pretrained(name)
    except Exception as e:
        raise KdedgeError(f"cannot read the config of '{name}' ({type(e).__name__}: {e})") from None


def describe_distillation(cfg: DistillConfig) -> str:
    name = cfg.intermediate_teacher or cfg.teacher  # the model the student's layers come from and are matched to
    t = _load_config(name)
    role = "intermediate teacher" if cfg.intermediate_teacher else "teacher"
    lines = [f"{role}: {name} ({t.num_hidden_layers} layers, hidden {t.hidden_size}, {t.num_attention_heads} heads)"]
    if cfg.student != "tinybert":
        lines.append(f"student: {cfg.student} (prediction-layer distillation only: {cfg.soft_loss} on logits)")
        return "\n".join(lines)
    if cfg.init.startswith("pretrained:"):
        s = _load_config(cfg.init.split(":", 1)[1])
        layers, hidden, heads = s.num_hidden_layers, s.hidden_size, s.num_attention_heads
    else:  # refused here exactly as `kdedge distill` would refuse it
        layers = cfg.layers
        hidden, heads, _ = student_shape(cfg, t, same_width=cfg.init == "teacher-layers", pruned=cfg.init == "prune")
    lines.append(f"student: tinybert, {layers} layers, hidden {hidden}, {heads} heads, init {cfg.init}")
    if cfg.init == "prune":
        lines += _pruning_lines(cfg)
    pairs = resolve_mapping(cfg.mapping, t.num_hidden_layers, layers, parse_layers(cfg.layer_map))
    lines.append(f"mapping: {cfg.mapping}")
    lines.append("  student embeddings <- teacher embeddings")
    lines += [f"  {p.describe()}" for p in pairs]
    projection = f"through a learned {hidden}->{t.hidden_size} projection" if hidden != t.hidden_size else "no projection"
    heads_note = "per head" if heads == t.num_attention_heads else f"head-averaged ({heads} vs {t.num_attention_heads} heads)"
    lr = cfg.lr or DEFAULT_LR[cfg.student]
    lines.append(f"recipe: {cfg.recipe}")
    for stage in plan_stages(dataclasses.replace(cfg, lr=lr)):
        w = loss_weights(cfg, stage.prediction)
        terms = []
        if stage.intermediate:
            if w.emb:
                terms.append(f"{w.emb:g} x embedding {cfg.hidden_loss} ({projection})")
            if w.hid:
                terms.append(f"{w.hid:g} x hidden {cfg.hidden_loss} over {len(pairs)} layer pair(s) ({projection})")
            if w.att:
                terms.append(f"{w.att:g} x attention {cfg.attention_loss} over {len(pairs)} layer pair(s), {heads_note}")
        if stage.prediction:
            weight = f"{w.pred:g} x " if stage.intermediate else ""
            soft = cfg.soft_loss if cfg.soft_loss == "mse" else f"{cfg.soft_loss}(T={cfg.temperature:g}) x T^2"
            terms.append(f"{weight}[(1 - alpha) x {soft} + alpha x gold], alpha={cfg.alpha:g}")
        lines.append(f"  stage {stage.name}: {stage.epochs} epoch(s), lr {stage.lr:g}")
        lines += [f"    + {term}" for term in terms]
    return "\n".join(lines)


def _pruning_lines(cfg: DistillConfig) -> list[str]:
    """What `--init prune` would keep: it measures the teacher's importance on the task's training rows."""
    from kdedge.data import load_task_data
    from kdedge.models.teacher import load_teacher
    from kdedge.students.tinybert import pruning_plan

    data = load_task_data(cfg)
    teacher, tokenizer = load_teacher(cfg.intermediate_teacher or cfg.teacher, data.task)
    keep, importance = pruning_plan(cfg, data.task, teacher, tokenizer, data.train)
    kept = keep.describe(teacher.config)
    lines = [f"prune: importance measured on {importance.examples} training rows",
             "  layer block importance (1 - cos(in, out)): "
             + ", ".join(f"{i + 1}: {v:.4f}" for i, v in enumerate(importance.layers.tolist())),
             f"  keeps teacher layers {kept['layers']}; heads {kept['head_dim']} wide; FFN neurons {kept['neurons']}; "
             f"hidden channels {kept['hidden']}"]
    lines += [f"  layer {t}: heads {heads}" for t, heads in zip(kept["layers"], kept["heads"])]
    return lines
