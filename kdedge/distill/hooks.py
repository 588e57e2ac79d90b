"""Forward hooks that read pre-softmax attention scores out of BERT-style self-attention modules.

transformers returns attention *probabilities* at best; TinyBERT's attention loss wants the scores
before the softmax. A hook on each layer's query and key projections rebuilds them exactly:
scores = Q K^T / sqrt(d_head), per head, plus the relative position bias MPNet adds (read off the arguments of its
self-attention, where its encoder passes it).
"""

from __future__ import annotations

import inspect
import math

import torch
from torch import nn

from kdedge.errors import KdedgeError


# Query and key projection names -> the name of the argument that carries a score bias (None: no bias): BERT and
# RoBERTa's self-attention, MPNet's (its encoder passes `position_bias`; where among the arguments depends on the
# transformers release, so it is found by name).
PROJECTIONS = {("query", "key"): None, ("q", "k"): "position_bias"}


def _projections(module: nn.Module):
    for (q, k), bias_arg in PROJECTIONS.items():
        if isinstance(getattr(module, q, None), nn.Linear) and isinstance(getattr(module, k, None), nn.Linear) \
                and hasattr(module, "num_attention_heads"):
            return getattr(module, q), getattr(module, k), bias_arg
    return None


def self_attention_modules(model: nn.Module) -> list[nn.Module]:
    found = [m for m in model.modules() if _projections(m) is not None]
    if not found:
        raise KdedgeError(
            f"{type(model).__name__} has no BERT-style self-attention (query/key projections), so attention "
            "distillation cannot read its scores; use --w-att 0"
        )
    return found


class AttentionScores:
    """Records Q and K of every layer during a forward pass; `scores()` gives (batch, heads, seq, seq) per layer."""

    def __init__(self, model: nn.Module):
        self.modules = self_attention_modules(model)
        self._q: dict[int, torch.Tensor] = {}
        self._k: dict[int, torch.Tensor] = {}
        self._bias: dict[int, torch.Tensor] = {}
        self._handles = []
        for i, module in enumerate(self.modules):
            query, key, bias_arg = _projections(module)
            self._handles.append(query.register_forward_hook(self._store(self._q, i)))
            self._handles.append(key.register_forward_hook(self._store(self._k, i)))
            if bias_arg is not None:
                self._handles.append(module.register_forward_pre_hook(self._store_bias(i, module, bias_arg),
                                                                   with_kwargs=True))

    @staticmethod
    def _store(target: dict, index: int):
        def hook(module, inputs, output):
            target[index] = output
        return hook

    def _store_bias(self, index: int, module: nn.Module, name: str):
        signature = inspect.signature(module.forward)  # once: the hook runs in every forward pass

        def hook(module, args, kwargs):
            bias = signature.bind_partial(*args, **kwargs).arguments.get(name)
            if bias is not None:
                self._bias[index] = bias
        return hook

    @property
    def num_heads(self) -> int:
        return self.modules[0].num_attention_heads

    def scores(self) -> list[torch.Tensor]:
        out = []
        for i, module in enumerate(self.modules):
            q, k = self._q.pop(i), self._k.pop(i)
            b, t, _ = q.shape
            h = module.num_attention_heads
            q = q.view(b, t, h, -1).transpose(1, 2)
            k = k.view(b, t, h, -1).transpose(1, 2)
            scores = q @ k.transpose(-1, -2) / math.sqrt(q.size(-1))
            bias = self._bias.pop(i, None)
            out.append(scores if bias is None else scores + bias)
        return out

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
