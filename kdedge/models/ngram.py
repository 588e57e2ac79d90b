"""The bag-of-n-grams student (fastText's architecture, Joulin et al. 2017): the embeddings of a text's word ids and
hashed n-gram ids (kdedge_runtime.ngram computes them, outside the graph) averaged over the ids present, optionally
ReLU hidden layers, then logits.

Pairs use one shared (siamese) encoder and the features [u, v, |u - v|, u * v], as the BiLSTM does. The mean is a
masked sum divided by the count (at least 1: a text with no known id is the zero vector), which exports to ONNX as
Gather, Mul, ReduceSum and Div: the embedding table is a Gather's constant, so int8 export stores it per row.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from kdedge.models.siamese import SiameseClassifier


@dataclass
class NgramConfig:
    vocab_size: int
    num_labels: int
    embedding_dim: int = 50
    hidden: int = 0  # 0: the averaged embedding goes straight to the logits, as in fastText
    hidden_layers: int = 1  # how many hidden layers of that width (with hidden 0: none)
    dropout: float = 0.1
    # training only: each id of a text is left out of its mean with this probability (DAN's word dropout, Iyyer et
    # al. 2015), so that no single word or n-gram decides a label; the exported graph never drops
    word_dropout: float = 0.0
    pad_token_id: int = 0
    pair: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


class NgramStudent(SiameseClassifier):
    def __init__(self, config: NgramConfig):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=config.pad_token_id)
        bound = 1.0 / config.embedding_dim  # fastText's initialisation: small, so that a long text's mean starts small
        with torch.no_grad():
            self.embedding.weight.uniform_(-bound, bound)
            self.embedding.weight[config.pad_token_id].zero_()
        self.dropout = nn.Dropout(config.dropout)
        features = config.embedding_dim * (4 if config.pair else 1)
        layers: list[nn.Module] = []
        for _ in range(config.hidden_layers if config.hidden else 0):
            layers += [nn.Linear(features, config.hidden), nn.ReLU(), nn.Dropout(config.dropout)]
            features = config.hidden
        self.classifier = nn.Sequential(*layers, nn.Linear(features, config.num_labels))

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        if self.training and self.config.word_dropout:
            keep = torch.rand(input_ids.shape, device=input_ids.device) >= self.config.word_dropout
            if attention_mask is None:
                attention_mask = input_ids > self.config.pad_token_id
            attention_mask = attention_mask.bool() & keep
        if attention_mask is None:  # ids alone (the exported graph): the padding id's row is zero (padding_idx keeps
            # it so), so the plain sum is the masked sum; the n-gram rules pad with 0 and give every feature an id
            # above it (one Greater node: ONNX has no not-equal)
            total = self.embedding(input_ids).sum(1)
            count = (input_ids > self.config.pad_token_id).to(total.dtype).sum(1, keepdim=True)
        else:
            mask = attention_mask.unsqueeze(-1).to(self.embedding.weight.dtype)
            total, count = (self.embedding(input_ids) * mask).sum(1), mask.sum(1)
        return self.dropout(total / count.clamp(min=1.0))
