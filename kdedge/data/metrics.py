"""Task metrics by name. Predictions are class ids (classification) or scores (regression)."""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from kdedge.data.tasks import Task

METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": lambda y, p: accuracy_score(y, p),
    "f1": lambda y, p: f1_score(y, p, zero_division=0.0),
    "macro_f1": lambda y, p: f1_score(y, p, average="macro", zero_division=0.0),
    "matthews_correlation": lambda y, p: matthews_corrcoef(y, p),
    "pearson": lambda y, p: pearsonr(y, p)[0] if np.std(p) > 0 else 0.0,
    "spearmanr": lambda y, p: spearmanr(y, p)[0] if np.std(p) > 0 else 0.0,
}


def predictions(task: Task, logits: np.ndarray) -> np.ndarray:
    """Class ids from logits, or the score itself for regression."""
    logits = np.asarray(logits)
    return logits.reshape(-1) if task.is_regression else logits.argmax(-1)


def compute_metrics(task: Task, logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    preds = predictions(task, logits)
    return {name: float(METRICS[name](np.asarray(labels), preds)) for name in task.metrics}
