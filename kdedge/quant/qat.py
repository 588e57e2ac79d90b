"""Quantization-aware training that emulates the int8 scheme `kdedge export --quantize qat` produces.

The scheme (ONNX Runtime dynamic quantization of every Linear layer and embedding table; its quantizer
turns the pooler's and output layer's Gemm into MatMul too):
- Linear weights: int8, symmetric, per output channel, range [-127, 127];
- the activation entering each Linear layer: uint8, asymmetric, per tensor, its range taken from the
  tensor itself at run time (DynamicQuantizeLinear: [min(x, 0), max(x, 0)] / 255);
- embedding tables (the Gather inputs): int8, symmetric, per row, range [-127, 127] (kdedge.onnx.embeddings:
  dequantized to float when the session loads); they are 2/3 of a small BERT's bytes;
- everything else stays float, as the runtime keeps it: LayerNorm, softmax, GELU and the attention
  score/context products (activation x activation);
- the last layer's Linears after its attention run on the first token alone in the exported graph
  (kdedge.onnx.first_token), so their activation range is the first token's.

Fake quantization rounds exactly as the runtime does and passes gradients straight through
(torch.fake_quantize_*), so the int8 model computes what the fake-quant model was trained to.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from kdedge.compress.layouts import encoder_of
from kdedge.errors import KdedgeError

SCHEME = {
    "name": "dynamic-int8-matmul-gather",
    "weights": "int8 symmetric per-channel [-127, 127]",
    "activations": "uint8 asymmetric per-tensor, dynamic range",
    "embeddings": "int8 symmetric per-row [-127, 127]",
    "quantized": "every Linear layer (MatMul/Gemm with a weight) and embedding table (Gather)",
    "float": "LayerNorm, softmax, GELU, attention products",
    # the export applies kdedge.onnx.first_token to students trained with this (older ones: every position)
    "first_token": "the last layer's Linears after its attention ranged on the first token, the one they run on",
}
# The parts of the last layer that the first-token rewrite runs on one position (kdedge.compress.layouts names).
_AFTER_ATTENTION = ("attention_out", "ffn_in", "ffn_out")


def fake_quant_weight(w: torch.Tensor) -> torch.Tensor:
    """Computed in float32 whatever `w` is (a half-precision model, or autocast), as the runtime's scales are, on `w`'s
    device; returned in `w`'s dtype."""
    w32 = w.float()
    scale = (w32.detach().abs().amax(dim=1) / 127.0).clamp(min=1e-12)
    zero = torch.zeros(w.size(0), dtype=torch.int32, device=w.device)
    return torch.fake_quantize_per_channel_affine(w32, scale, zero, 0, -127, 127).to(w.dtype)


def fake_quant_dynamic_uint8(x: torch.Tensor, ranged_on: torch.Tensor | None = None) -> torch.Tensor:
    """`x` quantized with the range of `ranged_on` (default: `x` itself), as DynamicQuantizeLinear does."""
    r = (x if ranged_on is None else ranged_on).detach()
    lo = r.min().clamp(max=0.0).float()
    hi = r.max().clamp(min=0.0).float()
    scale = ((hi - lo) / 255.0).clamp(min=1e-12)
    zero = torch.round(-lo / scale).clamp(0, 255).to(torch.int32)
    # float32 in and out of the op (fp16/bf16 activations under autocast: the fake-quant kernels are not defined for
    # every half type on every device, and float32 rounds as the runtime does), then back to the activation's dtype
    return torch.fake_quantize_per_tensor_affine(x.float(), scale.reshape(1), zero.reshape(1), 0, 255).to(x.dtype)


class QATLinear(nn.Linear):
    """An nn.Linear whose input and weight are fake-quantized. Same parameters and state-dict keys."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(fake_quant_dynamic_uint8(x), fake_quant_weight(self.weight), self.bias)


class QATFirstTokenLinear(QATLinear):
    """A Linear of the last layer after its attention: the exported graph runs it on the first token alone, so its
    activation range is the first token's (of each sequence in the batch; of the one sentence at scoring time)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(fake_quant_dynamic_uint8(x, ranged_on=x[:, :1]), fake_quant_weight(self.weight), self.bias)


class QATEmbedding(nn.Embedding):
    """An nn.Embedding whose table is fake-quantized per row (a row is a weight's output channel)."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, fake_quant_weight(self.weight), self.padding_idx, self.max_norm,
                           self.norm_type, self.scale_grad_by_freq, self.sparse)


_FAKE_QUANT = {nn.Linear: QATLinear, nn.Embedding: QATEmbedding}


def prepare_qat(model: nn.Module, first_token: bool = True) -> nn.Module:
    """Swap every Linear and Embedding to its fake-quant twin in place (a class swap: weights and keys are
    untouched); `first_token`: the last layer ranged as the first-token graph runs it (False: the scheme of students
    trained before it, every position)."""
    targets = [m for m in model.modules() if type(m) in _FAKE_QUANT]
    if not any(type(m) is nn.Linear for m in targets):
        raise KdedgeError(f"{type(model).__name__} has no Linear layers to quantize")
    for module in targets:
        module.__class__ = _FAKE_QUANT[type(module)]
    for module in _after_last_attention(model) if first_token else []:
        module.__class__ = QATFirstTokenLinear
    return model


def scheme_of(model: nn.Module) -> dict:
    """The scheme a model prepared by prepare_qat emulates: the first-token ranging only where its layout is known
    (the export rewrites the graph of a student whose scheme says so)."""
    if any(type(m) is QATFirstTokenLinear for m in model.modules()):
        return dict(SCHEME)
    return {k: v for k, v in SCHEME.items() if k != "first_token"}


def trained_for_first_token(scheme: object) -> bool:
    """Whether a student's recorded scheme (student.json's "qat") ranged its last layer on the first token."""
    return isinstance(scheme, dict) and "first_token" in scheme


def _after_last_attention(model: nn.Module) -> list[nn.Module]:
    """The last layer's Linears after its attention, for an encoder layout kdedge knows (others: none, and the
    export's parity figure shows the gap)."""
    try:
        encoder = encoder_of(model)
    except KdedgeError:
        return []
    return [encoder(len(encoder.layers) - 1, name) for name in _AFTER_ATTENTION]


def strip_qat(model: nn.Module) -> nn.Module:
    float_class = {twin: base for base, twin in _FAKE_QUANT.items()} | {QATFirstTokenLinear: nn.Linear}
    for module in model.modules():
        if type(module) in float_class:
            module.__class__ = float_class[type(module)]
    return model
