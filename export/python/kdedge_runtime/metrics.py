"""Task metrics with numpy alone, for scoring a bundle on the device it runs on (the same names and values as
kdedge's own metrics, which use scikit-learn and SciPy; a test holds them equal). Labels and predictions are class
ids, or scores for regression."""

from __future__ import annotations

from typing import Callable

import numpy as np


def accuracy(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(y == p))


def f1(y: np.ndarray, p: np.ndarray, positive: int = 1) -> float:
    tp = np.sum((p == positive) & (y == positive))
    predicted, actual = np.sum(p == positive), np.sum(y == positive)
    return float(2 * tp / (predicted + actual)) if predicted + actual else 0.0


def macro_f1(y: np.ndarray, p: np.ndarray) -> float:
    classes = np.union1d(y, p)
    return float(np.mean([f1(y, p, c) for c in classes]))


def matthews_correlation(y: np.ndarray, p: np.ndarray) -> float:
    classes = np.union1d(y, p)
    confusion = np.array([[np.sum((y == a) & (p == b)) for b in classes] for a in classes], dtype=np.float64)
    t, q = confusion.sum(1), confusion.sum(0)  # true and predicted counts per class
    n, correct = confusion.sum(), np.trace(confusion)
    denominator = np.sqrt((n * n - q @ q) * (n * n - t @ t))
    return float((correct * n - t @ q) / denominator) if denominator else 0.0


def pearson(y: np.ndarray, p: np.ndarray) -> float:
    y, p = np.asarray(y, np.float64), np.asarray(p, np.float64)
    if np.std(p) == 0 or np.std(y) == 0:
        return 0.0
    return float(np.corrcoef(y, p)[0, 1])


def _ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given their average rank."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(1, len(x) + 1)
    values, inverse = np.unique(x, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / np.bincount(inverse))[inverse]


def spearmanr(y: np.ndarray, p: np.ndarray) -> float:
    return pearson(_ranks(np.asarray(y)), _ranks(np.asarray(p)))


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": accuracy, "f1": f1, "macro_f1": macro_f1, "matthews_correlation": matthews_correlation,
    "pearson": pearson, "spearmanr": spearmanr,
}


def score(metrics: list[str], logits: np.ndarray, labels: np.ndarray, regression: bool) -> dict[str, float]:
    """The named metrics of a model's logits against the labels."""
    predictions = np.asarray(logits).reshape(-1) if regression else np.asarray(logits).argmax(-1)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(unknown)} (known: {', '.join(METRICS)})")
    return {m: METRICS[m](np.asarray(labels), predictions) for m in metrics}
