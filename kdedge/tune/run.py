"""`kdedge tune`: an Optuna study over the distillation recipe, scored on what ships: each trial distils a student,
exports it int8 with the target's preset and measures the bundle itself, its dev metric through ONNX Runtime and
its batch-1 p50 on the chosen backend beside the int8 teacher's, in fresh bench worker processes over interleaved
rounds (the bench's own machinery).

Two modes: `budget` maximises retention with the latency/size/speed-up budget as Optuna constraints (a trial over
budget is recorded as infeasible, never dropped), pruning hopeless trials on their dev metric at each evaluation;
`pareto` searches retention against p50 with NSGA-II and keeps the front. The study lives in Optuna's RDB storage
(SQLite in --out by default, PostgreSQL for many workers), with heartbeats, so a rerun continues it and a killed
worker loses only its running trial.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import socket
import sys
import tempfile
import time
import warnings
from pathlib import Path

from kdedge.config import DistillConfig, ExportConfig, ModelDataOptions, TuneConfig, to_dict
from kdedge.errors import KdedgeError
from kdedge.outputs import read_json
from kdedge.tune.report import write_outputs
from kdedge.tune.space import Param, baseline_params, load_space
from kdedge.tune.trials import (TEACHER_CALIBRATION, feasible, pooled_teacher_p50, pruned_reason,
                                trial_recipe)

# What a failed trial can fail on and the study survives: bad options or shapes, a diverging loss, a backend error.
TRIAL_ERRORS = (KdedgeError, ValueError, RuntimeError)
HEARTBEAT_S = 10


def tune(cfg: TuneConfig) -> Path:
    import optuna

    space = load_space(cfg.space)
    backend = _check_backend(cfg.backend)
    out = Path(cfg.out)
    _prepare_out(out, cfg)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = _open_study(cfg, out, space)
    from kdedge.data import load_task_data

    data = load_task_data(cfg, train_optional=bool(cfg.transfer))
    teacher_int8 = _teacher_int8(cfg)
    calibrate_teacher(study, teacher_int8, backend, data, cfg)
    if cfg.baseline and not study.trials and "baseline" not in study.user_attrs:
        study.set_user_attr("baseline", True)
        study.enqueue_trial(baseline_params(cfg, space), user_attrs={"baseline": True})

    counted = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL,
               optuna.trial.TrialState.RUNNING)
    remaining = cfg.trials - len(study.get_trials(deepcopy=False, states=counted))
    if remaining > 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=remaining, desc="trials", unit="trial")
        objective = Objective(cfg, space, out, backend, data, teacher_int8)
        study.optimize(objective, n_trials=remaining, timeout=cfg.timeout, catch=TRIAL_ERRORS,
                       callbacks=[optuna.study.MaxTrialsCallback(cfg.trials, states=counted),
                                  lambda s, t: _progress(bar, s, t, cfg)])
        bar.close()
    write_outputs(study, cfg, out)
    return out


def _check_backend(name: str):
    from kdedge.bench.backends import BACKENDS

    backend = BACKENDS.get(name)
    if backend is None or backend.kind != "onnx":
        onnx = ", ".join(n for n, b in BACKENDS.items() if b.kind == "onnx")
        raise KdedgeError(f"--backend {name}: a tuned student is measured as its int8 bundle; use one of {onnx}")
    why = backend.unavailable()
    if why:
        raise KdedgeError(f"--backend {name} cannot run here: {why}")
    return backend


def _prepare_out(out: Path, cfg: TuneConfig) -> None:
    """A study folder is continued by rerunning; anything else there is never overwritten without --overwrite."""
    marker = out / "tune.json"
    if out.exists() and any(out.iterdir()):
        if cfg.overwrite:
            import shutil

            shutil.rmtree(out)
        elif not marker.is_file():
            raise KdedgeError(f"{out} exists and is not a `kdedge tune` folder; choose another --out or pass --overwrite")
    out.mkdir(parents=True, exist_ok=True)
    if not marker.is_file():
        from kdedge.outputs import write_json

        write_json(marker, {"study_name": cfg.study_name, "storage": cfg.storage or "sqlite (study.db)"})


def storage_url(cfg: TuneConfig, out: Path) -> str:
    return cfg.storage or f"sqlite:///{(out / 'study.db').resolve()}"


def _open_study(cfg: TuneConfig, out: Path, space: list[Param]):
    import optuna

    if cfg.mode == "budget":
        pruner = {"median": optuna.pruners.MedianPruner(n_startup_trials=2),
                  "hyperband": optuna.pruners.HyperbandPruner(),
                  "none": optuna.pruners.NopPruner()}[cfg.pruner]
        directions = ["maximize"]
    else:  # multi-objective studies cannot prune (Optuna reports one value per step)
        pruner, directions = optuna.pruners.NopPruner(), ["maximize", "minimize"]
    for attempt in range(3):  # workers started together race to create the tables: the loser retries
        try:
            study = _create_study(cfg, out, pruner, directions)
            break
        except KdedgeError:
            if attempt == 2:
                raise
            time.sleep(1 + attempt)
    _check_question(study, cfg, space)
    study.sampler = make_sampler(cfg, sampler_seed(cfg, len(study.get_trials(deepcopy=False))))
    return study


# NSGA-II's generation: a study of tens of trials evolves over several (Optuna's default of 50 would leave a 30-trial
# study one random generation). Fixed, since a study's generations must keep one size across reruns.
PARETO_POPULATION = 10


def make_sampler(cfg: TuneConfig, seed: int):
    import optuna

    if cfg.mode == "budget":  # the budget: each trial's set_constraint
        return optuna.samplers.TPESampler(seed=seed)
    return optuna.samplers.NSGAIISampler(population_size=PARETO_POPULATION, seed=seed)


def sampler_seed(cfg: TuneConfig, trials_so_far: int) -> int:
    """--seed itself for a new study on this machine's SQLite (so that it reproduces); any other worker, and a rerun
    that continues a study, mixes in how far the study is and who runs it: a sampler restarted on the same seed draws
    the same points again (a rerun repeated its study's first trials), and so do two workers on one seed."""
    if trials_so_far == 0 and not cfg.storage:
        return cfg.seed
    import hashlib

    key = f"{cfg.seed}:{trials_so_far}:{socket.gethostname()}:{os.getpid()}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "little")


def _create_study(cfg: TuneConfig, out: Path, pruner, directions):
    import optuna

    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna; they are what makes a rerun safe
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = optuna.storages.RDBStorage(storage_url(cfg, out), heartbeat_interval=HEARTBEAT_S,
                                                 grace_period=3 * HEARTBEAT_S)
        study = optuna.create_study(storage=storage, pruner=pruner, study_name=cfg.study_name,
                                    directions=directions, load_if_exists=True)
    except Exception as e:  # SQLAlchemy and the drivers raise their own types for an unreachable database
        hint = " (PostgreSQL: pip install 'kdedge[postgres]')" if isinstance(e, ImportError) else ""
        raise KdedgeError(f"--storage: cannot open the study ({type(e).__name__}: {str(e).splitlines()[0]}){hint}") \
            from None
    return study


# Where things are on one worker's machine: may differ between workers of one study.
_LOCAL = {"out", "resume", "overwrite", "cache_dir", "data_dir", "teacher", "transfer", "train_file", "dev_file",
          "word_vectors", "eval_file"}


def _check_question(study, cfg: TuneConfig, space: list[Param]) -> None:
    """The question a study answers is fixed when it starts: a rerun, or another worker, may change only
    --trials, --timeout and where its files are (a trial timed with other threads, preset or rounds would not
    compare with the others)."""
    recipe = {k: v for k, v in to_dict(cfg).items()
              if k in {f.name for f in dataclasses.fields(DistillConfig)} and k not in _LOCAL}
    question = _jsonable({"mode": cfg.mode, "space": [dataclasses.asdict(p) for p in space], "backend": cfg.backend,
                          "budget": [cfg.max_latency_ms, cfg.max_size_mb, cfg.min_speedup],
                          "timing": [cfg.preset, cfg.threads, cfg.timing_runs, cfg.rounds], "recipe": recipe})
    stored = study.user_attrs.get("question")
    if stored is None:
        study.set_user_attr("question", question)
    elif stored != question:
        changed = sorted(k for k in question if stored.get(k) != question[k])
        raise KdedgeError(f"study '{cfg.study_name}' was started with another {', '.join(changed)}; rerun it as it "
                          "was (only --trials and --timeout may change), or give a new --study-name or --out")


def _jsonable(value):
    import json

    return json.loads(json.dumps(value))


def budget_constraints(cfg: TuneConfig, p50_ms: float, size_mb: float, speedup: float) -> dict[str, float]:
    """Optuna's constraint values, by name: how far over each budget the trial is (<= 0: within it)."""
    values = {"p50_ms": p50_ms - cfg.max_latency_ms if cfg.max_latency_ms else None,
              "size_mb": size_mb - cfg.max_size_mb if cfg.max_size_mb else None,
              "speedup": cfg.min_speedup - speedup if cfg.min_speedup else None}
    return {k: v for k, v in values.items() if v is not None}


class Objective:
    """One trial: the sampled recipe distilled, exported int8 and measured."""

    def __init__(self, cfg: TuneConfig, space: list[Param], out: Path, backend, data, teacher_int8):
        self.cfg, self.space, self.out, self.backend, self.data, self.teacher_int8 = \
            cfg, space, out, backend, data, teacher_int8

    def __call__(self, trial):
        import optuna

        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        params = {p.name: p.suggest(trial) for p in self.space}
        folder = self.out / "trials" / f"{trial.number:04d}"
        try:
            recipe = trial_recipe(self.cfg, params, folder / "student")
            from kdedge.distill.run import distill_student

            pruning = self.cfg.mode == "budget" and self.cfg.pruner != "none"
            student = distill_student(recipe, on_evaluate=_reporter(trial) if pruning else None)
            bundle = _export(student, folder / "bundle", self.cfg, qat=recipe.qat)
            p50_ms, teacher_p50, metric = measure_pair(bundle, self.teacher_int8, self.backend, self.data,
                                                       self.cfg)
        except optuna.TrialPruned:
            raise
        except TRIAL_ERRORS as e:
            trial.set_user_attr("reason", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300])
            raise
        scores = read_json(student / "metrics.json")
        teacher = scores["teacher_dev"][self.data.task.main_metric]  # the PyTorch teacher's, as in kdedge bench
        for name, on_set in scores.get("eval", {}).items():  # --eval-file sets: the PyTorch student's retention
            trial.set_user_attr(f"eval_retention:{name}", on_set["retention"])
        size_mb = (bundle / "model.onnx").stat().st_size / 1e6
        teacher_reference = study_teacher_p50(trial.study, teacher_p50)
        speedup = teacher_reference / p50_ms
        retention = metric / teacher if teacher else 0.0
        for key, value in (("metric", metric), ("retention", retention), ("p50_ms", p50_ms), ("size_mb", size_mb),
                           ("teacher_int8_p50_beside_ms", teacher_p50), ("teacher_int8_p50_ms", teacher_reference),
                           ("speedup_vs_teacher_int8", speedup),
                           ("student", str(student)), ("bundle", str(bundle))):
            trial.set_user_attr(key, value)
        if self.cfg.mode == "pareto":
            return retention, p50_ms
        over = budget_constraints(self.cfg, p50_ms, size_mb, speedup)
        for name, value in over.items():
            trial.set_constraint(name, value)
        trial.set_user_attr("constraints", over)
        return retention


def calibrate_teacher(study, teacher_int8, backend, data, cfg: TuneConfig) -> list[float]:
    """The int8 teacher's batch-1 p50 in 2 x --rounds fresh worker processes, once a study (kept in its storage: a
    rerun or another worker reuses them), so that the first trials' speed-ups do not rest on one or two readings.
    Two workers starting together may both calibrate; either set serves."""
    readings = study.user_attrs.get(TEACHER_CALIBRATION)
    if readings is None:
        with tempfile.TemporaryDirectory() as tmp:
            readings = [_time_in_worker(teacher_int8, backend, data, cfg, Path(tmp))["latency"]["real"]["1"]["p50_ms"]
                        for _ in range(2 * cfg.rounds)]
        try:
            study.set_user_attr(TEACHER_CALIBRATION, readings)
        except Exception:  # another worker stored its readings first (a unique-key race in the database): theirs serve
            if TEACHER_CALIBRATION not in study.user_attrs:
                raise
    return readings


def study_teacher_p50(study, reading: float) -> float:
    """The int8 teacher's p50 a trial's speed-up is taken against: the median of the study's calibration readings,
    its reading beside this trial and those beside every trial finished before it. On a shared machine a 6-layer
    teacher's reading moves by 10-20 % from one trial to the next while a small student's does not (two trials of
    one shape read 9.9x and 12.2x), so one reading alone would decide the feasibility of every student near the
    budget; the calibration keeps that true of the study's first trials too."""
    import optuna

    finished = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    readings = [t.user_attrs["teacher_int8_p50_beside_ms"] for t in finished
                if "teacher_int8_p50_beside_ms" in t.user_attrs]
    return pooled_teacher_p50(study, [*readings, reading])


def _reporter(trial):
    """Report the selection metric at each evaluation; raise TrialPruned when the pruner says so."""
    import optuna

    steps = itertools.count()

    def report(score: float) -> None:
        step = next(steps)
        trial.report(score, step)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at evaluation {step + 1} (dev {score:.4f})")

    return report


def _export(student: Path, out: Path, cfg: TuneConfig, qat: bool) -> Path:
    from kdedge.onnx.bundle import export_bundle

    data = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(ModelDataOptions)}
    return export_bundle(ExportConfig(model=str(student), out=str(out), quantize="qat" if qat else "dynamic",
                                      preset=cfg.preset, overwrite=True, verify=64, **data))


def _teacher_int8(cfg: TuneConfig):
    """The teacher's int8 bundle as `kdedge bench` exports, caches and checks it (this CPU's preset), once a study."""
    from kdedge.bench.models import teacher_bundles
    from kdedge.models.teacher_cache import default_cache_dir

    if not (Path(cfg.teacher) / "model.safetensors").is_file():
        raise KdedgeError(f"--teacher {cfg.teacher}: kdedge tune times the teacher's int8 bundle, so it needs a "
                          "teacher folder (from `kdedge teacher`)")
    return teacher_bundles(cfg.teacher, cfg, default_cache_dir())[1]


def measure_pair(bundle: Path, teacher_int8, backend, data, cfg: TuneConfig) -> tuple[float, float, float]:
    """(the bundle's batch-1 p50 ms, the int8 teacher's, the bundle's dev main metric) on `backend`, `teacher_int8`
    being the teacher's bench model: the two timed back to back, each in a fresh bench worker process, over --rounds
    rounds in alternating order, each p50 the median over rounds; so the speed-up compares two figures from the same
    minutes on a machine whose speed drifts."""
    import numpy as np

    from kdedge.bench.models import bundle_model
    from kdedge.bench.rounds import median_over_rounds, round_order
    from kdedge.data import compute_metrics

    models = [bundle_model(str(bundle)), teacher_int8]
    latencies, logits = ([], []), None
    with tempfile.TemporaryDirectory() as tmp:
        for round_index in range(cfg.rounds):
            for i in round_order(len(models), round_index):
                scored = round_index == 0 and i == 0  # the student's dev metric, once
                result = _time_in_worker(models[i], backend, data, cfg, Path(tmp), scored=scored)
                latencies[i].append(result["latency"])
                logits = result["logits"] if scored else logits
    student_p50, teacher_p50 = (median_over_rounds(lat)["real"]["1"]["p50_ms"] for lat in latencies)
    metric = compute_metrics(data.task, np.asarray(logits, dtype=np.float32), data.dev.labels)[data.task.main_metric]
    return student_p50, teacher_p50, float(metric)


def _time_in_worker(model, backend, data, cfg: TuneConfig, tmp: Path, scored: bool = False) -> dict:
    """One bench worker process timing `model` at batch 1 (and scoring it on dev when `scored`)."""
    from kdedge.bench.run import bench_job, run_in_process
    from kdedge.config import BenchConfig

    timing = BenchConfig(out="-", threads=cfg.threads, warmup=5, min_runs=cfg.timing_runs, min_time=0.0,
                         max_runs=cfg.timing_runs)
    result = run_in_process({**bench_job(timing, model, backend.name, data, {}, [1], []), "accuracy": scored}, tmp)
    if result["status"] != "ok":
        raise KdedgeError(f"timing {model.path} on {backend.name} failed: {result.get('why')}")
    return result


def _progress(bar, study, trial, cfg: TuneConfig) -> None:
    bar.update(1)
    done = [t for t in study.trials if t.state.name == "COMPLETE" and "retention" in t.user_attrs]
    if cfg.mode == "budget":
        within = [t for t in done if feasible(t)]
        if within:
            best = max(within, key=lambda t: t.user_attrs["retention"])
            bar.set_postfix(best=f"#{best.number} retention {best.user_attrs['retention']:.4f} "
                                 f"p50 {best.user_attrs['p50_ms']:.2f} ms")
    else:
        bar.set_postfix(front=len(study.best_trials))
    what = trial.user_attrs.get("reason") or pruned_reason(trial) or (
        f"retention {trial.user_attrs['retention']:.4f}, p50 {trial.user_attrs['p50_ms']:.2f} ms, "
        f"{trial.user_attrs['size_mb']:.2f} MB" if "retention" in trial.user_attrs else "")
    # through the bar, which clears its line first: echoed beside it, the line joined the bar's and logs dropped both
    bar.write(f"trial {trial.number} {trial.state.name.lower()}: {what}", file=sys.stderr)
