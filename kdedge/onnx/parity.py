"""Run an ONNX model over tokenized features and compare it with the PyTorch student."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from kdedge.training import eval_loader
from kdedge_runtime.session import session_options


def cpu_session(path: Path, threads: int | None = None) -> ort.InferenceSession:
    """The session the runtimes would run `path` in on the CPU."""
    providers = ["CPUExecutionProvider"]
    return ort.InferenceSession(str(path), session_options(providers, threads), providers=providers)


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
