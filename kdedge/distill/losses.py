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

IGNORE_INDEX = -100  # a transfer-set row without a gold label


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

    def __call__(self, logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        loss = (1.0 - self.alpha) * self.soft(logits, teacher_logits, self.temperature)
        if self.alpha > 0:
            loss = loss + self.alpha * self.hard(logits, labels)
        return loss
