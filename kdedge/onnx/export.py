"""Exporters by student architecture: each writes `model.onnx` (dynamic batch and sequence axes) into a folder.

Transformer students go through optimum's exporter when it is installed, else through `torch.onnx` to the same
graph contract, so either way the bundle is what `ORTModelForSequenceClassification` and `pipeline()` load. The
BiLSTM goes through `torch.onnx`; its within-length reversal (see models/bilstm.py) exports as plain LSTM + Gather ops, so every length in
a padded batch is exact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from transformers import AutoModelForSequenceClassification

from kdedge.errors import KdedgeError
from kdedge.models.students import Student
from kdedge.quiet import known_noise

ONNX_FILE = "model.onnx"


def export_bilstm(student: Student, student_dir: Path, out_dir: Path, opset: int, **_) -> str:
    """Inputs: ids and masks (the second text's too for pairs)."""
    names = ["input_ids", "attention_mask"] + (["input_ids_b", "attention_mask_b"] if student.siamese else [])
    _export_word_student(student.model, names, out_dir, opset)
    return "torch"


def export_ngram(student: Student, student_dir: Path, out_dir: Path, opset: int, **_) -> str:
    """Inputs: ids only (the second text's too for pairs). The n-gram rules make padding the one id that is not a
    feature, so the graph needs no mask: an app's call then builds and feeds one tensor, not two, and the graph is
    three nodes shorter."""
    names = ["input_ids"] + (["input_ids_b"] if student.siamese else [])
    _export_word_student(_IdsOnly(student.model), names, out_dir, opset)
    return "torch"


def _export_word_student(model: torch.nn.Module, names: list[str], out_dir: Path, opset: int) -> None:
    example = tuple(torch.ones(2, 5, dtype=torch.long) for _ in names)
    axes = {n: {0: "batch", 1: "sequence" if not n.endswith("_b") else "sequence_b"} for n in names}
    axes["logits"] = {0: "batch"}
    # The TorchScript exporter maps nn.LSTM to the ONNX LSTM op, which ONNX Runtime quantizes (DynamicQuantizeLSTM).
    # Known noise: it is deprecated (kept for that LSTM op), nn.LSTM's shape checks trace as
    # constants, and it warns about variable lengths at batch > 1 — each length is exact here (tested), and the
    # parity check after export would catch a trace that is not.
    with known_noise(warns=((DeprecationWarning, ""), (torch.jit.TracerWarning, ""),
                            (UserWarning, "^Exporting a model to ONNX with a batch_size other than 1"))):
        torch.onnx.export(model.eval(), example, str(out_dir / ONNX_FILE), input_names=names,
                          output_names=["logits"], dynamic_axes=axes, opset_version=opset, dynamo=False)


class _IdsOnly(torch.nn.Module):
    """The n-gram student called without masks (NgramStudent.encode then reads them off the ids)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, input_ids_b=None):
        return self.model(input_ids, None, input_ids_b, None)


def export_transformer(student: Student, student_dir: Path, out_dir: Path, opset: int, exporter: str = "auto") -> str:
    """The student as optimum exports a text classifier (inputs input_ids, attention_mask and, where the tokenizer
    makes them, token_type_ids, with batch_size and sequence_length axes; output logits) plus its config.json;
    returns the exporter used."""
    if exporter == "auto":
        exporter = "optimum" if _optimum_exporter_importable() else "torch"
    TRANSFORMER_EXPORTERS[exporter](student, student_dir, out_dir, opset)
    return exporter


def _optimum_exporter_importable() -> bool:
    """optimum-onnx installed, and importable with this transformers (0.1 is not with transformers 5)."""
    try:
        import optimum.exporters.onnx  # noqa: F401
    except Exception:  # not installed, or built for another transformers line
        return False
    return True


def _export_with_optimum(student: Student, student_dir: Path, out_dir: Path, opset: int) -> None:
    try:
        from optimum.exporters.onnx import main_export
    except Exception as e:  # not installed (ImportError), or built for another transformers line (anything)
        raise KdedgeError(f"--exporter optimum: optimum's exporter cannot be imported ({e}); install kdedge[optimum] "
                          "or use --exporter torch") from None
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


class _Logits(torch.nn.Module):
    """The classifier called with positional inputs, returning only its logits (what the graph outputs)."""

    def __init__(self, model: torch.nn.Module, names: list[str]):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *inputs):
        return self.model(**dict(zip(self.names, inputs))).logits


def _export_with_torch(student: Student, student_dir: Path, out_dir: Path, opset: int) -> None:
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in student.tokenizer.model_input_names]
    example = student.tokenizer(["a fine film", "fine"], padding=True, return_tensors="pt")  # one row padded
    axes = {n: {0: "batch_size", 1: "sequence_length"} for n in names}
    axes["logits"] = {0: "batch_size"}
    # As optimum does, the saved float weights (a QAT student's fake quantization is the quantizer's job), with
    # eager attention: the pattern ONNX Runtime's transformer optimizer fuses into its Attention op.
    model = AutoModelForSequenceClassification.from_pretrained(student_dir, attn_implementation="eager").eval()
    # The TorchScript exporter, as for the BiLSTM: deprecated (known noise), and the shape checks of the attention
    # mask trace as constants (the parity check after export catches a trace that is not exact).
    with known_noise(warns=((DeprecationWarning, ""), (torch.jit.TracerWarning, ""),
                            (UserWarning, "^Exporting aten::index operator of advanced indexing"))):
        torch.onnx.export(_Logits(model, names), tuple(example[n] for n in names), str(out_dir / ONNX_FILE),
                          input_names=names, output_names=["logits"], dynamic_axes=axes, opset_version=opset,
                          dynamo=False)
    model.config.save_pretrained(out_dir)  # what optimum and pipeline() read beside the graph


TRANSFORMER_EXPORTERS: dict[str, Callable[[Student, Path, Path, int], None]] = {
    "optimum": _export_with_optimum,
    "torch": _export_with_torch,
}

EXPORTERS: dict[str, Callable[..., str]] = {  # each returns the exporter it used
    "bilstm": export_bilstm,
    "tinybert": export_transformer,
    "ngram": export_ngram,
}
