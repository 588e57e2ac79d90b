"""Intermediate-layer distillation (TinyBERT): embedding, hidden-state and attention losses through a
layer mapping, plus optionally the prediction layer. The teacher rides along (frozen, not saved); the
learned projection and learnable mapping weights are trained with the student but not exported. A teacher with
another tokenizer reads its own tokens and its states are matched to the student's by character offsets
(kdedge.distill.align): embedding and hidden-state losses only."""

from __future__ import annotations

import torch
from torch import nn

from kdedge.data.batching import hf_inputs
from kdedge.distill.align import aligned, teacher_inputs
from kdedge.distill.hooks import AttentionScores
from kdedge.distill.losses import ATTENTION_LOSSES, HIDDEN_LOSSES, PredictionDistillLoss
from kdedge.errors import KdedgeError
from kdedge.students.mapping import ACROSS_TOKENIZERS, LayerPair, LossWeights


class IntermediateDistiller(nn.Module):
    MAPPING_PREFIX = "mapping_logits"

    def __init__(self, student: nn.Module, teacher: nn.Module, pairs: list[LayerPair], weights: LossWeights,
                 hidden_loss: str = "mse", attention_loss: str = "mse",
                 prediction: PredictionDistillLoss | None = None, teacher_ids: torch.Tensor | None = None,
                 teacher_pad_token_id: int | None = None):
        super().__init__()
        if teacher_pad_token_id is not None and weights.att:
            raise KdedgeError(ACROSS_TOKENIZERS)
        self.student = student
        self.teacher_ids = teacher_ids  # a trimmed student's ids -> the teacher's (None: the same vocabulary)
        self.teacher_pad_token_id = teacher_pad_token_id  # set: the teacher reads its own tokens (another tokenizer)
        self._teacher = [teacher.eval().requires_grad_(False)]  # a list: not a submodule, never saved or trained
        self.pairs = pairs
        self.weights = weights
        self.hidden_loss = HIDDEN_LOSSES[hidden_loss]
        self.attention_loss = ATTENTION_LOSSES[attention_loss]
        self.prediction = prediction
        d_s, d_t = student.config.hidden_size, teacher.config.hidden_size
        self.projection = nn.Linear(d_s, d_t) if d_s != d_t else nn.Identity()
        self.mapping_logits = nn.ParameterList(
            [nn.Parameter(torch.zeros(len(p.teacher))) for p in pairs if p.learnable])
        self._learnable_index = {}
        for p in pairs:
            if p.learnable:
                self._learnable_index[p.student] = len(self._learnable_index)
        self._student_att = AttentionScores(student) if weights.att else None
        self._teacher_att = AttentionScores(teacher) if weights.att else None
        # Different head counts cannot be matched head by head: compare head-averaged attention then.
        self.average_heads = bool(weights.att) and self._student_att.num_heads != self._teacher_att.num_heads

    @property
    def teacher(self) -> nn.Module:
        return self._teacher[0]

    def to(self, *args, **kwargs):
        self.teacher.to(*args, **kwargs)
        return super().to(*args, **kwargs)

    def block_weights(self, pair: LayerPair, device) -> torch.Tensor:
        if pair.learnable:
            return torch.softmax(self.mapping_logits[self._learnable_index[pair.student]], dim=0)
        return torch.full((len(pair.teacher),), 1.0 / len(pair.teacher), device=device)

    def _combine(self, layers: list[torch.Tensor], pair: LayerPair, offset: int) -> torch.Tensor:
        w = self.block_weights(pair, layers[0].device)
        return sum(w[j] * layers[t - offset] for j, t in enumerate(pair.teacher))

    def forward(self, batch: dict, temperature: float | None = None, alpha: float | None = None) -> tuple:
        inputs = hf_inputs(batch)
        mask = batch["attention_mask"]
        with torch.no_grad():
            if self.teacher_pad_token_id is not None:
                t_inputs = teacher_inputs(batch, self.teacher_pad_token_id)
            elif self.teacher_ids is not None:
                t_inputs = {**inputs, "input_ids": self.teacher_ids.to(inputs["input_ids"].device)[inputs["input_ids"]]}
            else:
                t_inputs = inputs
            t_out = self.teacher(**t_inputs, output_hidden_states=True)
            t_scores = self._teacher_att.scores() if self._teacher_att else None
        s_out = self.student(**inputs, output_hidden_states=True)
        s_scores = self._student_att.scores() if self._student_att else None

        def on_student_tokens(t_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            if self.teacher_pad_token_id is None:
                return t_states, mask
            t_states, matched = aligned(t_states, batch, mask.size(1))
            return t_states, mask * matched

        w = self.weights
        parts = {}
        zero = s_out.logits.sum() * 0.0
        if w.emb:
            parts["emb"] = self.hidden_loss(self.projection(s_out.hidden_states[0]),
                                            *on_student_tokens(t_out.hidden_states[0]))
        if w.hid:
            parts["hid"] = sum((self.hidden_loss(self.projection(s_out.hidden_states[p.student]),
                                                 *on_student_tokens(self._combine(t_out.hidden_states, p, 0)))
                                for p in self.pairs), zero)
        if w.att:
            total = zero
            for p in self.pairs:
                s_att, t_att = s_scores[p.student - 1], self._combine(t_scores, p, 1)
                if self.average_heads:
                    s_att, t_att = s_att.mean(1, keepdim=True), t_att.mean(1, keepdim=True)
                total = total + self.attention_loss(s_att, t_att, mask)
            parts["att"] = total
        if w.pred and self.prediction is not None:
            pred = self.prediction
            parts["pred"] = pred(s_out.logits, t_out.logits, batch["labels"], temperature=temperature, alpha=alpha)
        loss = sum(getattr(w, name) * value for name, value in parts.items())
        return loss, {k: float(v.detach()) for k, v in parts.items()}
