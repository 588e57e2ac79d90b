"""What a CUDA run needs, checked on the CPU (issue 46, item 4): fp32 master weights from a half-precision checkpoint,
the mixed-precision choice handed to accelerate, QAT's fake-quant ops under autocast, the teacher-logit cache's
float32 host arrays, and the torch-cuda timer (CUDA events and synchronisation, through a stand-in for torch.cuda)."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
from torch import nn

from kdedge.bench import worker
from kdedge.bench.backends import BACKENDS, backend_device, backend_precision
from kdedge.errors import KdedgeError
from tests.conftest import build_tiny_bert

TEXTS = ["a fine film", "a dull film", "not good at all", "quite good indeed", "bad acting", "great fun"] * 4


@pytest.fixture()
def half_checkpoint(tmp_path):
    """A tiny BERT classifier saved in half precision, as benchmarks/gpu/prepare.sh carries the teacher's base."""
    from transformers import AutoModelForSequenceClassification

    folder = build_tiny_bert(tmp_path / "tiny", TEXTS, 2, label_names=["negative", "positive"])
    AutoModelForSequenceClassification.from_pretrained(folder).half().save_pretrained(folder)
    return folder


def _sst2_task():
    from kdedge.data.tasks import get_glue_task

    return get_glue_task("sst2")


def test_a_half_precision_checkpoint_loads_as_float32_master_weights(half_checkpoint):
    from kdedge.models.students import load_student
    from kdedge.models.teacher import load_teacher, new_classifier

    assert {p.dtype for p in new_classifier(str(half_checkpoint), _sst2_task()).parameters()} == {torch.float32}
    teacher, _ = load_teacher(str(half_checkpoint), _sst2_task())
    assert {p.dtype for p in teacher.parameters()} == {torch.float32}
    (half_checkpoint / "manifest.json").write_text('{"base_model": "x", "task": {}, "max_length": 32}')
    assert {p.dtype for p in load_student(half_checkpoint).model.parameters()} == {torch.float32}


@pytest.mark.parametrize("requested, expected", [("auto", "fp16"), ("fp16", "fp16"), ("bf16", "bf16"), ("no", "no")])
def test_on_cuda_accelerate_gets_the_mixed_precision_asked_for(monkeypatch, requested, expected):
    from kdedge import training

    seen = {}
    monkeypatch.setattr(training.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(training, "Accelerator", lambda **kw: seen.update(kw) or "accelerator")
    assert training.make_accelerator(requested) == "accelerator"
    # fp16 on CUDA: accelerate keeps fp32 weights, autocasts the forward and scales the loss (its GradScaler)
    assert seen == {"mixed_precision": expected, "cpu": False}


def test_fp16_autocast_is_refused_on_the_cpu(monkeypatch):
    from kdedge import training

    monkeypatch.setattr(training.torch.cuda, "is_available", lambda: False)
    with pytest.raises(KdedgeError, match="needs a CUDA GPU"):
        training.make_accelerator("fp16")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_fake_quant_ops_run_in_float32_and_return_the_input_dtype(monkeypatch, dtype):
    from kdedge.quant import qat

    seen = []
    per_tensor, per_channel = torch.fake_quantize_per_tensor_affine, torch.fake_quantize_per_channel_affine

    def record(op):
        def wrapped(x, scale, zero, *args):
            seen.append((x.dtype, scale.dtype, zero.dtype, scale.device, zero.device))
            return op(x, scale, zero, *args)
        return wrapped

    monkeypatch.setattr(qat.torch, "fake_quantize_per_tensor_affine", record(per_tensor))
    monkeypatch.setattr(qat.torch, "fake_quantize_per_channel_affine", record(per_channel))
    x, w = torch.randn(3, 8).to(dtype), torch.randn(4, 8).to(dtype)
    assert qat.fake_quant_dynamic_uint8(x).dtype == dtype and qat.fake_quant_weight(w).dtype == dtype
    assert seen == [(torch.float32, torch.float32, torch.int32, x.device, x.device)] * 2
    # the half result is the float32 fake quantization, rounded once to the half type
    monkeypatch.undo()
    expected = qat.fake_quant_dynamic_uint8(x.float()).to(dtype)
    assert torch.equal(qat.fake_quant_dynamic_uint8(x), expected)


def test_a_qat_model_trains_under_bf16_autocast():
    from kdedge.quant.qat import QATLinear, prepare_qat

    torch.manual_seed(0)
    model = prepare_qat(nn.Sequential(nn.Embedding(20, 16), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 2)))
    assert sum(type(m) is QATLinear for m in model.modules()) == 2
    ids = torch.randint(0, 20, (4, 5))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(ids).mean(1)
        loss = nn.functional.cross_entropy(out.float(), torch.tensor([0, 1, 0, 1]))
    assert out.dtype == torch.bfloat16
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)  # fp32 masters
    assert all(g.abs().sum() > 0 for g in grads)  # straight-through: every parameter learns


def test_cached_teacher_logits_are_float32_host_arrays(tmp_path, half_checkpoint):
    from kdedge.data.loaders import Split
    from kdedge.models.teacher import load_teacher
    from kdedge.models.teacher_cache import as_cached_logits, teacher_logits

    assert as_cached_logits(torch.ones(2, 2, dtype=torch.bfloat16)).dtype == np.float32
    assert as_cached_logits(np.ones((2, 2), np.float16)).dtype == np.float32
    teacher, tokenizer = load_teacher(str(half_checkpoint), _sst2_task())
    # an accelerator under bfloat16 autocast (what `--mixed-precision bf16` gives on a GPU), on the CPU here
    accelerator = types.SimpleNamespace(device=torch.device("cpu"), num_processes=1,
                                        autocast=lambda: torch.autocast("cpu", dtype=torch.bfloat16))
    split = Split(text=TEXTS[:6], labels=np.zeros(6))
    logits, path = teacher_logits(teacher, tokenizer, split, max_length=32, batch_size=4, cache_dir=tmp_path,
                                  accelerator=accelerator)
    stored = np.load(path)
    assert logits.dtype == stored.dtype == np.float32 and stored.shape == (6, 2)
    with torch.no_grad():  # the bf16 logits, within bf16's rounding of the fp32 ones
        reference = teacher(**tokenizer(TEXTS[:6], padding=True, return_tensors="pt")).logits.numpy()
    np.testing.assert_allclose(stored, reference, atol=0.05)


class _FakeCuda:
    """torch.cuda's timing surface: events read a fake GPU clock that each run advances."""

    def __init__(self):
        self.clock_ms, self.calls = 0.0, []
        cuda = self

        class Event:
            def __init__(self, enable_timing=False):
                assert enable_timing
                self.at = None

            def record(self):
                cuda.calls.append("record")
                self.at = cuda.clock_ms

            def synchronize(self):
                cuda.calls.append("event.synchronize")

            def elapsed_time(self, end):
                return end.at - self.at

        self.Event = Event

    def synchronize(self, device=None):
        self.calls.append("synchronize")


def test_cuda_timing_reads_events_and_synchronises():
    cuda = _FakeCuda()
    fake_torch = types.SimpleNamespace(cuda=cuda)

    def run():  # 2.5 ms on the GPU's clock each call
        cuda.calls.append("run")
        cuda.clock_ms += 2.5

    times = worker.cuda_event_times(fake_torch, "cuda:0", run, warmup=2, min_runs=3, min_time=0.0, max_runs=10)
    assert times == pytest.approx([0.0025] * 3)
    assert cuda.calls[:3] == ["run", "run", "synchronize"]  # warm-up, then the queue drained before timing
    timed = ["record", "run", "record", "event.synchronize", "synchronize"]
    assert cuda.calls[3:] == timed * 3


def test_torch_models_time_with_events_on_cuda_and_the_wall_clock_elsewhere(monkeypatch):
    cuda = _FakeCuda()
    model = worker.TorchModel.__new__(worker.TorchModel)
    model.torch, model.device = types.SimpleNamespace(cuda=cuda, inference_mode=torch.inference_mode), "cuda:0"
    model.cuda = True
    model.student = types.SimpleNamespace(tokenizer=types.SimpleNamespace(pad_token_id=0),
                                          logits=lambda m, b: cuda.calls.append("forward"))

    def runner():  # TorchModel.runner's closure, without moving a batch to a device this machine lacks
        def run():
            with model.torch.inference_mode():
                model.student.logits(None, {})
            if model.cuda:
                model.torch.cuda.synchronize(model.device)
        return run

    run = runner()
    run()
    assert cuda.calls == ["forward", "synchronize"]  # a call returns when the GPU is done
    cuda.calls.clear()
    model.measure(run, warmup=0, min_runs=2, min_time=0.0, max_runs=2)
    assert cuda.calls.count("record") == 4
    model.cuda = False
    monkeypatch.setattr(worker, "measure", lambda run, **timing: ["wall clock"])
    assert model.measure(run, warmup=0, min_runs=1, min_time=0.0, max_runs=1) == ["wall clock"]


def test_the_runner_synchronises_the_cuda_device_after_each_call(monkeypatch):
    """TorchModel.runner itself, on the CPU with the CUDA flag set: its call ends with torch.cuda.synchronize."""
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(("synchronize", device)))
    model = worker.TorchModel.__new__(worker.TorchModel)
    model.torch, model.device, model.cuda = torch, torch.device("cpu"), True
    net = nn.Embedding(10, 2)
    model.student = types.SimpleNamespace(tokenizer=types.SimpleNamespace(pad_token_id=0), model=net,
                                          logits=lambda m, b: m(b["input_ids"]).sum(1))
    out = model.runner([{"input_ids": [1, 2, 3], "attention_mask": [1, 1, 1]}])()
    assert out.shape == (1, 2) and calls == [("synchronize", torch.device("cpu"))]


def test_half_precision_torch_backends():
    assert BACKENDS["torch-cuda-fp16"].dtype == "float16" and BACKENDS["torch-cuda-bf16"].dtype == "bfloat16"
    assert backend_precision("torch-cuda-bf16", "fp32") == "bf16" and backend_precision("torch-cuda", "fp32") == "fp32"
    assert backend_precision("device:pi", "int8") == "int8"
    assert [backend_device(b) for b in ("torch-cuda-fp16", "ort-tensorrt", "ort-cpu", "device:pi")] == \
        ["cuda", "cuda", "cpu", "cpu"]
    if not torch.cuda.is_available():
        why = BACKENDS["torch-cuda-bf16"].unavailable()
        assert why and ("CPU-only" in why or "no CUDA device" in why)
