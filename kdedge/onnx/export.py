"""Exporters by student architecture: each writes `model.onnx` (dynamic batch and sequence axes) into a folder.

Transformer students go through optimum's exporter, so the bundle is also what
`ORTModelForSequenceClassification` and `pipeline()` load. The BiLSTM goes through `torch.onnx`; its
within-length reversal (see models/bilstm.py) exports as plain LSTM + Gather ops, so every length in
a padded batch is exact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from kdedge.errors import KdedgeError
from kdedge.models.students import Student
from kdedge.quiet import known_noise

ONNX_FILE = "model.onnx"


def export_bilstm(student: Student, student_dir: Path, out_dir: Path, opset: int) -> None:
    names = ["input_ids", "attention_mask"] + (["input_ids_b", "attention_mask_b"] if student.siamese else [])
    example = tuple(torch.ones(2, 5, dtype=torch.long) for _ in names)
    axes = {n: {0: "batch", 1: "sequence" if not n.endswith("_b") else "sequence_b"} for n in names}
    axes["logits"] = {0: "batch"}
    # The TorchScript exporter maps nn.LSTM to the ONNX LSTM op, which ONNX Runtime quantizes (DynamicQuantizeLSTM).
    # Known noise: it is deprecated (kept for that LSTM op), nn.LSTM's shape checks trace as
    # constants, and it warns about variable lengths at batch > 1 — each length is exact here (tested), and the
    # parity check after export would catch a trace that is not.
    with known_noise(warns=((DeprecationWarning, ""), (torch.jit.TracerWarning, ""),
                            (UserWarning, "^Exporting a model to ONNX with a batch_size other than 1"))):
        torch.onnx.export(student.model.eval(), example, str(out_dir / ONNX_FILE), input_names=names,
                          output_names=["logits"], dynamic_axes=axes, opset_version=opset, dynamo=False)


def export_transformer(student: Student, student_dir: Path, out_dir: Path, opset: int) -> None:
    from optimum.exporters.onnx import main_export

    try:
        # Known noise: tracing BERT's attention mask warns that a constant is baked into the graph (it is the same
        # for every input, and the parity check after export would catch a trace that is not); optimum still
        # passes transformers the old `torch_dtype` argument.
        with known_noise(warns=((torch.jit.TracerWarning, ""),),
                         logs=(("transformers.configuration_utils", "^`torch_dtype` is deprecated"),)):
            main_export(str(student_dir), str(out_dir), task="text-classification", opset=opset,
                        do_validation=False, device="cpu")
    except Exception as e:
        raise KdedgeError(f"the optimum exporter failed on {student_dir} ({type(e).__name__}: {e})") from None


EXPORTERS: dict[str, Callable[[Student, Path, Path, int], None]] = {
    "bilstm": export_bilstm,
    "tinybert": export_transformer,
}
