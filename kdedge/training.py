"""The training loop shared by the teacher and every student.

Built on accelerate, so the same code runs on the CPU, one GPU with mixed precision, or several
GPUs/nodes under `accelerate launch`. Seeded, length-bucketed, clipped, checkpointed every
`save_steps` and every epoch end (model, optimizer, scheduler and RNG states), resumable to the
exact same result, with early stopping on the task's main dev metric and a JSON-lines log.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from safetensors.torch import load_model, save_model
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from kdedge.config import TrainOptions
from kdedge.data.batching import LengthBucketBatchSampler, PadCollator, feature_length
from kdedge.errors import KdedgeError
from kdedge.outputs import RunDir, read_json, write_json
from kdedge.processes import launch_state
from kdedge_runtime.cpu import BF16_FLAGS, native_bf16, read_cpu

LossFn = Callable[[torch.nn.Module, dict, float], torch.Tensor]  # (model, batch, progress in [0, 1])
LogitsFn = Callable[[torch.nn.Module, dict], torch.Tensor]
MetricsFn = Callable[[np.ndarray, np.ndarray], dict]
SaveFn = Callable[[torch.nn.Module, "os.PathLike"], None]


def make_accelerator(mixed_precision: str = "auto") -> Accelerator:
    cuda = torch.cuda.is_available()
    if mixed_precision == "auto":
        mixed_precision = "fp16" if cuda else "no"
    if not cuda:
        _check_cpu_precision(mixed_precision)
    launch_state()  # several processes under `accelerate launch`, on the CPU too
    return Accelerator(mixed_precision=mixed_precision, cpu=not cuda)


def _check_cpu_precision(mixed_precision: str) -> None:
    """On the CPU: fp32, or bfloat16 autocast where the CPU computes bfloat16 itself (PyTorch emulates it elsewhere,
    slower than fp32). fp16 autocast is a GPU's."""
    if mixed_precision == "no":
        return
    if mixed_precision == "fp16":
        raise KdedgeError("--mixed-precision fp16 needs a CUDA GPU; on the CPU use 'no' (or 'bf16' where the CPU has "
                          "bfloat16 instructions)")
    machine, flags = read_cpu()
    if not native_bf16(flags):
        raise KdedgeError(f"--mixed-precision bf16: this CPU ({machine}) has no bfloat16 instructions "
                          f"({', '.join(BF16_FLAGS)}), so PyTorch would emulate them, slower than fp32; use 'no'")


def eval_loader(features: list[dict], batch_size: int, pad_token_id: int) -> tuple[DataLoader, np.ndarray]:
    """A length-sorted loader and the permutation that restores the original order."""
    sampler = LengthBucketBatchSampler([feature_length(f) for f in features], batch_size, shuffle=False)
    order = np.concatenate(list(sampler)) if len(features) else np.zeros(0, dtype=int)
    # A private generator: iterating must not draw from the global RNG that seeds initialisation and dropout.
    loader = DataLoader(features, batch_sampler=sampler, collate_fn=PadCollator(pad_token_id),
                        generator=torch.Generator())
    return loader, order


@torch.no_grad()
def predict_logits(model, loader: DataLoader, order: np.ndarray, logits_fn: LogitsFn,
                   accelerator: Accelerator | None = None, desc: str = "predict") -> np.ndarray:
    """Run `logits_fn` over a sorted loader; return float32 logits in the dataset's original order.

    With an accelerator the loader may be sharded across processes; outputs are gathered."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    outputs = []
    for batch in tqdm(loader, desc=desc, leave=False, disable=len(loader) < 20):
        batch = {k: v.to(device) for k, v in batch.items()}
        logits = logits_fn(model, batch)
        if accelerator is not None and accelerator.num_processes > 1:
            logits = accelerator.gather_for_metrics(logits)
        outputs.append(logits.float().cpu().numpy())
    model.train(was_training)
    logits = np.concatenate(outputs) if outputs else np.zeros((0, 1), np.float32)
    restored = np.empty_like(logits)
    restored[order] = logits
    return restored


def _param_groups(model: torch.nn.Module, weight_decay: float, lr_overrides: dict[str, float]):
    """Decay for weight matrices only; parameters under a prefix in `lr_overrides` get their own lr."""
    decay, no_decay, special = [], [], {prefix: [] for prefix in lr_overrides}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        prefix = next((pre for pre in lr_overrides if name.startswith(pre)), None)
        if prefix is not None:
            special[prefix].append(p)
        else:
            (no_decay if p.ndim < 2 or "LayerNorm" in name or "norm" in name.lower() else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    groups += [{"params": ps, "weight_decay": 0.0, "lr": lr_overrides[pre]} for pre, ps in special.items() if ps]
    return [g for g in groups if g["params"]]


@dataclass
class TrainState:
    global_step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    best_metric: float = -math.inf
    best_step: int = 0
    evals_since_best: int = 0
    train_time_s: float = 0.0
    stopped_early: bool = False

    def save(self, path) -> None:
        write_json(path, self.__dict__)

    @classmethod
    def load(cls, path) -> "TrainState":
        return cls(**read_json(path))


@dataclass
class TrainJob:
    """What one `train` call trains and how it is scored.

    `stage` names a stage of a multi-stage recipe (its own checkpoint, so each stage resumes on its own); `name` is
    what the progress bar and the log lines say is training (e.g. "bilstm prediction"). With `evaluate_dev=False`
    there is no dev evaluation and no best checkpoint: the caller keeps the final weights (TinyBERT's
    intermediate-layer stage has no meaningful dev metric). `eval_sets` (name -> features) are scored at every
    evaluation too, and `select_on` names the set whose metric picks the best checkpoint ("dev" or one of them).
    `on_evaluate` gets that metric after every evaluation (a tuner's pruner stops a hopeless run by raising from
    it). `evaluate_start` scores the model before its first step too, so a stage that only refines a trained model
    (QAT) keeps where it started when no step of it does better. `lr_overrides` gives the parameters under a name
    prefix their own learning rate."""
    model: torch.nn.Module
    train_features: list[dict]
    dev_features: list[dict]
    pad_token_id: int
    loss_fn: LossFn
    logits_fn: LogitsFn
    metrics_fn: MetricsFn
    main_metric: str
    save_fn: SaveFn
    stage: str = ""
    name: str = "train"
    evaluate_dev: bool = True
    lr_overrides: dict[str, float] = field(default_factory=dict)
    eval_sets: dict[str, list[dict]] = field(default_factory=dict)
    select_on: str = "dev"
    on_evaluate: Callable[[float], None] | None = None
    evaluate_start: bool = False


def train(opts: TrainOptions, run: RunDir, job: TrainJob,
          accelerator: Accelerator | None = None) -> tuple[dict, TrainState]:
    """Train `job.model`, keep the best dev checkpoint in `run.best_dir`; return its dev metrics and the state."""
    accelerator = accelerator or make_accelerator(opts.mixed_precision)
    # Checkpoints hold exactly what this call prepares (a previous stage's model must not be in them).
    accelerator.free_memory()
    set_seed(opts.seed)
    trainer = _Trainer(opts, run, job, accelerator)
    trainer.resume()
    if job.evaluate_dev and job.evaluate_start and trainer.state.global_step == 0:
        trainer.evaluate()
    trainer.model.train()
    t0 = time.time() - trainer.state.train_time_s
    while trainer.state.epoch < opts.epochs and not trainer.state.stopped_early:
        trainer.train_epoch(t0)
    if job.evaluate_dev and not (run.best_dir / "metrics.json").is_file():  # --epochs 0: the model as it starts
        trainer.evaluate()
    if not job.evaluate_dev and trainer.ema is not None:  # the caller keeps the final weights: the averaged ones
        accelerator.unwrap_model(trainer.model).load_state_dict(trainer.kept().state_dict())
    accelerator.wait_for_everyone()
    accelerator.free_memory()
    best = read_json(run.best_dir / "metrics.json")["dev"] if job.evaluate_dev else {}
    return best, trainer.state


class _Trainer:
    """One `train` call's loop, in the steps it takes: prepare, resume, then epochs of steps with evaluations and
    checkpoints."""

    def __init__(self, opts: TrainOptions, run: RunDir, job: TrainJob, accelerator: Accelerator):
        self.opts, self.run, self.job, self.accelerator = opts, run, job, accelerator
        self.state = TrainState()
        self.checkpoint_dir = run.work / (f"checkpoint-{job.stage}" if job.stage else "checkpoint")
        self._prepare()

    def _prepare(self) -> None:
        """Loaders, optimizer and schedule, prepared by accelerate (sharded over processes when launched so)."""
        opts, job, accelerator = self.opts, self.job, self.accelerator
        self.sampler = LengthBucketBatchSampler([feature_length(f) for f in job.train_features], opts.batch_size,
                                                seed=opts.seed)
        # Its own generator: starting an iterator must not draw from the global RNG (dropout), or a resumed
        # run, which starts its iterator mid-epoch, would drift from an uninterrupted one.
        train_loader = DataLoader(job.train_features, batch_sampler=self.sampler,
                                  collate_fn=PadCollator(job.pad_token_id),
                                  generator=torch.Generator().manual_seed(opts.seed))
        optimizer = torch.optim.AdamW(_param_groups(job.model, opts.weight_decay, job.lr_overrides), lr=opts.lr)
        # a copy of the model made before accelerate wraps it (a copy made after would call the original's forward)
        self.ema = (None if opts.ema_decay is None else
                    AveragedModel(job.model, device=accelerator.device,
                                  multi_avg_fn=get_ema_multi_avg_fn(opts.ema_decay)).requires_grad_(False))
        if job.dev_features:
            dev_loader, self.dev_order = eval_loader(job.dev_features, opts.eval_batch_size, job.pad_token_id)
            self.dev_labels = np.asarray([f["labels"] for f in job.dev_features])
            self.model, self.optimizer, self.train_loader, self.dev_loader = accelerator.prepare(
                job.model, optimizer, train_loader, dev_loader)
        else:  # nothing to evaluate on (task-agnostic distillation)
            self.model, self.optimizer, self.train_loader = accelerator.prepare(job.model, optimizer, train_loader)
        self.extra = {}  # the evaluation sets: loader (sharded like dev's), order, labels
        for set_name, features in job.eval_sets.items():
            loader, order = eval_loader(features, opts.eval_batch_size, job.pad_token_id)
            self.extra[set_name] = (accelerator.prepare(loader), order, np.asarray([f["labels"] for f in features]))
        self.steps_per_epoch = len(self.train_loader)
        self.total_steps = self.steps_per_epoch * opts.epochs
        # accelerate steps a prepared scheduler once per process, so size it for all of them.
        self.scheduler = accelerator.prepare(get_linear_schedule_with_warmup(
            self.optimizer, int(opts.warmup_ratio * self.total_steps) * accelerator.num_processes,
            self.total_steps * accelerator.num_processes,
        ))

    def resume(self) -> None:
        """With --resume, continue from the stage's checkpoint; its log lines after the checkpoint are dropped."""
        accelerator, run = self.accelerator, self.run
        resumed = run.resume and self.checkpoint_dir.is_dir()
        if resumed:
            try:
                accelerator.load_state(str(self.checkpoint_dir))
                self.state = TrainState.load(self.checkpoint_dir / "trainer_state.json")
                if self.ema is not None:
                    load_model(self.ema, str(self.checkpoint_dir / _EMA_FILE))
            except Exception as e:  # torch, safetensors and json each raise their own types for a damaged file
                raise KdedgeError(
                    f"--resume: the checkpoint in {self.checkpoint_dir} cannot be read ({type(e).__name__}: "
                    f"{str(e).splitlines()[0][:160] if str(e) else ''}); it is damaged, so the run cannot continue: "
                    f"start over with --overwrite") from None
            accelerator.print(f"resuming from step {self.state.global_step} (epoch {self.state.epoch + 1}, "
                              f"batch {self.state.step_in_epoch}/{self.steps_per_epoch})")
        if run.resume and accelerator.is_main_process:  # without a checkpoint the stage starts over: all its lines go
            _forget_lines_after(run.log_path, self.job.stage, self.state.global_step if resumed else -1)

    def train_epoch(self, t0: float) -> None:
        opts, state, accelerator = self.opts, self.state, self.accelerator
        self.sampler.set_epoch(state.epoch)
        # accelerate's loader re-seeds the sampler from its own count of passes each time it is iterated, and
        # a resumed process starts that count at 0: without this, the epoch after a resumed one replays epoch 1.
        self.train_loader.set_epoch(state.epoch)
        loader = (accelerator.skip_first_batches(self.train_loader, state.step_in_epoch) if state.step_in_epoch
                  else self.train_loader)
        bar = tqdm(loader, total=self.steps_per_epoch, initial=state.step_in_epoch,
                   desc=f"{self.job.name} epoch {state.epoch + 1}/{opts.epochs}",
                   disable=not accelerator.is_local_main_process, dynamic_ncols=True)
        running = []
        for batch in bar:
            running.append(self._step(batch))
            if state.global_step % opts.log_steps == 0:
                self._log({"stage": self.job.stage, "step": state.global_step, "epoch": state.epoch + 1,
                           "loss": float(np.mean(running)), "lr": self.scheduler.get_last_lr()[0]})
                bar.set_postfix(loss=f"{np.mean(running):.4f}")
                running = []
            mid_epoch = state.step_in_epoch < self.steps_per_epoch
            if self.job.evaluate_dev and opts.eval_steps and state.global_step % opts.eval_steps == 0 and mid_epoch:
                self.evaluate()
                if self._out_of_patience():
                    state.stopped_early = True
                    break
            if state.global_step % opts.save_steps == 0 and mid_epoch:
                state.train_time_s = time.time() - t0
                self._checkpoint()
        bar.close()
        if self.job.evaluate_dev and not state.stopped_early:
            self.evaluate()
            if self._out_of_patience():
                state.stopped_early = True
                accelerator.print(f"early stopping: no dev improvement in {opts.patience} evaluation(s)")
        state.epoch += 1
        state.step_in_epoch = 0
        state.train_time_s = time.time() - t0
        self._checkpoint()

    def _step(self, batch: dict) -> float:
        """One optimizer step; returns the loss. A loss that is not finite stops the run with what to change."""
        state, accelerator = self.state, self.accelerator
        with accelerator.accumulate(self.model):
            loss = self.job.loss_fn(self.model, batch, state.global_step / max(self.total_steps, 1))
            if not torch.isfinite(loss.detach()):
                raise KdedgeError(
                    f"the loss became {loss.item()} at step {state.global_step + 1} (epoch {state.epoch + 1}); "
                    "lower --lr, check the data for broken rows, or turn off --mixed-precision"
                )
            accelerator.backward(loss)
            if self.opts.max_grad_norm and accelerator.sync_gradients:
                accelerator.clip_grad_norm_(self.model.parameters(), self.opts.max_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            if self.ema is not None and accelerator.sync_gradients:
                self.ema.update_parameters(accelerator.unwrap_model(self.model))
        state.global_step += 1
        state.step_in_epoch += 1
        return loss.item()

    def _out_of_patience(self) -> bool:
        return self.opts.patience is not None and self.state.evals_since_best >= self.opts.patience

    def kept(self) -> torch.nn.Module:
        """The model that is evaluated and kept: the weights' moving average with --ema-decay, else the model."""
        if self.ema is None:
            return self.model
        model = self.accelerator.unwrap_model(self.model)
        # buffers are copied, not averaged: some are integer counts (e.g. QAT observers), which an average would break
        for average, current in zip(self.ema.module.buffers(), model.buffers()):
            average.copy_(current)
        return self.ema.module

    def evaluate(self) -> dict:
        """Score dev (and the evaluation sets); keep the model in `run.best_dir` when the selection metric improves."""
        job, state, accelerator = self.job, self.state, self.accelerator
        model = self.kept()
        logits = predict_logits(model, self.dev_loader, self.dev_order, job.logits_fn, accelerator, desc="eval")
        metrics = job.metrics_fn(logits, self.dev_labels)
        on_sets = {set_name: job.metrics_fn(predict_logits(model, loader, order, job.logits_fn, accelerator,
                                                           desc=set_name), labels)
                   for set_name, (loader, order, labels) in self.extra.items()}
        score = (metrics if job.select_on == "dev" else on_sets[job.select_on])[job.main_metric]
        improved = score > state.best_metric
        if improved:
            state.best_metric, state.best_step, state.evals_since_best = score, state.global_step, 0
            if accelerator.is_main_process:
                self._save_best(model, metrics, on_sets)
        else:
            state.evals_since_best += 1
        self._log({"stage": job.stage, "step": state.global_step, "epoch": state.epoch + 1, "dev": metrics,
                   **({"eval": on_sets} if on_sets else {}), "best": improved})
        accelerator.print(f"{job.name} epoch {state.epoch + 1} step {state.global_step}: dev {_fmt(metrics)}"
                          + "".join(f"; {n} {_fmt(m)}" for n, m in on_sets.items()) + (" (best)" if improved else ""))
        if job.on_evaluate is not None:
            job.on_evaluate(score)
        return metrics

    def _save_best(self, model: torch.nn.Module, metrics: dict, on_sets: dict) -> None:
        tmp = self.run.work / "best.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        self.job.save_fn(self.accelerator.unwrap_model(model), tmp)
        write_json(tmp / "metrics.json", {"dev": metrics, **({"eval": on_sets} if on_sets else {}),
                                          "step": self.state.global_step})
        if self.run.best_dir.exists():
            shutil.rmtree(self.run.best_dir)
        os.replace(tmp, self.run.best_dir)

    def _checkpoint(self) -> None:
        """Model, optimizer, scheduler, RNG and loop state, written whole to a temporary folder, then renamed."""
        accelerator, checkpoint_dir = self.accelerator, self.checkpoint_dir
        accelerator.wait_for_everyone()
        tmp = checkpoint_dir.with_name(checkpoint_dir.name + ".tmp")
        if accelerator.is_main_process and tmp.exists():
            shutil.rmtree(tmp)
        accelerator.wait_for_everyone()  # nobody writes into the folder being removed
        accelerator.save_state(str(tmp))  # every process writes its own random state into it
        accelerator.wait_for_everyone()  # ... before the main process renames it
        if accelerator.is_main_process:
            self.state.save(tmp / "trainer_state.json")
            if self.ema is not None:
                save_model(self.ema, str(tmp / _EMA_FILE))
            if checkpoint_dir.exists():
                shutil.rmtree(checkpoint_dir)
            os.replace(tmp, checkpoint_dir)
        accelerator.wait_for_everyone()

    def _log(self, record: dict) -> None:
        if self.accelerator.is_main_process:
            with open(self.run.log_path, "a") as f:
                f.write(json.dumps(record) + "\n")


_EMA_FILE = "ema.safetensors"  # the moving average's weights and count, in each checkpoint


def _forget_lines_after(log_path: Path, stage: str, step: int) -> None:
    """Drop the log lines `stage` wrote after its checkpoint at `step`: the resumed run writes them again,
    so the log reads as one uninterrupted run's."""
    if not log_path.exists():
        return
    lines = log_path.read_text().splitlines(keepends=True)
    kept = [line for line in lines if not _written_after(line, stage, step)]
    if len(kept) < len(lines):
        tmp = log_path.with_name(log_path.name + ".tmp")
        tmp.write_text("".join(kept))
        os.replace(tmp, log_path)


def _written_after(line: str, stage: str, step: int) -> bool:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:  # a line cut short by the kill
        return True
    return record.get("stage") == stage and record.get("step", 0) > step


def _fmt(metrics: dict) -> str:
    return ", ".join(f"{k}={v:.4f}" for k, v in metrics.items())
