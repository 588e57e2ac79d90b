"""One benchmark job, in its own process: a model on a backend. Reads a job JSON, writes a result JSON.

    python -m kdedge.bench.worker JOB.json RESULT.json

Latency is measured on two kinds of input built from the dev texts: real lengths (consecutive dev examples,
padded to the longest in the batch) and padded-to-length (the first examples' tokens repeated to exactly L
positions, no padding). ONNX jobs import only onnxruntime, tokenizers and numpy.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from kdedge.bench.backends import BACKENDS
from kdedge_runtime.classifier import scoring_batch_size
from kdedge_runtime.session import disabled_optimizers
from kdedge_runtime.timing import measure, summarize


class OnnxModel:
    def __init__(self, path: str, backend, threads: int | None):
        from kdedge_runtime import Classifier

        providers = [backend.provider] + (["CPUExecutionProvider"] if backend.provider != "CPUExecutionProvider" else [])
        self.classifier = Classifier(path, providers=providers, threads=threads)
        used = self.classifier.session.get_providers()
        if used[0] != backend.provider:
            raise _Unavailable(f"onnxruntime fell back to {used[0]} for {backend.provider}")
        self.io_binding = backend.device == "cuda"
        options = self.classifier.session.get_session_options()
        self.session_info = {"providers": used, "intra_op_num_threads": options.intra_op_num_threads,
                             "inter_op_num_threads": options.inter_op_num_threads,
                             "graph_optimization_level": str(options.graph_optimization_level),
                             "execution_mode": str(options.execution_mode), "io_binding": self.io_binding,
                             "disabled_optimizers": disabled_optimizers(options),
                             "provider_options": self.classifier.session.get_provider_options().get(used[0], {})}
        self.inputs = self.classifier.input_names

    def features(self, texts, pairs) -> list[dict]:
        encoded = self.classifier.encode(texts, pairs)
        return [{k: encoded[k][i] for k in self.inputs} for i in range(len(texts))]

    def runner(self, rows: list[dict]) -> Callable[[], object]:
        feed = self.classifier.pad(rows)
        session = self.classifier.session
        if not self.io_binding:
            return lambda: session.run(["logits"], feed)
        import onnxruntime as ort

        # Inputs copied to the GPU once, output kept there: the timing is the model, not host transfers.
        binding = session.io_binding()
        for name, array in feed.items():
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(array, "cuda", 0))
        binding.bind_output("logits", "cuda")

        def run():
            session.run_with_iobinding(binding)
            binding.synchronize_outputs()

        return run

    def logits(self, texts, pairs, batch_size: int) -> np.ndarray:
        return self.classifier.logits(texts, pairs, batch_size=batch_size)


class OpenVinoModel(OnnxModel):
    """The bundle's model.onnx compiled by OpenVINO for its CPU plugin (latency hint, fp32 kept fp32); the inputs
    are tokenized and padded by the Python runtime as for ONNX Runtime, so both engines run the same feeds."""

    def __init__(self, path: str, backend, threads: int | None):
        import openvino as ov

        super().__init__(path, BACKENDS["ort-cpu"], threads)  # the runtime's tokenizer, checks and feeds
        # f32: OpenVINO would otherwise run fp32 bundles in bf16 on CPUs that have it
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32",
                  **({"INFERENCE_NUM_THREADS": threads} if threads else {})}
        core = ov.Core()
        compiled = core.compile_model(str(Path(path) / "model.onnx"), "CPU", config)
        output = compiled.output("logits")
        request = compiled.create_infer_request()
        self.classifier.run_batch = lambda feed: request.infer(feed)[output]
        self.session_info = {"engine": f"openvino {ov.__version__}", "device": core.get_property("CPU", "FULL_DEVICE_NAME"),
                             "performance_hint": "LATENCY",
                             "inference_num_threads": compiled.get_property("INFERENCE_NUM_THREADS"),
                             "inference_precision": str(compiled.get_property("INFERENCE_PRECISION_HINT"))}

    def runner(self, rows: list[dict]) -> Callable[[], object]:
        feed = self.classifier.pad(rows)
        return lambda: self.classifier.run_batch(feed)


class TorchModel:
    def __init__(self, path: str, backend, threads: int | None):
        import torch

        from kdedge.models.students import load_student

        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.device = torch.device(backend.device)
        self.student = load_student(path)
        self.student.model.to(self.device, dtype=getattr(torch, backend.dtype))
        self.cuda = self.device.type == "cuda"
        self.session_info = {"device": str(self.device), "threads": torch.get_num_threads(),
                             "torch": torch.__version__, "dtype": backend.dtype, "mode": "eval, inference_mode",
                             "timer": "cuda events" if self.cuda else "perf_counter",
                             **({"gpu": torch.cuda.get_device_name(self.device)} if self.cuda else {})}

    def features(self, texts, pairs) -> list[dict]:
        from kdedge.data.batching import encode
        from kdedge.data.loaders import Split

        split = Split(text=list(texts), labels=np.zeros(len(texts)), text_pair=pairs)
        features = encode(self.student.tokenizer, split, self.student.meta["max_length"],
                          siamese=self.student.siamese, add_special_tokens=self.student.add_special_tokens)
        return [{k: v for k, v in f.items() if k != "labels"} for f in features]

    def runner(self, rows: list[dict]) -> Callable[[], object]:
        from kdedge.data.batching import PadCollator

        batch = {k: v.to(self.device) for k, v in PadCollator(self.student.tokenizer.pad_token_id)(rows).items()}
        torch, model = self.torch, self.student.model

        def run():
            with torch.inference_mode():
                out = self.student.logits(model, batch)
            if self.cuda:  # the call returns when its result is ready (measure() times with CUDA events too)
                torch.cuda.synchronize(self.device)
            return out

        return run

    def measure(self, run: Callable[[], object], **timing) -> list[float]:
        """Seconds per call: CUDA events around each call on a GPU (the GPU's own clock, the stream synchronised),
        else the runtime's wall-clock timer."""
        if not self.cuda:
            return measure(run, **timing)
        return cuda_event_times(self.torch, self.device, run, **timing)

    def logits(self, texts, pairs, batch_size: int) -> np.ndarray:
        from kdedge.training import eval_loader, predict_logits

        features = [{**f, "labels": 0} for f in self.features(texts, pairs)]
        loader, order = eval_loader(features, batch_size, self.student.tokenizer.pad_token_id)
        return predict_logits(self.student.model, loader, order, self.student.logits)


def cuda_event_times(torch, device, run: Callable[[], object], *, warmup: int, min_runs: int, min_time: float,
                     max_runs: int) -> list[float]:
    """`measure` on a CUDA device: warm-up, then each call between two timing events on the current stream; the
    device is synchronised before the first and after each call, so a call's time holds its kernels, not the ones
    queued before it, and the next call starts on an idle GPU."""
    for _ in range(warmup):
        run()
    torch.cuda.synchronize(device)
    times: list[float] = []
    spent = 0.0
    while len(times) < max_runs and (len(times) < min_runs or spent < min_time):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run()
        end.record()
        end.synchronize()
        torch.cuda.synchronize(device)
        elapsed = start.elapsed_time(end) / 1000.0  # milliseconds -> seconds
        times.append(elapsed)
        spent += elapsed
    return times


# What runs a model: its kind (bundle or PyTorch folder), unless the backend names another engine.
MODEL_KINDS = {"onnx": OnnxModel, "torch": TorchModel, "openvino": OpenVinoModel}


class _Unavailable(Exception):
    pass


def stretch(row: dict, length: int) -> dict:
    """The example's tokens repeated to exactly `length` positions, all attended (padded-to-length inputs)."""
    out = {}
    for key, values in row.items():
        values = list(values) or [0]
        if key.startswith("attention_mask"):
            out[key] = [1] * length
        else:
            out[key] = (values * (length // len(values) + 1))[:length]
    return out


# What an engine says when a model's graph has an op it cannot compile or run (then followed by the op names):
# OpenVINO's ONNX frontend (its unconverted_ops_report, inside ONNX Runtime's EP_FAIL or from openvino itself), and
# ONNX Runtime's NOT_IMPLEMENTED for a node no kernel of the session implements.
_UNSUPPORTED_OPS = re.compile(r"(?:No conversion rule found for operations|Conversion is failed for|does not support "
                              r"the following ONNX operations):\s*([^\n]+)|Could not find an implementation for "
                              r"(\S+?)\(\d+\) node")


def run_job(job: dict) -> dict:
    """The job's result: "ok" with latency (and logits), or "unavailable" with the reason in one line: the backend is
    not usable here, or it cannot compile or run this model's graph (an op it does not support: a fact about the
    backend, not a failed benchmark). Any other failure raises."""
    backend = BACKENDS[job["backend"]]
    try:
        return _measure_job(job, backend)
    except Exception as e:
        why = unsupported_graph(backend, e)
        if why is None:
            raise
        return {"status": "unavailable", "why": why}


def unsupported_graph(backend, error: BaseException) -> str | None:
    """One line naming the op(s), when `error` says that `backend` (another engine than ONNX Runtime's CPU provider,
    the reference every bundle runs on) cannot compile or run the model's graph; None for any other error. The
    runtime's BundleError keeps only the first line of ONNX Runtime's message: the whole one is its context."""
    if backend.provider in (None, "CPUExecutionProvider") and backend.engine is None:
        return None
    messages, seen = [], error
    while seen is not None and len(messages) < 5:
        messages.append(str(seen))
        seen = seen.__cause__ or seen.__context__
    text = "\n".join(messages)
    ops = [name.strip() for m in _UNSUPPORTED_OPS.finditer(text) for found in m.groups() if found
           for name in found.split(",") if name.strip()]
    ops = list(dict.fromkeys(re.sub(r"-\d+$", "", op) for op in ops))  # com.microsoft.DynamicQuantizeLSTM-1
    engine = backend.provider or backend.engine
    if ops:
        return f"{engine} cannot run this model's graph: it has no implementation of {', '.join(ops[:5])}"
    if "EP_FAIL" in text:
        first = next((line.strip() for line in text.splitlines() if line.strip()), "")
        return f"{engine} cannot compile this model's graph ({first[:200]})"
    return None


def warm_each_shape(runners: list[Callable[[], object]], batches: list[list[dict]]) -> None:
    """One untimed call for each distinct input shape. A GPU can pay once for every new shape (on an H200 under
    fp16/bf16 torch, a length's first call took ~40 ms, the next ones 2 ms), and a warm-up of the first batches
    alone left the timed calls measuring that instead of the model."""
    seen = set()
    for run, rows in zip(runners, batches):
        shape = tuple(max(np.shape(row[name]) for row in rows) for name in sorted(rows[0]))
        if shape not in seen:
            seen.add(shape)
            run()


def _measure_job(job: dict, backend) -> dict:
    why = backend.unavailable()
    if why:
        return {"status": "unavailable", "why": why}
    try:
        model = MODEL_KINDS[backend.engine or job["model"]["kind"]](job["model"]["path"], backend, job.get("threads"))
    except _Unavailable as e:
        return {"status": "unavailable", "why": str(e)}
    texts, pairs = job["texts"], job.get("pairs")
    features = model.features(texts, pairs)
    timing = {k: job[k] for k in ("warmup", "min_runs", "min_time", "max_runs")}
    measure_calls = getattr(model, "measure", measure)  # a model may time itself (TorchModel on CUDA: CUDA events)
    real, padded = {}, {}
    for bs in job["batch_sizes"]:
        batches = [features[i:i + bs] for i in range(0, len(features) - bs + 1, bs)] or [features[:bs]]
        runners = [model.runner(rows) for rows in batches]
        warm_each_shape(runners, batches)
        # Each timed call takes the next dev batch, so real-length percentiles cover the dev length mix.
        cycle = itertools.cycle(runners)
        real[str(bs)] = summarize(measure_calls(lambda: next(cycle)(), **timing), bs)
        padded[str(bs)] = {}
        for length in job["seq_lens"]:
            rows = [stretch(features[i % len(features)], length) for i in range(bs)]
            padded[str(bs)][str(length)] = summarize(measure_calls(model.runner(rows), **timing), bs)
    result = {"status": "ok", "session": model.session_info, "latency": {"real": real, "padded": padded}}
    if job.get("accuracy", True):
        eval_batch_size = scoring_batch_size(job["model"]["quantization"], job["eval_batch_size"])
        result["eval_batch_size"] = eval_batch_size
        result["logits"] = model.logits(texts, pairs, eval_batch_size).tolist()
        result["eval_logits"] = {name: model.logits(s["texts"], s.get("pairs"), eval_batch_size).tolist()
                                 for name, s in job.get("eval_sets", {}).items()}
    return result


def main(argv: list[str]) -> None:
    job_file, result_file = map(Path, argv)
    result = run_job(json.loads(job_file.read_text()))
    tmp = result_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(result_file)


if __name__ == "__main__":
    main(sys.argv[1:])
