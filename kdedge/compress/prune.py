"""Structured pruning of a BERT-class classifier into a smaller one: the chosen layers, and in every one of them the
most important heads (and value dimensions within a head), feed-forward neurons and hidden channels, with their
weights copied. What is kept stays in its original order, so keeping everything reproduces the model exactly.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoModelForSequenceClassification

from kdedge.compress.importance import Importance, bert_encoder
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
    new_dim = hidden // heads  # the shape was checked where it was chosen (models.tinybert.student_shape)
    kept_layers = [t - 1 for t in layers]
    keep_heads, qkv_rows, neurons = [], [], []
    for t in kept_layers:
        chosen = _top(importance.heads[t], heads).tolist()
        dims = importance.head_dims[t].view(c.num_attention_heads, head_dim)
        keep_heads.append(chosen)
        qkv_rows.append(torch.cat([h * head_dim + _top(dims[h], new_dim) for h in chosen]))
        neurons.append(_top(importance.neurons[t], intermediate))
    return Keep(kept_layers, keep_heads, qkv_rows, neurons, _top(importance.hidden, hidden), new_dim)


def prune_classifier(model: nn.Module, keep: Keep) -> nn.Module:
    """A new classifier of the kept shape holding the kept weights (head and pooler included)."""
    base, layers = bert_encoder(model)
    c = model.config
    config = copy.deepcopy(c)
    config.update({"hidden_size": len(keep.hidden), "num_attention_heads": len(keep.heads[0]),
                   "intermediate_size": len(keep.neurons[0]), "num_hidden_layers": len(keep.layers),
                   "_name_or_path": ""})
    student = AutoModelForSequenceClassification.from_config(config)
    s_base, s_layers = bert_encoder(student)
    h = keep.hidden
    # Scores are q.k / sqrt(head width): a narrower head divides by less, so scale q to keep the teacher's scores.
    q_scale = math.sqrt(keep.head_dim / (c.hidden_size // c.num_attention_heads))
    with torch.no_grad():
        for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
            if hasattr(base.embeddings, name):
                getattr(s_base.embeddings, name).weight.copy_(getattr(base.embeddings, name).weight[:, h])
        _copy_norm(s_base.embeddings.LayerNorm, base.embeddings.LayerNorm, h)
        for s_layer, t, rows, neurons in zip(s_layers, keep.layers, keep.qkv_rows, keep.neurons):
            layer = layers[t]
            for name, scale in (("query", q_scale), ("key", 1.0), ("value", 1.0)):
                _copy_linear(getattr(s_layer.attention.self, name), getattr(layer.attention.self, name), rows, h,
                             scale)
            _copy_linear(s_layer.attention.output.dense, layer.attention.output.dense, h, rows)
            _copy_norm(s_layer.attention.output.LayerNorm, layer.attention.output.LayerNorm, h)
            _copy_linear(s_layer.intermediate.dense, layer.intermediate.dense, neurons, h)
            _copy_linear(s_layer.output.dense, layer.output.dense, h, neurons)
            _copy_norm(s_layer.output.LayerNorm, layer.output.LayerNorm, h)
        if getattr(base, "pooler", None) is not None and getattr(s_base, "pooler", None) is not None:
            _copy_linear(s_base.pooler.dense, base.pooler.dense, h, h)
        head, s_head = _classification_head(model), _classification_head(student)
        s_head.weight.copy_(head.weight[:, h])
        s_head.bias.copy_(head.bias)
    return student


def _copy_linear(dst: nn.Linear, src: nn.Linear, rows: torch.Tensor, cols: torch.Tensor, scale: float = 1.0) -> None:
    dst.weight.copy_(src.weight[rows][:, cols] * scale)
    if src.bias is not None:
        dst.bias.copy_(src.bias[rows] * scale)


def _copy_norm(dst: nn.LayerNorm, src: nn.LayerNorm, channels: torch.Tensor) -> None:
    dst.weight.copy_(src.weight[channels])
    dst.bias.copy_(src.bias[channels])


def _classification_head(model: nn.Module) -> nn.Linear:
    head = getattr(model, "classifier", None)
    if not isinstance(head, nn.Linear):
        raise KdedgeError(f"structured pruning needs a linear classification head on the pooled output; "
                          f"{type(model).__name__} has {type(head).__name__}")
    return head
