"""Run an ONNX model over tokenized features and compare it with the PyTorch student."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from kdedge.training import eval_loader


def cpu_session(path: Path, threads: int | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_logits(session: ort.InferenceSession, features: list[dict], batch_size: int, pad_token_id: int) -> np.ndarray:
    """Logits in the features' original order (length-sorted batches, dynamic padding)."""
    names = [i.name for i in session.get_inputs()]
    loader, order = eval_loader(features, batch_size, pad_token_id)
    outputs = []
    for batch in loader:
        feed = {n: batch[n].numpy().astype(np.int64) for n in names}
        outputs.append(session.run(["logits"], feed)[0].astype(np.float32))
    logits = np.concatenate(outputs)
    restored = np.empty_like(logits)
    restored[order] = logits
    return restored


def compare(reference: np.ndarray, candidate: np.ndarray, regression: bool) -> dict:
    diff = np.abs(reference - candidate)
    result = {"examples": int(len(reference)), "max_abs_diff": float(diff.max()) if diff.size else 0.0,
              "mean_abs_diff": float(diff.mean()) if diff.size else 0.0}
    if not regression:
        result["argmax_agreement"] = float((reference.argmax(-1) == candidate.argmax(-1)).mean())
    return result
