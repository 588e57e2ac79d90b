"""ONNX graph transforms after export, by name: int8 quantization (dynamic or static QDQ), the transformer
graph optimizer, and fp16. Each reads one .onnx file and writes another; each returns a description
of what it did for the bundle manifest."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Iterable

import onnx

from kdedge.errors import KdedgeError
from kdedge.onnx.embeddings import embedding_readers, store_embeddings_int8
from kdedge.quant.qat import SCHEME as QAT_SCHEME
from kdedge.quiet import known_noise
from kdedge_runtime.cpu import EXACT_U8_S8, WEIGHTS

# ONNX Runtime's quantizer logs these on the root logger for every model: advice to run its pre-processing
# (done where it changes the result, see quantize_dynamic) and per-channel axes of 1-D weights (LayerNorm,
# biases) that it quantizes per tensor instead, as intended.
_QUANTIZER_NOISE = (("", r"^Please consider to run pre-processing"), ("", r"^Axis \d+ is out-of-range for weight"))


# Bumped when quantize_dynamic's graph changes, so that caches of int8 exports (the bench's teacher) are not reused
# across it. 2: embedding tables int8 per row.
DYNAMIC_REVISION = 2


def quantize_dynamic(src: Path, dst: Path, *, architecture: str, preset: str, embeddings: str = "rows",
                     keep_float: Iterable[str] = (), **_) -> dict:
    """int8 weights (symmetric, per channel; uint8 or int8 as the preset for the target CPU says); activations
    uint8, quantized on the fly; embedding tables int8 per row (kdedge.onnx.embeddings). For transformers the
    MatMuls are optimum's `AutoQuantizationConfig.<preset>(is_static=False, per_channel=True)`, done with ONNX
    Runtime's own quantizer (optimum not needed, same graph: every MatMul, the attention products included); the
    BiLSTM's LSTMs become DynamicQuantizeLSTM. `embeddings` "onnxruntime" (its uint8 per-tensor tables) and "float"
    are there for benchmarks/embedding_int8.py to compare with. `keep_float` names nodes left in float
    (kdedge.onnx.keep_float chooses them)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic as ort_quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if architecture == "ngram" and embeddings == "rows":
        return _quantize_ngram(src, dst, preset)
    weights = WEIGHTS[preset]
    weight_type = QuantType.QUInt8 if weights == "uint8" else QuantType.QInt8
    description = {"scheme": "dynamic", "preset": preset, "weights": f"{weights} symmetric per-channel",
                   "activations": "uint8 dynamic per-tensor"}
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / src.name
        if architecture == "bilstm":
            # ONNX Runtime's DynamicQuantizeLSTM takes int8 weights whatever the preset asks for; on a CPU without an
            # exact u8 x s8 product (no VNNI) full-range ones saturate, so there they get 7-bit ranges.
            reduce_range = preset not in EXACT_U8_S8
            options = {"weight_type": weight_type, "reduce_range": reduce_range}
            description |= {"weights": f"LSTMs int8, the rest {weights}, symmetric per-channel"
                                       + (", 7-bit ranges" if reduce_range else ""),
                            "reduce_range": reduce_range, "tool": "onnxruntime.quantization.quantize_dynamic"}
            untie_lstm_weights(src, prepared)
        else:
            # Type every tensor first (fused com.microsoft ops from --optimize are opaque to the quantizer otherwise).
            # auto_merge: ONNX Runtime 1.30's optimizer leaves graphs whose symbolic shapes stay incomplete without it.
            fused = any(n.domain == "com.microsoft" for n in onnx.load(str(src)).graph.node)
            quant_pre_process(str(src), str(prepared), skip_optimization=True, skip_symbolic_shape=not fused,
                              auto_merge=True)
            # optimum's presets: symmetric weights, asymmetric activations, full range, and MatMuls whose both inputs
            # are activations quantized too (ONNX Runtime's own default skips them).
            options = {"weight_type": weight_type, "reduce_range": False,
                       "extra_options": {"WeightSymmetric": True, "ActivationSymmetric": False,
                                         "MatMulConstBOnly": False, "EnableSubgraph": False}}
            description |= {"reduce_range": False,
                            "tool": "onnxruntime.quantization.quantize_dynamic (optimum's AutoQuantizationConfig preset)"}
        tables = embedding_readers(prepared) if embeddings != "onnxruntime" else {}
        kept = list(keep_float)
        if kept:  # the quantizer splits a Gemm into a MatMul named <gemm>_MatMul and an Add first: leave that out
            graph = onnx.load(str(prepared), load_external_data=False).graph
            kept += [f"{n.name}_MatMul" for n in graph.node if n.op_type == "Gemm" and n.name in keep_float]
        ort_quantize_dynamic(str(prepared), str(dst), per_channel=True,
                             nodes_to_exclude=[node for readers in tables.values() for node in readers] + kept,
                             **options)
        if keep_float:
            description["kept_float"] = list(keep_float)
    if architecture == "bilstm":
        retie_lstm_weights(dst)
    if embeddings == "rows":
        description["embeddings"] = store_embeddings_int8(dst, list(tables))
    return description | {"ops": _quantized_ops(dst)}


def _quantize_ngram(src: Path, dst: Path, preset: str) -> dict:
    """The n-gram student's int8: its embedding table (all but a few hundred of its weights) per row; the head stays
    float, since quantizing a 50-wide layer on the fly adds five nodes to every call and saves a few hundred bytes."""
    shutil.copyfile(src, dst)
    tables = embedding_readers(dst)
    return {"scheme": "dynamic", "preset": preset, "weights": "embedding table int8 per row, the head float",
            "activations": "float", "embeddings": store_embeddings_int8(dst, list(tables)), "ops": {}}


# LSTM inputs that are weights: W, R, B and the peepholes P.
_LSTM_WEIGHTS = (1, 2, 3, 7)


def untie_lstm_weights(src: Path, dst: Path) -> int:
    """Copy `src` to `dst` with each LSTM node reading weights of its own; returns how many inputs were untied.

    The siamese BiLSTM (pairs) runs its two LSTMs once per text, and the TorchScript exporter gives the second call
    the first call's initializers through Identity nodes. ONNX Runtime's quantizer only quantizes an LSTM whose W and
    R are initializers, and it reshapes the initializer in place ([1, 4h, in] to [4h, in]) while quantizing the
    first LSTM: the second, left float, then read a 2-D W through its Identity and failed at run time ("Input W must
    have shape {1,64,100}. Actual:{64,100}"). An initializer read by two LSTMs directly would meet the same
    reshape. Here each LSTM gets its own copy (same values, so the float graph computes exactly what it did) and
    every LSTM is quantized; retie_lstm_weights shares the identical int8 copies again afterwards."""
    from onnx import numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    identities = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity"}
    claimed: set[str] = set()
    untied = 0
    for index, node in enumerate(graph.node):
        if node.op_type != "LSTM":
            continue
        for slot in _LSTM_WEIGHTS:
            if slot >= len(node.input) or not node.input[slot]:
                continue
            name = source = node.input[slot]
            while source in identities:
                source = identities[source]
            if source not in initializers:
                continue
            if name == source and source not in claimed:
                claimed.add(source)
                continue
            copy = numpy_helper.from_array(numpy_helper.to_array(initializers[source]), f"{source}_untied_{index}")
            graph.initializer.append(copy)
            node.input[slot] = copy.name
            untied += 1
    used = {name for n in graph.node for name in n.input} | {o.name for o in graph.output}
    for node in [n for n in graph.node if n.op_type == "Identity" and n.output[0] not in used]:
        graph.node.remove(node)
    onnx.save(model, str(dst))
    return untied


def retie_lstm_weights(path: Path) -> int:
    """Let the DynamicQuantizeLSTM nodes share their identical constant inputs (the untied copies of one weight
    quantize to the same int8 values, scales and zero points), so the file holds one copy of each, as the float
    graph does; returns how many inputs now read a shared copy."""
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    first: dict[tuple, str] = {}
    replaced: set[str] = set()
    for node in graph.node:
        if node.op_type != "DynamicQuantizeLSTM":
            continue
        for slot, name in enumerate(node.input):
            if name not in initializers:
                continue
            init = initializers[name]
            key = (init.data_type, tuple(init.dims), numpy_helper.to_array(init).tobytes())
            shared = first.setdefault(key, name)
            if shared != name:
                node.input[slot] = shared
                replaced.add(name)
    used = {name for n in graph.node for name in n.input} | {o.name for o in graph.output}
    for name in replaced - used:
        graph.initializer.remove(initializers[name])
    onnx.save(model, str(path))
    return len(replaced)


class _Calibration:
    """Feeds ONNX Runtime's calibrator one example at a time (real lengths, no padding)."""

    def __init__(self, batches: Iterable[dict]):
        self._it = iter(batches)

    def get_next(self):
        return next(self._it, None)


def quantize_static(src: Path, dst: Path, *, calibration: list[dict], **_) -> dict:
    """int8 QDQ: symmetric per-channel int8 weights, per-tensor uint8 activations calibrated (MinMax) on
    training examples."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static as ort_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not calibration:
        raise KdedgeError("--quantize static needs calibration examples (--calibration-size > 0)")
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        ort_static(str(prepared), str(dst), _Calibration(calibration), quant_format=QuantFormat.QDQ,
                   per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                   calibrate_method=CalibrationMethod.MinMax)
    return {"scheme": "static", "format": "QDQ", "weights": "int8 symmetric per-channel",
            "activations": "uint8 per-tensor, MinMax calibration", "calibration_examples": len(calibration),
            "tool": "onnxruntime.quantization.quantize_static", "ops": _quantized_ops(dst)}


def quantize_qat(src: Path, dst: Path, **_) -> dict:
    """The export side of the scheme QAT trained for (kdedge.quant.qat.SCHEME): ONNX Runtime dynamic int8 on the
    MatMul/Gemm nodes that have a weight, and the embedding tables int8 per row."""
    from onnxruntime.quantization import QuantType, quantize_dynamic as ort_quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / Path(src).name
        shutil.copyfile(src, prepared)
        tables = embedding_readers(prepared)
        graph = onnx.load(str(prepared)).graph
        weights = {init.name for init in graph.initializer}
        activation_products = [n.name for n in graph.node if n.op_type == "MatMul" and not weights.intersection(n.input)]
        ort_quantize_dynamic(str(prepared), str(dst), op_types_to_quantize=["MatMul", "Gemm"], per_channel=True,
                             reduce_range=False, weight_type=QuantType.QInt8, nodes_to_exclude=activation_products)
    return {"scheme": "qat", **QAT_SCHEME, "embeddings": store_embeddings_int8(Path(dst), list(tables)),
            "tool": "onnxruntime.quantization.quantize_dynamic", "ops": _quantized_ops(dst)}


QUANTIZERS = {"dynamic": quantize_dynamic, "static": quantize_static, "qat": quantize_qat}


def quantize(scheme: str, src: Path, dst: Path, **options) -> dict:
    """Quantize `src` into `dst` with the scheme of QUANTIZERS named; returns its manifest entry."""
    with known_noise(logs=_QUANTIZER_NOISE):
        return QUANTIZERS[scheme](src, dst, **options)


# Fusions the transformer optimizer is told to leave out, and why. SkipLayerNormalization: ONNX Runtime's CPU kernel
# is slower than the Add and LayerNormalization it replaces (kdedge_runtime.session); a session on a GPU provider
# still fuses them when it loads the graph. BiasGelu: left apart, the bias joins the MatMul before it when that is
# quantized (DynamicQuantizeMatMul takes a bias), and the int8 graph is a few per cent faster on the CPU.
UNFUSED = {"SkipLayerNormalization": "enable_skip_layer_norm", "BiasGelu": "enable_bias_gelu"}


def optimize_transformer(src: Path, dst: Path, *, num_heads: int, hidden_size: int) -> dict:
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    for flag in UNFUSED.values():
        setattr(options, flag, False)
    model = optimize_model(str(src), model_type="bert", num_heads=num_heads, hidden_size=hidden_size,
                           optimization_options=options)
    model.save_model_to_file(str(dst))
    fused = {k: v for k, v in model.get_fused_operator_statistics().items() if v}
    return {"optimizer": "onnxruntime.transformers.optimizer (bert)", "fused": fused, "not_fused": list(UNFUSED)}


def to_fp16(src: Path, dst: Path) -> dict:
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = OnnxModel(onnx.load(str(src)))
    model.convert_float_to_float16(keep_io_types=True)
    model.save_model_to_file(str(dst))
    return {"fp16": True, "io_types": "float32 (kept)"}


def _quantized_ops(path: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in onnx.load(str(path)).graph.node:
        if "Quant" in node.op_type or "Integer" in node.op_type:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items()))

