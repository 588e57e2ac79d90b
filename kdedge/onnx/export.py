"""Exporters by student architecture: each writes `model.onnx` (dynamic batch and sequence axes) into a folder.

Transformer students go through optimum's exporter, so the bundle is also what
`ORTModelForSequenceClassification` and `pipeline()` load. The BiLSTM goes through `torch.onnx`; its
within-length reversal (see models/bilstm.py) exports as plain LSTM + Gather ops, so every length in
a padded batch is exact.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable

import torch

from kdedge.errors import KdedgeError
from kdedge.models.students import Student

ONNX_FILE = "model.onnx"


def export_bilstm(student: Student, student_dir: Path, out_dir: Path, opset: int) -> None:
    names = ["input_ids", "attention_mask"] + (["input_ids_b", "attention_mask_b"] if student.siamese else [])
    example = tuple(torch.ones(2, 5, dtype=torch.long) for _ in names)
    axes = {n: {0: "batch", 1: "sequence" if not n.endswith("_b") else "sequence_b"} for n in names}
    axes["logits"] = {0: "batch"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter warns about RNNs with batch_first
        # The TorchScript exporter maps nn.LSTM to the ONNX LSTM op, which ONNX Runtime quantizes (DynamicQuantizeLSTM).
        torch.onnx.export(student.model.eval(), example, str(out_dir / ONNX_FILE), input_names=names,
                          output_names=["logits"], dynamic_axes=axes, opset_version=opset, dynamo=False)


def export_transformer(student: Student, student_dir: Path, out_dir: Path, opset: int) -> None:
    from optimum.exporters.onnx import main_export

    try:
        main_export(str(student_dir), str(out_dir), task="text-classification", opset=opset, do_validation=False,
                    device="cpu")
    except Exception as e:
        raise KdedgeError(f"the optimum exporter failed on {student_dir} ({type(e).__name__}: {e})") from None


EXPORTERS: dict[str, Callable[[Student, Path, Path, int], None]] = {
    "bilstm": export_bilstm,
    "tinybert": export_transformer,
}
