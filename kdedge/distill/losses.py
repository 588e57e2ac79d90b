"""Distillation losses, by name.

Soft losses compare student and teacher logits: `mse` on raw logits (Tang et al. 2019), `kl` between
temperature-softened distributions multiplied by T^2 so the gradient scale does not shrink as T grows
(Hinton et al. 2015, §2).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from kdedge.data.tasks import Task
from kdedge.data.transfer import IGNORE_INDEX


def mse_logits(student: torch.Tensor, teacher: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    return F.mse_loss(student.float(), teacher.float())


def kl_with_t2(student: torch.Tensor, teacher: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    t = temperature
    log_p_student = F.log_softmax(student.float() / t, dim=-1)
    log_p_teacher = F.log_softmax(teacher.float() / t, dim=-1)
    return F.kl_div(log_p_student, log_p_teacher, log_target=True, reduction="batchmean") * (t * t)


SOFT_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]] = {
    "mse": mse_logits,
    "kl": kl_with_t2,
}


class PredictionDistillLoss:
    """alpha * hard(gold) + (1 - alpha) * soft(teacher). Regression: MSE to the gold score and to the
    teacher's score. Rows without a gold label (IGNORE_INDEX, or NaN for scores) only get the soft term."""

    def __init__(self, task: Task, soft_loss: str = "mse", alpha: float = 0.0, temperature: float = 1.0):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError("alpha must be in [0, 1]")
        self.regression = task.is_regression
        self.soft = mse_logits if self.regression else SOFT_LOSSES[soft_loss]
        self.alpha = alpha
        self.temperature = temperature

    def hard(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.regression:
            scores, labels = logits.float().view(-1), labels.float().view(-1)
            keep = ~torch.isnan(labels)
            return F.mse_loss(scores[keep], labels[keep]) if keep.any() else scores.sum() * 0.0
        if (labels == IGNORE_INDEX).all():
            return logits.sum() * 0.0
        return F.cross_entropy(logits.float(), labels.long(), ignore_index=IGNORE_INDEX)

    def __call__(self, logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                 temperature: float | None = None, alpha: float | None = None) -> torch.Tensor:
        """`temperature`/`alpha` override the constructor's values (for schedules)."""
        t = self.temperature if temperature is None else temperature
        a = self.alpha if alpha is None else alpha
        loss = (1.0 - a) * self.soft(logits, teacher_logits, t)
        if a > 0:
            loss = loss + a * self.hard(logits, labels)
        return loss


def soft_cross_entropy(student: torch.Tensor, teacher: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """TinyBERT's prediction-layer loss: cross-entropy to the teacher's softened distribution, times T^2."""
    t = temperature
    p_teacher = F.softmax(teacher.float() / t, dim=-1)
    return -(p_teacher * F.log_softmax(student.float() / t, dim=-1)).sum(-1).mean() * (t * t)


SOFT_LOSSES["soft_ce"] = soft_cross_entropy


# ----------------------------------------------------------------------------- intermediate layers
# Every loss below takes the attention mask (batch, seq) and ignores padding positions entirely.

def hidden_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MSE over the hidden units of real tokens. student/teacher: (batch, seq, dim)."""
    m = mask.unsqueeze(-1).to(student.dtype)
    return ((student - teacher) ** 2 * m).sum() / (m.sum() * student.size(-1)).clamp(min=1)


def hidden_cosine(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """1 - cosine similarity per real token, averaged."""
    m = mask.to(student.dtype)
    cos = F.cosine_similarity(student, teacher, dim=-1)
    return ((1.0 - cos) * m).sum() / m.sum().clamp(min=1)


def _pair_mask(mask: torch.Tensor) -> torch.Tensor:
    """(batch, 1, query, key) mask of query/key pairs that are both real tokens."""
    m = mask.to(torch.bool)
    return (m[:, None, :, None] & m[:, None, None, :])


def attention_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """TinyBERT: MSE on pre-softmax scores (batch, heads, query, key) over real query/key pairs."""
    valid = _pair_mask(mask).expand_as(student).to(student.dtype)
    return ((student - teacher) ** 2 * valid).sum() / valid.sum().clamp(min=1)


def attention_kl(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) between the attention distributions of each real query over real keys."""
    key_pad = ~mask.to(torch.bool)[:, None, None, :]
    log_s = F.log_softmax(student.float().masked_fill(key_pad, -1e4), dim=-1)
    log_t = F.log_softmax(teacher.float().masked_fill(key_pad, -1e4), dim=-1)
    kl = (log_t.exp() * (log_t - log_s)).masked_fill(key_pad, 0.0).sum(-1)  # (batch, heads, query)
    rows = mask.to(kl.dtype)[:, None, :].expand_as(kl)
    return (kl * rows).sum() / rows.sum().clamp(min=1)


HIDDEN_LOSSES = {"mse": hidden_mse, "cosine": hidden_cosine}
ATTENTION_LOSSES = {"mse": attention_mse, "kl": attention_kl}
