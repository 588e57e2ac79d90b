import pytest
import torch

from kdedge.data import get_glue_task
from kdedge.distill.losses import IGNORE_INDEX, PredictionDistillLoss, kl_with_t2, mse_logits


def _grad(loss_fn, student, teacher, t):
    s = student.clone().requires_grad_(True)
    loss_fn(s, teacher, t).backward()
    return s.grad


def test_kl_t2_keeps_the_gradient_scale_as_temperature_grows():
    torch.manual_seed(0)
    student = torch.randn(16, 5)
    teacher = torch.randn(16, 5)
    student, teacher = student - student.mean(-1, keepdim=True), teacher - teacher.mean(-1, keepdim=True)
    norms = {t: _grad(kl_with_t2, student, teacher, t).norm().item() for t in (5.0, 10.0, 20.0, 40.0)}
    # With T^2 the gradient tends to (z_s - z_t) / (K * batch) (Hinton et al. 2015): flat in T.
    limit = ((student - teacher) / (5 * 16)).norm().item()
    assert norms[40.0] == pytest.approx(limit, rel=0.02)
    assert norms[20.0] / norms[40.0] == pytest.approx(1.0, abs=0.02)
    # Without the T^2 factor the same gradient would shrink like 1/T^2.
    no_t2 = {t: (_grad(kl_with_t2, student, teacher, t) / t**2).norm().item() for t in (10.0, 20.0)}
    assert no_t2[10.0] / no_t2[20.0] == pytest.approx(4.0, rel=0.05)


def test_kl_is_zero_for_equal_logits_and_positive_otherwise():
    x = torch.randn(4, 3)
    assert kl_with_t2(x, x, 3.0).item() == pytest.approx(0.0, abs=1e-6)
    assert kl_with_t2(x, x + torch.tensor([1.0, 0.0, 0.0]), 3.0).item() > 0


def test_mse_on_logits_gradient():
    s, t = torch.tensor([[1.0, 3.0]]), torch.tensor([[0.0, 1.0]])
    assert mse_logits(s, t).item() == pytest.approx((1 + 4) / 2)
    assert _grad(mse_logits, s, t, 1.0).tolist() == [[1.0, 2.0]]


def test_alpha_mixes_gold_and_soft_terms_and_ignores_unlabelled_rows():
    task = get_glue_task("sst2")
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    teacher = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    labels = torch.tensor([0, 1])
    soft = mse_logits(logits, teacher)
    hard = torch.nn.functional.cross_entropy(logits, labels)
    assert PredictionDistillLoss(task, "mse", 0.0)(logits, teacher, labels).item() == pytest.approx(soft.item())
    assert PredictionDistillLoss(task, "mse", 1.0)(logits, teacher, labels).item() == pytest.approx(hard.item())
    mixed = PredictionDistillLoss(task, "mse", 0.3)(logits, teacher, labels)
    assert mixed.item() == pytest.approx(0.3 * hard.item() + 0.7 * soft.item())
    unlabelled = PredictionDistillLoss(task, "mse", 0.5)(logits, teacher, torch.tensor([IGNORE_INDEX, 1]))
    hard_one = torch.nn.functional.cross_entropy(logits[1:], labels[1:])
    assert unlabelled.item() == pytest.approx(0.5 * hard_one.item() + 0.5 * soft.item())


def test_regression_uses_mse_to_teacher_score_and_gold():
    task = get_glue_task("stsb")
    loss = PredictionDistillLoss(task, "kl", alpha=0.5)  # soft loss name is irrelevant for regression
    out = loss(torch.tensor([[1.0], [2.0]]), torch.tensor([[1.5], [2.0]]), torch.tensor([1.0, 4.0]))
    assert out.item() == pytest.approx(0.5 * (0.25 / 2) + 0.5 * (4.0 / 2))
