"""Which of a model's quantizable nodes dynamic int8 should leave in float, by name or by measurement.

Dynamic int8 quantizes each activation over the whole tensor, so a single activation with a few huge values can cost
a model most of its int8 accuracy. all-mpnet-base-v2 fine-tuned on STS-B loses 6.4 points of Pearson to int8. Nearly
all of it goes to one MatMul, the FFN output projection of layer 7: with that node alone in float, int8 keeps 5.8 of
the 6.4 points (benchmarks/results/int8_keep_float). The two nodes `auto` kept there (of 98) made the model 1.19x
slower than plain int8.

`search` finds such nodes on calibration examples. It compares the int8 model's logits with the float model's and
looks for the node whose float precision removes the most error. It bisects: it keeps half the candidates in float,
then the other half, and goes on into the better half, so each node found costs about 2·log2(n) quantizations.
A node is kept only while it removes a good share of the error that is left: the search is greedy and stops at the
first node found that does not.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx

from kdedge.errors import KdedgeError
from kdedge.onnx.parity import cpu_session

# what ONNX Runtime's dynamic quantizer turns into int8: MatMulInteger (from MatMul, and from Gemm, which it splits
# into a MatMul and an Add first), QAttention, DynamicQuantizeLSTM
QUANTIZABLE = ("MatMul", "Gemm", "Attention", "LSTM")
MAX_KEPT = 4  # each node kept costs float time; a model that needs more is not one dynamic int8 suits
MIN_GAIN = 0.25  # a node is kept when it removes at least this share of the error left
GOOD_ENOUGH = 0.01  # int8's relative error on the logits below which nothing is searched for


def quantizable_nodes(path: Path) -> list[str]:
    """The named nodes of `path` that dynamic int8 quantizes, in graph order."""
    graph = onnx.load(str(path), load_external_data=False).graph
    return [n.name for n in graph.node if n.op_type in QUANTIZABLE and n.name]


def select(path: Path, patterns: list[str]) -> list[str]:
    """The quantizable nodes whose names contain one of `patterns`; a pattern that names none is an error."""
    nodes = quantizable_nodes(path)
    if not patterns:
        raise KdedgeError("--keep-float takes none, auto, or comma-separated parts of node names")
    for pattern in patterns:
        if not any(pattern in n for n in nodes):
            shown = ", ".join(nodes[:3]) + (", ..." if len(nodes) > 3 else "")
            raise KdedgeError(f"--keep-float: {pattern!r} is part of no quantizable node's name (the model's "
                              f"{len(nodes)} are named like {shown})")
    return [n for n in nodes if any(p in n for p in patterns)]


def logits(path: Path, feeds: list[dict]) -> np.ndarray:
    session = cpu_session(path)
    return np.concatenate([session.run(["logits"], feed)[0] for feed in feeds]).astype(np.float64)


def relative_error(candidate: np.ndarray, reference: np.ndarray) -> float:
    """Squared error over the reference's spread around its mean (per logit): 0 is exact; 1 is no better than
    answering the mean."""
    spread = float(((reference - reference.mean(0)) ** 2).sum())
    return float(((candidate - reference) ** 2).sum()) / max(spread, 1e-12)


def search(model: Path, quantize_keeping: Callable[[list[str], Path], None], feeds: list[dict], work: Path) -> dict:
    """The nodes of `model` to leave in float, found on `feeds` (one example each). `quantize_keeping(nodes, dst)`
    writes the int8 model with `nodes` left in float. Returns the nodes and what the search saw."""
    if not feeds:
        raise KdedgeError("--keep-float auto needs calibration examples: the task has no training rows")
    reference = logits(model, feeds)
    evaluations = 0

    def error(kept: list[str]) -> float:
        nonlocal evaluations
        evaluations += 1
        candidate = work / "candidate.onnx"
        quantize_keeping(kept, candidate)
        return relative_error(logits(candidate, feeds), reference)

    candidates = quantizable_nodes(model)
    kept: list[str] = []
    errors = [error([])]
    while len(kept) < MAX_KEPT and errors[-1] > GOOD_ENOUGH:
        group = [n for n in candidates if n not in kept]
        if not group:
            break
        found = None
        while len(group) > 1:
            halves = group[:len(group) // 2], group[len(group) // 2:]
            scores = [error(kept + h) for h in halves]
            group, found = min(zip(halves, scores), key=lambda pair: pair[1])
        if found is None:  # one candidate from the start
            found = error(kept + group)
        if found > errors[-1] * (1 - MIN_GAIN):
            break
        kept.append(group[0])
        errors.append(found)
    return {"nodes": kept, "relative_error": [round(e, 6) for e in errors], "evaluations": evaluations,
            "examples": len(feeds), "candidates": len(candidates)}
