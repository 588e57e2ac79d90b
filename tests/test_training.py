import json

import numpy as np
import pytest
import torch
from accelerate.state import AcceleratorState
from safetensors.numpy import load_file

from kdedge import training
from kdedge.config import DistillConfig, TrainOptions, build_config
from kdedge.distill import run as distill_run
from kdedge.distill.run import distill_student
from kdedge.errors import KdedgeError
from kdedge.outputs import RunDir, read_json


def _cfg(tiny_teacher, glue_dir, out, **kw):
    base = dict(task="sst2", data_dir=str(glue_dir), teacher=str(tiny_teacher), out=str(out),
                max_train_samples=200, max_eval_samples=64, epochs=2, batch_size=16, save_steps=5,
                lstm_hidden=8, mlp_hidden=8, lr=3e-3, seed=7, log_steps=1)
    base.update(kw)
    return build_config(DistillConfig, None, **base)


class Crash(Exception):
    pass


# after the step-5 checkpoint; before any; after it, with the weights' moving average to resume as well
@pytest.mark.parametrize("crash_at, saved, ema_decay", [(8, 5, None), (3, None, None), (8, 5, 0.9)])
def test_resume_continues_from_the_saved_step_and_matches_an_uninterrupted_run(tiny_teacher, glue_dir, tmp_path,
                                                                               monkeypatch, crash_at, saved, ema_decay):
    reference = distill_student(_cfg(tiny_teacher, glue_dir, tmp_path / "ref", ema_decay=ema_decay))

    calls = {"n": 0}
    original = distill_run.PredictionDistillLoss.__call__

    def crashing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == crash_at:
            raise Crash()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(distill_run.PredictionDistillLoss, "__call__", crashing)
    # an empty cache: the crashed run computes the teacher logits, the resumed one reads them
    monkeypatch.setenv("KDEDGE_CACHE_DIR", str(tmp_path / "fresh-cache"))
    out = tmp_path / "resumed"
    with pytest.raises(Crash):
        distill_student(_cfg(tiny_teacher, glue_dir, out, ema_decay=ema_decay))
    assert not out.exists()  # nothing half-written where the result goes
    checkpoint = out.with_name("resumed.partial") / "checkpoint"
    if saved:
        assert read_json(checkpoint / "trainer_state.json")["global_step"] == saved
    else:
        assert not checkpoint.exists()

    with pytest.raises(KdedgeError, match="--resume"):
        distill_student(_cfg(tiny_teacher, glue_dir, out, ema_decay=ema_decay))

    calls["n"] = -10**9  # no more crashes
    resumed = distill_student(_cfg(tiny_teacher, glue_dir, out, resume=True, ema_decay=ema_decay))
    a, b = load_file(reference / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    ref_metrics, res_metrics = read_json(reference / "metrics.json"), read_json(resumed / "metrics.json")
    assert ref_metrics["dev"] == res_metrics["dev"] and res_metrics["steps"] == ref_metrics["steps"] == 26
    # the crashed run had logged the steps after its checkpoint (or all of its steps); the resumed log has each once
    log = [json.loads(line) for line in (resumed / "train_log.jsonl").read_text().splitlines()]
    assert log == [json.loads(line) for line in (reference / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == list(range(1, 27))


def test_resume_refuses_changed_options(tiny_teacher, glue_dir, tmp_path, monkeypatch):
    def crash(self, *args, **kwargs):
        raise Crash()

    with monkeypatch.context() as m:
        m.setattr(distill_run.PredictionDistillLoss, "__call__", crash)
        with pytest.raises(Crash):
            distill_student(_cfg(tiny_teacher, glue_dir, tmp_path / "s"))
    with pytest.raises(KdedgeError, match=r"differ from the interrupted run .*\(lr\)"):
        distill_student(_cfg(tiny_teacher, glue_dir, tmp_path / "s", resume=True, lr=1e-2))


def test_nan_loss_stops_with_a_clear_message(tiny_teacher, glue_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(distill_run.PredictionDistillLoss, "__call__",
                        lambda self, logits, *a, **k: logits.sum() * float("nan"))
    with pytest.raises(KdedgeError, match=r"loss became nan at step 1 .*lower --lr"):
        distill_student(_cfg(tiny_teacher, glue_dir, tmp_path / "nan"))


@pytest.mark.parametrize("flags, precision, refused", [
    ({"avx2", "avx512_vnni"}, "bf16", "no bfloat16 instructions"),  # PyTorch would emulate it, slower than fp32
    ({"avx2", "avx512_bf16"}, "fp16", "needs a CUDA GPU"),
])
def test_cpu_mixed_precision_is_refused_where_the_cpu_cannot_run_it(monkeypatch, flags, precision, refused):
    monkeypatch.setattr(training.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(training, "read_cpu", lambda: ("x86_64", flags))
    with pytest.raises(KdedgeError, match=refused):
        training.make_accelerator(precision)


@pytest.fixture
def fresh_accelerator_state():
    """accelerate keeps one precision per process: start and leave this test's own."""
    AcceleratorState._reset_state()
    yield
    AcceleratorState._reset_state()


def test_bf16_trains_on_a_cpu_with_bfloat16_instructions_and_saves_fp32(tiny_teacher, glue_dir, tmp_path,
                                                                       monkeypatch, fresh_accelerator_state):
    monkeypatch.setattr(training.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(training, "read_cpu", lambda: ("x86_64", {"avx2", "avx512_bf16"}))
    made = []
    monkeypatch.setattr(distill_run, "make_accelerator", lambda precision: made.append(
        training.make_accelerator(precision)) or made[-1])
    # a transformer student: PyTorch computes its bf16 matmuls on any x86 CPU, while oneDNN's bf16 LSTM needs one
    # that has the instructions (seen failing on a Zen 3 with AVX2 alone, the flags above being faked)
    out = distill_student(_cfg(tiny_teacher, glue_dir, tmp_path / "bf16", mixed_precision="bf16", epochs=1,
                               student="tinybert", layers=1, init="teacher-layers", recipe="prediction"))
    assert [(a.mixed_precision, a.native_amp) for a in made] == [("bf16", True)]  # torch.autocast(cpu, bfloat16)
    weights = load_file(out / "model.safetensors")
    assert {w.dtype for w in weights.values()} == {np.dtype("float32")}
    assert all(np.isfinite(w).all() for w in weights.values())
    assert read_json(out / "metrics.json")["steps"] == 13


def test_early_stopping(tiny_teacher, glue_dir, tmp_path):
    out = distill_student(_cfg(tiny_teacher, glue_dir, tmp_path / "es", epochs=6, lr=1e-12, warmup_ratio=0.0,
                               patience=1))
    metrics = read_json(out / "metrics.json")
    # lr=1e-12: the dev metric never improves after the first evaluation, so the run stops after the second
    assert metrics["steps"] == 2 * 13 and metrics["best_step"] == 13


def test_existing_output_is_kept_without_overwrite(tmp_path):
    out = tmp_path / "student"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(KdedgeError, match="--overwrite"):
        RunDir(out)
    run = RunDir(out, overwrite=True)
    assert (out / "keep.txt").exists()  # replaced only once the new run is complete
    (run.work / "new.txt").write_text("new")
    run.finalize()
    assert (out / "new.txt").exists() and not (out / "keep.txt").exists()


def test_resume_compares_the_options_not_the_name_of_their_preset(tmp_path):
    """A run interrupted under one preset name resumes under another (a preset added since) as long as every option
    is the same; any option that differs is refused by name."""
    out = tmp_path / "student"
    with RunDir(out) as run:
        run.check_config({"lr": 3e-4, "layers": 4, "defaults": "small-data"})
    resumed = RunDir(out, resume=True)
    resumed.check_config({"lr": 3e-4, "layers": 4, "defaults": "small-data-assisted"})
    with pytest.raises(KdedgeError, match=r"the options differ from the interrupted run in .* \(layers\)"):
        RunDir(out, resume=True).check_config({"lr": 3e-4, "layers": 3, "defaults": "small-data-assisted"})


def test_ema_keeps_the_moving_average_of_the_weights(tiny_teacher, glue_dir, tmp_path, monkeypatch):
    decay, steps = 0.8, []
    step = training._Trainer._step

    def recording(self, batch):
        loss = step(self, batch)
        steps.append({k: v.detach().clone().numpy() for k, v in self.accelerator.unwrap_model(self.model)
                      .state_dict().items()})
        return loss

    monkeypatch.setattr(training._Trainer, "_step", recording)
    out = distill_student(_cfg(tiny_teacher, glue_dir, tmp_path / "ema", ema_decay=decay))
    best_step = read_json(out / "metrics.json")["best_step"]
    average = dict(steps[0])  # the first update copies the weights; each later one moves 1 - decay of the way
    for weights in steps[1:best_step]:
        average = {k: decay * average[k] + (1 - decay) * weights[k] for k in average}
    kept = load_file(out / "model.safetensors")
    shared = [k for k in kept if k in average and kept[k].dtype.kind == "f"]
    assert shared
    for key in shared:
        np.testing.assert_allclose(kept[key], average[key], rtol=1e-5, atol=1e-6)
    # and it is not just the step's own weights
    assert any(not np.allclose(kept[k], steps[best_step - 1][k]) for k in shared)


def test_ema_decay_must_be_below_one(tiny_teacher, glue_dir, tmp_path):
    with pytest.raises(KdedgeError, match=r"ema.decay.*\(0, 1\)"):
        _cfg(tiny_teacher, glue_dir, tmp_path / "e", ema_decay=1.0)


def test_ema_hands_the_average_to_a_stage_without_dev_evaluation(tmp_path):
    """A stage the caller keeps the final weights of (TinyBERT's intermediate layers, general distillation) keeps the
    average too."""
    decay, steps = 0.5, []
    model = torch.nn.EmbeddingBag(8, 2)
    features = [{"input_ids": [i % 8, (i + 3) % 8], "labels": i % 2} for i in range(24)]
    step = training._Trainer._step

    def recording(self, batch):
        loss = step(self, batch)
        steps.append(model.weight.detach().clone())
        return loss

    job = training.TrainJob(
        model=model, train_features=features, dev_features=[], pad_token_id=0,
        loss_fn=lambda m, batch, progress: torch.nn.functional.cross_entropy(m(batch["input_ids"]), batch["labels"]),
        logits_fn=lambda m, batch: m(batch["input_ids"]), metrics_fn=lambda logits, labels: {},
        main_metric="accuracy", save_fn=lambda m, path: None, evaluate_dev=False)
    opts = TrainOptions(out=str(tmp_path / "out"), epochs=2, batch_size=8, lr=0.1, ema_decay=decay)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(training._Trainer, "_step", recording)
        training.train(opts, RunDir(opts.out), job)
    average = steps[0]
    for weights in steps[1:]:
        average = decay * average + (1 - decay) * weights
    assert len(steps) == 6
    torch.testing.assert_close(model.weight.detach(), average)
    assert not torch.allclose(model.weight.detach(), steps[-1])
