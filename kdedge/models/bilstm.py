"""The BiLSTM student of Tang et al. 2019 ("Distilling Task-Specific Knowledge from BERT into Simple
Neural Networks"): embedding -> BiLSTM -> concatenated final states -> ReLU MLP -> logits.

Pairs use one shared (siamese) encoder and the features [u, v, |u - v|, u * v].

The backward direction is a second LSTM run over each sequence reversed *within its own length*,
so right-padding never reaches a final state. This gives exact results for every length in a padded
batch without `pack_padded_sequence`, and it exports to ONNX as plain LSTM + Gather ops.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from kdedge.models.siamese import SiameseClassifier


@dataclass
class BiLSTMConfig:
    vocab_size: int
    num_labels: int
    embedding_dim: int = 300
    lstm_hidden: int = 300
    mlp_hidden: int = 400
    dropout: float = 0.1
    pad_token_id: int = 0
    pair: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def _last_valid(outputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """outputs[b, lengths[b] - 1, :] for each b."""
    index = (lengths - 1).view(-1, 1, 1).expand(-1, 1, outputs.size(-1))
    return outputs.gather(1, index).squeeze(1)


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence's first `length` steps; padding positions stay where they are."""
    steps = torch.arange(x.size(1), device=x.device).unsqueeze(0)
    flipped = lengths.unsqueeze(1) - 1 - steps
    index = torch.where(flipped >= 0, flipped, steps)
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.size(-1)))


class BiLSTMStudent(SiameseClassifier):
    def __init__(self, config: BiLSTMConfig):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=config.pad_token_id)
        self.dropout = nn.Dropout(config.dropout)
        self.forward_lstm = nn.LSTM(config.embedding_dim, config.lstm_hidden, batch_first=True)
        self.backward_lstm = nn.LSTM(config.embedding_dim, config.lstm_hidden, batch_first=True)
        features = 2 * config.lstm_hidden * (4 if config.pair else 1)
        self.classifier = nn.Sequential(
            nn.Linear(features, config.mlp_hidden),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.mlp_hidden, config.num_labels),
        )

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        lengths = attention_mask.sum(1).clamp(min=1)  # an empty text reads its first (pad) position
        x = self.dropout(self.embedding(input_ids))
        forward_states, _ = self.forward_lstm(x)
        backward_states, _ = self.backward_lstm(reverse_within_length(x, lengths))
        return torch.cat([_last_valid(forward_states, lengths), _last_valid(backward_states, lengths)], dim=-1)
