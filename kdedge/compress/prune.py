"""Structured pruning of a BERT-class classifier (BERT, RoBERTa, MPNet: kdedge.compress.layouts) into a smaller one:
the chosen layers, and in every one of them the most important heads (and value dimensions within a head),
feed-forward neurons and hidden channels, with their weights copied. What is kept stays in its original order, so
keeping everything reproduces the model exactly. Where a per-head table is shared by all layers (MPNet's relative
attention bias), every layer keeps the same heads: those most important over the kept layers.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoModelForSequenceClassification

from kdedge.compress.importance import Importance
from kdedge.compress.layouts import LAYOUTS, encoder_of
from kdedge.errors import KdedgeError


@dataclass
class Keep:
    """Indices kept (0-based, ascending): teacher layers; per kept layer its heads and the q/k/v rows of their
    dimensions; per kept layer its feed-forward neurons; hidden channels."""

    layers: list[int]
    heads: list[list[int]]
    qkv_rows: list[torch.Tensor]
    neurons: list[torch.Tensor]
    hidden: torch.Tensor
    head_dim: int

    def describe(self, teacher_config) -> dict:
        c = teacher_config
        return {"layers": [t + 1 for t in self.layers], "heads": [[h + 1 for h in hs] for hs in self.heads],
                "head_dim": f"{self.head_dim} of {c.hidden_size // c.num_attention_heads}",
                "neurons": f"{len(self.neurons[0])} of {c.intermediate_size} per layer",
                "hidden": f"{len(self.hidden)} of {c.hidden_size}"}


def _top(scores: torch.Tensor, k: int) -> torch.Tensor:
    """The k highest-scoring indices in ascending order (ties: the earlier index)."""
    order = torch.argsort(-scores, stable=True)[:k]
    return torch.sort(order).values


def plan_pruning(importance: Importance, teacher_config, layers: list[int], hidden: int, heads: int,
                 intermediate: int) -> Keep:
    """What to keep for a student of the given (buildable) shape; `layers` are 1-based teacher layers."""
    c = teacher_config
    head_dim = c.hidden_size // c.num_attention_heads
    new_dim = hidden // heads  # the shape was checked where it was chosen (students.tinybert.student_shape)
    kept_layers = [t - 1 for t in layers]
    shared = LAYOUTS[c.model_type].head_bias is not None
    everywhere = _top(importance.heads[kept_layers].sum(dim=0), heads).tolist()
    keep_heads, qkv_rows, neurons = [], [], []
    for t in kept_layers:
        chosen = everywhere if shared else _top(importance.heads[t], heads).tolist()
        dims = importance.head_dims[t].view(c.num_attention_heads, head_dim)
        keep_heads.append(chosen)
        qkv_rows.append(torch.cat([h * head_dim + _top(dims[h], new_dim) for h in chosen]))
        neurons.append(_top(importance.neurons[t], intermediate))
    return Keep(kept_layers, keep_heads, qkv_rows, neurons, _top(importance.hidden, hidden), new_dim)


def prune_classifier(model: nn.Module, keep: Keep) -> nn.Module:
    """A new classifier of the kept shape holding the kept weights (head and pooler included)."""
    teacher = encoder_of(model)
    c = model.config
    config = copy.deepcopy(c)
    config.update({"hidden_size": len(keep.hidden), "num_attention_heads": len(keep.heads[0]),
                   "intermediate_size": len(keep.neurons[0]), "num_hidden_layers": len(keep.layers),
                   "_name_or_path": ""})
    student = AutoModelForSequenceClassification.from_config(config)
    pruned = encoder_of(student)
    h = keep.hidden
    # Scores are q.k / sqrt(head width): a narrower head divides by less, so scale q to keep the teacher's scores.
    q_scale = math.sqrt(keep.head_dim / (c.hidden_size // c.num_attention_heads))
    base, s_base = teacher.base, pruned.base
    with torch.no_grad():
        for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
            if hasattr(base.embeddings, name):
                getattr(s_base.embeddings, name).weight.copy_(getattr(base.embeddings, name).weight[:, h])
        _copy_norm(s_base.embeddings.LayerNorm, base.embeddings.LayerNorm, h)
        for i, (t, rows, neurons) in enumerate(zip(keep.layers, keep.qkv_rows, keep.neurons)):
            for name, scale in (("q", q_scale), ("k", 1.0), ("v", 1.0)):
                _copy_linear(pruned(i, name), teacher(t, name), rows, h, scale)
            _copy_linear(pruned(i, "attention_out"), teacher(t, "attention_out"), h, rows)
            _copy_norm(pruned(i, "attention_norm"), teacher(t, "attention_norm"), h)
            _copy_linear(pruned(i, "ffn_in"), teacher(t, "ffn_in"), neurons, h)
            _copy_linear(pruned(i, "ffn_out"), teacher(t, "ffn_out"), h, neurons)
            _copy_norm(pruned(i, "ffn_norm"), teacher(t, "ffn_norm"), h)
        if teacher.head_bias is not None:  # the same heads in every layer (plan_pruning)
            pruned.head_bias.weight.copy_(teacher.head_bias.weight[:, keep.heads[0]])
        if getattr(base, "pooler", None) is not None and getattr(s_base, "pooler", None) is not None:
            _copy_linear(s_base.pooler.dense, base.pooler.dense, h, h)
        _copy_head(student, model, h)
    return student


def _copy_linear(dst: nn.Linear, src: nn.Linear, rows: torch.Tensor, cols: torch.Tensor, scale: float = 1.0) -> None:
    dst.weight.copy_(src.weight[rows][:, cols] * scale)
    if src.bias is not None:
        dst.bias.copy_(src.bias[rows] * scale)


def _copy_norm(dst: nn.LayerNorm, src: nn.LayerNorm, channels: torch.Tensor) -> None:
    dst.weight.copy_(src.weight[channels])
    dst.bias.copy_(src.bias[channels])


def _copy_head(student: nn.Module, model: nn.Module, h: torch.Tensor) -> None:
    """The classification head on the kept hidden channels: a linear layer on the pooled output (BERT), or a dense
    layer and a projection on the first token (RoBERTa, MPNet)."""
    head, s_head = getattr(model, "classifier", None), getattr(student, "classifier", None)
    if isinstance(head, nn.Linear):
        s_head.weight.copy_(head.weight[:, h])
        s_head.bias.copy_(head.bias)
    elif isinstance(getattr(head, "dense", None), nn.Linear) and isinstance(getattr(head, "out_proj", None), nn.Linear):
        _copy_linear(s_head.dense, head.dense, h, h)
        s_head.out_proj.weight.copy_(head.out_proj.weight[:, h])
        s_head.out_proj.bias.copy_(head.out_proj.bias)
    else:
        raise KdedgeError(f"structured pruning needs a linear classification head, or a dense layer and a projection; "
                          f"{type(model).__name__} has {type(head).__name__}")
