"""What the word-level students share for pair tasks: each text encoded on its own by the same encoder, then the
classifier reads [u, v, |u - v|, u * v] (Conneau et al. 2017's pair features, as Tang et al. 2019's BiLSTM does)."""

from __future__ import annotations

import torch
from torch import nn


class SiameseClassifier(nn.Module):
    """A student with `encode(input_ids, attention_mask)` (one text -> one vector), a `classifier` and a
    `config.pair`; it classifies a text, or a pair from both texts' vectors."""

    def forward(self, input_ids, attention_mask, input_ids_b=None, attention_mask_b=None) -> torch.Tensor:
        u = self.encode(input_ids, attention_mask)
        if self.config.pair:
            v = self.encode(input_ids_b, attention_mask_b)
            u = torch.cat([u, v, (u - v).abs(), u * v], dim=-1)
        return self.classifier(u)
