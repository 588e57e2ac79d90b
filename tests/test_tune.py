"""`kdedge tune` on tiny models: the study's outputs, budgets as constraints, pruning, failures with reasons,
continuing a study, and two workers on one PostgreSQL study."""

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kdedge.config import DistillConfig, TuneConfig, build_config
from kdedge.errors import KdedgeError

optuna = pytest.importorskip("optuna")


def _tune(tmp_path, teacher, glue_dir, name="study", space=None, **kw):
    from kdedge.tune.run import tune

    space_file = tmp_path / f"{name}-space.yaml"
    space_file.write_text(space or "lr: {low: 1.0e-3, high: 3.0e-2, log: true}\nalpha: {low: 0.0, high: 1.0}\n")
    base = dict(task="sst2", data_dir=str(glue_dir), teacher=str(teacher), out=str(tmp_path / name),
                space=str(space_file), max_train_samples=300, max_eval_samples=100, epochs=2, batch_size=32,
                lstm_hidden=16, mlp_hidden=16, lr=1e-2, trials=3, timing_runs=5, rounds=1, seed=0,
                cache_dir=str(tmp_path / "cache"))
    base.update(kw)
    return tune(build_config(TuneConfig, None, **base))


def _trials(out: Path) -> list[dict]:
    with (out / "trials.csv").open() as f:
        return list(csv.DictReader(f))


def test_a_study_measures_each_bundle_and_writes_every_output(tiny_trained_teacher, glue_dir, tmp_path):
    from kdedge_runtime import Classifier

    lines = (glue_dir / "SST-2" / "train.tsv").read_text().splitlines()
    held = tmp_path / "held.tsv"
    held.write_text("\n".join([lines[0]] + lines[2000:2050]) + "\n")
    out = _tune(tmp_path, tiny_trained_teacher, glue_dir, max_size_mb=100.0, pruner="none",
                eval_file=(f"held={held}",))
    rows = _trials(out)
    assert all(float(r["eval_retention_held"]) > 0 for r in rows)  # evaluation sets ride along as extra figures
    assert [r["number"] for r in rows] == ["0", "1", "2"] and all(r["state"] == "complete" for r in rows)
    assert rows[0]["baseline"] == "True" and float(rows[0]["param_lr"]) == 1e-2  # the recipe as given ran first
    for r in rows:
        bundle = Path(r["bundle"])
        manifest = json.loads((bundle / "manifest.json").read_text())
        assert manifest["precision"] == "int8" and float(r["size_mb"]) == pytest.approx(
            (bundle / "model.onnx").stat().st_size / 1e6)
        # the dev metric is the bundle's own, through ONNX Runtime (as the export scored it, up to a near-tied row
        # or two: this tiny student's logits are close and the worker runs 1 thread), over the PyTorch teacher's
        assert float(r["metric"]) == pytest.approx(manifest["dev"]["onnx"]["accuracy"], abs=0.021)
        teacher = json.loads((bundle.parent / "student" / "metrics.json").read_text())["teacher_dev"]["accuracy"]
        assert float(r["retention"]) == pytest.approx(float(r["metric"]) / teacher)
        assert float(r["p50_ms"]) > 0 and r["feasible"] == "True"
        # the speed-up is against the int8 teacher timed beside this bundle, not a reading from another minute
        assert float(r["speedup_vs_teacher_int8"]) == pytest.approx(
            float(r["teacher_int8_p50_ms"]) / float(r["p50_ms"]))
    assert (out / "trials.parquet").stat().st_size > 0 and (out / "pareto.png").stat().st_size > 10_000
    best = json.loads((out / "best" / "manifest.json").read_text())
    winner = max(rows, key=lambda r: float(r["retention"]))
    assert best["trial"] == int(winner["number"]) and best["figures"]["retention"] == pytest.approx(
        float(winner["retention"]))
    assert Classifier(out / "best" / "bundle").predict(["a gorgeous, witty film"])[0].label in ("negative", "positive")
    # the winner's whole recipe, as `kdedge distill --config` reads it: its sampled values and the fixed options
    recipe = build_config(DistillConfig, str(out / "best" / "recipe.yaml"), out=str(tmp_path / "again"))
    assert recipe.lr == pytest.approx(float(winner["param_lr"])) and recipe.alpha == pytest.approx(
        float(winner["param_alpha"]))
    assert recipe.eval_file == (f"held={held}",) and recipe.max_train_samples == 300 and recipe.lstm_hidden == 16
    md = (out / "report.md").read_text()
    assert "Kept under best/: trial " in md and "(hand-set)" in md
    # the teacher was timed alone when the study started (2 x --rounds readings), and those readings count
    study = optuna.load_study(study_name="kdedge", storage=f"sqlite:///{out / 'study.db'}")
    starting = study.user_attrs["teacher_int8_calibration_ms"]
    assert len(starting) == 2 and all(p50 > 0 for p50 in starting) and "median of 2 readings when the study" in md


def test_a_bundle_and_the_teacher_are_timed_in_interleaved_rounds(monkeypatch):
    """Three rounds in alternating order, each p50 the median of its rounds, the dev metric scored once."""
    from types import SimpleNamespace

    import kdedge.bench.models as bench_models
    import kdedge.bench.run as bench_run
    from kdedge.data.tasks import get_glue_task
    from kdedge.tune.run import measure_pair

    p50s = {"student": iter([1.0, 9.0, 2.0]), "teacher": iter([10.0, 30.0, 20.0])}
    order, scored = [], []

    def fake_worker(job, tmp):
        who = job["model"]["path"]
        order.append(who)
        scored.append(job["accuracy"])
        return {"status": "ok", "latency": {"real": {"1": {"runs": 5, "p50_ms": next(p50s[who])}}},
                **({"logits": [[0.0, 1.0], [1.0, 0.0]]} if job["accuracy"] else {})}

    monkeypatch.setattr(bench_run, "run_in_process", fake_worker)
    monkeypatch.setattr(bench_models, "bundle_model", lambda path: SimpleNamespace(path=path, to_dict=lambda: {
        "path": path}))
    data = SimpleNamespace(task=get_glue_task("sst2"), dev=SimpleNamespace(text=["good", "bad"], text_pair=None,
                                                                          labels=[1, 0]))
    cfg = build_config(TuneConfig, None, task="sst2", teacher="t", out="o", space="s", rounds=3)
    teacher_int8 = SimpleNamespace(path="teacher", to_dict=lambda: {"path": "teacher"})
    student_p50, teacher_p50, metric = measure_pair(Path("student"), teacher_int8,
                                                    SimpleNamespace(name="ort-cpu"), data, cfg)
    assert order == ["student", "teacher", "teacher", "student", "student", "teacher"]
    assert scored == [True, False, False, False, False, False]
    assert (student_p50, teacher_p50) == (2.0, 20.0) and metric == 1.0


def test_the_speedup_is_taken_against_the_teachers_readings_pooled_over_the_study():
    import optuna

    from kdedge.tune.run import study_teacher_p50

    study = optuna.create_study()
    assert study_teacher_p50(study, 3.3) == 3.3  # a study without starting readings: the trial's own alone
    study.set_user_attr("teacher_int8_calibration_ms", [2.6, 2.8])
    assert study_teacher_p50(study, 4.2) == 2.8  # the first trial's slow reading does not set its speed-up
    for reading in (2.5, 2.7, 9.0):  # finished trials, one of them an outlier
        trial = study.ask()
        trial.set_user_attr("teacher_int8_p50_beside_ms", reading)
        study.tell(trial, 0.9)
    pruned = study.ask()
    pruned.set_user_attr("teacher_int8_p50_beside_ms", 100.0)  # not a finished trial: left out
    study.tell(pruned, state=optuna.trial.TrialState.PRUNED)
    assert study_teacher_p50(study, 3.3) == pytest.approx(2.75)  # median of 2.5, 2.6, 2.7, 2.8, 3.3, 9.0


def test_the_teacher_is_timed_when_a_study_starts_and_only_then(monkeypatch):
    from types import SimpleNamespace

    import kdedge.bench.run as bench_run
    from kdedge.tune.run import calibrate_teacher

    p50s, workers = iter([3.1, 2.7, 2.9, 2.8, 3.0, 2.6]), []

    def fake_worker(job, tmp):
        workers.append(job["model"]["path"])
        assert job["batch_sizes"] == [1] and not job["accuracy"]
        return {"status": "ok", "latency": {"real": {"1": {"runs": 5, "p50_ms": next(p50s)}}}}

    monkeypatch.setattr(bench_run, "run_in_process", fake_worker)
    cfg = build_config(TuneConfig, None, task="sst2", teacher="t", out="o", space="s", rounds=3)
    teacher_int8 = SimpleNamespace(path="teacher", to_dict=lambda: {"path": "teacher"})
    study = optuna.create_study()
    data = SimpleNamespace(dev=SimpleNamespace(text=["good"], text_pair=None, labels=[1]))
    assert calibrate_teacher(study, teacher_int8, SimpleNamespace(name="ort-cpu"), data, cfg) == [
        3.1, 2.7, 2.9, 2.8, 3.0, 2.6]  # 2 x --rounds worker processes, the teacher alone
    assert workers == ["teacher"] * 6 and study.user_attrs["teacher_int8_calibration_ms"] == [
        3.1, 2.7, 2.9, 2.8, 3.0, 2.6]
    calibrate_teacher(study, teacher_int8, SimpleNamespace(name="ort-cpu"), data, cfg)  # a rerun of the study
    assert len(workers) == 6


def test_only_a_new_local_study_samples_on_the_seed_itself():
    from kdedge.tune.run import sampler_seed

    cfg = build_config(TuneConfig, None, task="sst2", teacher="t", out="o", space="s", seed=7)
    assert sampler_seed(cfg, 0) == 7  # a new study reproduces
    assert len({7, sampler_seed(cfg, 3), sampler_seed(cfg, 4)}) == 3  # a rerun goes on from where the study is
    shared = build_config(TuneConfig, None, task="sst2", teacher="t", out="o", space="s", seed=7,
                          storage="postgresql://db/tune")
    assert sampler_seed(shared, 0) != 7  # workers started together on one study must not draw the same points


def test_over_budget_trials_are_recorded_infeasible_not_dropped(tiny_trained_teacher, glue_dir, tmp_path):
    out = _tune(tmp_path, tiny_trained_teacher, glue_dir, trials=2, max_latency_ms=1e-6, pruner="none")
    rows = _trials(out)
    assert len(rows) == 2 and all(r["state"] == "complete" and r["feasible"] == "False" for r in rows)
    assert not any((out / "best").iterdir()) and "No trial met the budget" in (out / "report.md").read_text()


def test_a_planted_bad_learning_rate_is_pruned(tiny_trained_teacher, glue_dir, tmp_path):
    storage = f"sqlite:///{tmp_path / 'planted.db'}"
    study = optuna.create_study(storage=storage, study_name="kdedge", direction="maximize")
    for lr in (3e-2, 3e-2, 1e-9):  # two good trials, then one that cannot learn
        study.enqueue_trial({"lr": lr, "alpha": 1.0})
    out = _tune(tmp_path, tiny_trained_teacher, glue_dir, storage=storage, baseline=False, epochs=3,
                space="lr: {low: 1.0e-9, high: 0.1, log: true}\nalpha: {low: 0.0, high: 1.0}\n")
    rows = _trials(out)
    assert [r["state"] for r in rows] == ["complete", "complete", "pruned"]
    assert rows[2]["reason"].startswith("pruned after 1 evaluation(s)")


def test_failing_trials_are_recorded_with_their_reason_and_the_study_goes_on(tiny_trained_teacher, glue_dir,
                                                                            tmp_path):
    out = _tune(tmp_path, tiny_trained_teacher, glue_dir, trials=2, student="tinybert", init="random", layers=1,
                baseline=False, space="hidden: {choices: [30]}\n", heads=4, intermediate=64)
    rows = _trials(out)
    assert [r["state"] for r in rows] == ["fail", "fail"]
    assert all("30" in r["reason"] and "4" in r["reason"] for r in rows), rows[0]["reason"]


def test_a_rerun_continues_the_study_without_repeating_finished_trials(tiny_trained_teacher, glue_dir, tmp_path,
                                                                      monkeypatch):
    import kdedge.distill.run as distill_run

    real, calls = distill_run.distill_student, []

    def killed_on_the_second(cfg, on_evaluate=None):
        calls.append(cfg.out)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the worker is stopped in its second trial
        return real(cfg, on_evaluate)

    monkeypatch.setattr(distill_run, "distill_student", killed_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        _tune(tmp_path, tiny_trained_teacher, glue_dir)
    first = (tmp_path / "study" / "trials" / "0000" / "student" / "model.safetensors").stat().st_mtime_ns
    calls.clear()
    out = _tune(tmp_path, tiny_trained_teacher, glue_dir)  # the same command: only what is missing runs
    assert len(calls) == 1
    rows = _trials(out)
    assert [r["state"] for r in rows] == ["complete", "fail", "complete"]
    assert rows[2]["param_lr"] != rows[1]["param_lr"]  # the restarted sampler does not draw the lost point again
    assert (out / "trials" / "0000" / "student" / "model.safetensors").stat().st_mtime_ns == first
    calls.clear()
    _tune(tmp_path, tiny_trained_teacher, glue_dir, trials=4)  # a larger total: one more trial
    assert len(calls) == 1 and len(_trials(out)) == 4
    with pytest.raises(KdedgeError, match="was started with another space"):
        _tune(tmp_path, tiny_trained_teacher, glue_dir, trials=5, space="lr: {low: 1.0e-4, high: 1.0e-2}\n")
    with pytest.raises(KdedgeError, match="was started with another timing"):  # its p50s would not compare
        _tune(tmp_path, tiny_trained_teacher, glue_dir, trials=5, threads=2)


def test_the_space_names_what_to_fix(tmp_path):
    from kdedge.tune.space import load_space

    cases = {"temprature: {low: 1, high: 2}": "not a distill option \\(did you mean 'temperature'",
             "teacher: {choices: [a, b]}": "fixed for the whole study",
             "lr: {low: 0.1, high: 0.01}": "low \\(0.1\\) must be below high",
             "shape: {choices: [2-128-4]}": "LAYERS-HIDDEN-HEADS-INTERMEDIATE",
             "soft_loss: {choices: [mse, hinge]}": "'soft_loss' must be one of",
             "lr: 0.1": "give \\{low: .., high: ..\\} or \\{choices: \\[..\\]\\}"}
    for i, (text, why) in enumerate(cases.items()):
        path = tmp_path / f"s{i}.yaml"
        path.write_text(text + "\n")
        with pytest.raises(KdedgeError, match=why):
            load_space(path)


def test_shipped_spaces_load_and_their_recipe_applies():
    from kdedge.config import DistillConfig
    from kdedge.tune.space import apply, load_space

    spaces = sorted((Path(__file__).resolve().parents[1] / "configs" / "spaces").glob("*.yaml"))
    assert spaces
    recipe = build_config(DistillConfig, str(Path(__file__).resolve().parents[1] / "configs" / "sst2-frontier.yaml"),
                          out="x", teacher="t")
    for path in spaces:
        space = load_space(path)
        # each parameter's first choice or its low end is a valid recipe
        values = {p.name: p.choices[0] if p.kind == "choice" else (int(p.low) if p.kind == "int" else p.low)
                  for p in space}
        assert isinstance(apply(recipe, values), DistillConfig), path.name
        # and every choice alone, since a trial checks the values it draws again (a scope name the config refuses
        # would fail each trial that draws it)
        for param in space:
            for choice in param.choices:
                apply(recipe, {param.name: choice})


def _postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


@pytest.fixture
def postgres():
    """A throwaway PostgreSQL cluster on 127.0.0.1 (Debian's server binaries), stopped afterwards."""
    bindir = _postgres_bin()
    if bindir is None:
        why = "PostgreSQL server binaries not installed (apt-get install postgresql)"
        if os.environ.get("KDEDGE_REQUIRE_POSTGRES"):
            pytest.fail(why)
        pytest.skip(why)
    pytest.importorskip("psycopg")
    import tempfile

    data = Path(tempfile.mkdtemp(prefix="kdedge-pg-"))  # not under pytest's tmp_path, which only root can enter
    as_user = []
    if os.geteuid() == 0:  # the server refuses to run as root
        shutil.chown(data, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(as_user + [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth", "trust"],
                   check=True, capture_output=True)
    subprocess.run(as_user + [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(data / "log"), "-w", "-o",
                              f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start"], check=True,
                   capture_output=True)
    try:
        subprocess.run(as_user + [str(bindir / "createdb") if (bindir / "createdb").exists() else "createdb",
                                  "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "kdedge"],
                       check=True, capture_output=True)
        yield f"postgresql://postgres@127.0.0.1:{port}/kdedge"
    finally:
        subprocess.run(as_user + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                       capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


def test_two_workers_share_one_postgresql_study(postgres, tiny_trained_teacher, glue_dir, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("lr: {low: 1.0e-3, high: 3.0e-2, log: true}\n")
    args = ["tune", "--task", "sst2", "--data-dir", str(glue_dir), "--teacher", str(tiny_trained_teacher),
            "--space", str(space), "--storage", postgres, "--trials", "4", "--max-train-samples", "200",
            "--max-eval-samples", "60", "--epochs", "1", "--lstm-hidden", "8", "--mlp-hidden", "8",
            "--timing-runs", "3", "--no-baseline", "--pruner", "none", "--cache-dir", str(tmp_path / "cache")]
    env = {**os.environ, "KDEDGE_CACHE_DIR": str(tmp_path / "cache")}
    workers = [subprocess.Popen([sys.executable, "-m", "kdedge.cli", *args, "--out", str(tmp_path / f"w{i}")],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
               for i in range(2)]
    logs = [w.communicate(timeout=900)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), [log[-3000:] for log in logs]
    for log in logs:  # each finished trial has a line of its own, not joined to the progress bar's
        lines = log.replace("\r", "\n").splitlines()
        assert any(line.startswith("trial ") and " complete: retention " in line for line in lines), log[-3000:]
    study = optuna.load_study(study_name="kdedge", storage=postgres)
    numbers = [t.number for t in study.trials]
    assert sorted(numbers) == list(range(len(numbers))) and 4 <= len(numbers) <= 5  # each recorded once
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials), [  # none lost, none left running
        (t.number, t.state.name, t.user_attrs.get("reason")) for t in study.trials]
    workers_seen = {t.user_attrs["worker"] for t in study.trials}
    assert len(workers_seen) == 2  # both took trials
    assert len({t.params["lr"] for t in study.trials}) == len(study.trials)  # each its own point, no duplicates
    # a third run of the same command finds nothing left to do and reads the same best trial back
    done = subprocess.run([sys.executable, "-m", "kdedge.cli", *args, "--out", str(tmp_path / "w2")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    best = max(study.trials, key=lambda t: t.user_attrs["retention"])
    assert json.loads((tmp_path / "w2" / "best" / "manifest.json").read_text())["trial"] == best.number
    assert len(_trials(tmp_path / "w2")) == len(numbers)

