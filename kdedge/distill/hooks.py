"""Forward hooks that read pre-softmax attention scores out of BERT-style self-attention modules.

transformers returns attention *probabilities* at best; TinyBERT's attention loss wants the scores
before the softmax. A hook on each layer's query and key projections rebuilds them exactly:
scores = Q K^T / sqrt(d_head), per head.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from kdedge.errors import KdedgeError


def self_attention_modules(model: nn.Module) -> list[nn.Module]:
    found = [m for m in model.modules()
             if isinstance(getattr(m, "query", None), nn.Linear) and isinstance(getattr(m, "key", None), nn.Linear)
             and hasattr(m, "num_attention_heads")]
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
        self._handles = []
        for i, module in enumerate(self.modules):
            self._handles.append(module.query.register_forward_hook(self._store(self._q, i)))
            self._handles.append(module.key.register_forward_hook(self._store(self._k, i)))

    @staticmethod
    def _store(target: dict, index: int):
        def hook(module, inputs, output):
            target[index] = output
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
            out.append(q @ k.transpose(-1, -2) / math.sqrt(q.size(-1)))
        return out

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
