"""What a study leaves for a person: trials.csv and trials.parquet (every parameter, figure, state and reason),
report.md, pareto.png (retention vs p50, bundle size as marker size, the int8 teacher and the hand-set recipe
marked) and best/ (the best feasible trial's student, bundle and recipe.yaml, or every trial on the Pareto front),
each written whole or not at all."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import yaml

from kdedge.config import TuneConfig, to_dict
from kdedge.outputs import write_json
from kdedge.tune.trials import TEACHER_CALIBRATION, feasible, pooled_teacher_p50, pruned_reason, trial_recipe

FIGURES = ("metric", "retention", "p50_ms", "size_mb", "teacher_int8_p50_beside_ms", "teacher_int8_p50_ms",
           "speedup_vs_teacher_int8")


def trial_rows(study) -> list[dict]:
    params = sorted({name for t in study.trials for name in t.params})
    eval_keys = sorted({k for t in study.trials for k in t.user_attrs if k.startswith("eval_retention:")})
    rows = []
    for t in study.trials:
        attrs = t.user_attrs
        rows.append({"number": t.number, "state": t.state.name.lower(), "baseline": bool(attrs.get("baseline")),
                     **{f"param_{p}": t.params.get(p) for p in params},
                     **{k: attrs.get(k) for k in FIGURES}, "feasible": feasible(t),
                     **{k.replace(":", "_"): attrs.get(k) for k in eval_keys},
                     "duration_s": round(t.duration.total_seconds(), 1) if t.duration else None,
                     "reason": attrs.get("reason") or pruned_reason(t), "worker": attrs.get("worker"),
                     "bundle": attrs.get("bundle")})
    return rows


def chosen(study, cfg: TuneConfig) -> list:
    """The trials kept under best/: the best feasible one (budget), or the Pareto front."""
    complete = [t for t in study.trials if t.state.name == "COMPLETE" and "retention" in t.user_attrs]
    if cfg.mode == "pareto":
        front = {t.number for t in study.best_trials}
        return [t for t in complete if t.number in front]
    within = [t for t in complete if feasible(t)]
    return [max(within, key=lambda t: t.user_attrs["retention"])] if within else []


def write_outputs(study, cfg: TuneConfig, out: Path) -> None:
    rows = trial_rows(study)
    best = chosen(study, cfg)
    _write_table(rows, out)
    _copy_best(best, cfg, out)
    (out / "report.md.tmp").write_text(markdown(study, cfg, rows, best))
    (out / "report.md.tmp").replace(out / "report.md")
    plot(rows, teacher_p50(study, rows), best, out / "pareto.png")


def teacher_p50(study, rows: list[dict]) -> float | None:
    """The int8 teacher's p50 for the study as a whole: the median of its readings when the study started and
    beside each trial's bundle."""
    return pooled_teacher_p50(study, [r["teacher_int8_p50_beside_ms"] for r in rows
                                      if r["teacher_int8_p50_beside_ms"] is not None])


def _write_table(rows: list[dict], out: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = out / "trials.csv.tmp"
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["number"])
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(out / "trials.csv")
    if rows:
        pq.write_table(pa.Table.from_pylist(rows), out / "trials.parquet.tmp")
        (out / "trials.parquet.tmp").replace(out / "trials.parquet")


def _copy_best(best: list, cfg: TuneConfig, out: Path) -> None:
    tmp = out / "best.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for t in best:
        target = tmp if cfg.mode == "budget" else tmp / f"trial-{t.number:04d}"
        here = Path(t.user_attrs["student"]).is_dir() and Path(t.user_attrs["bundle"]).is_dir()
        if here:  # a trial another worker ran has its files on that worker's machine
            shutil.copytree(t.user_attrs["student"], target / "student")
            shutil.copytree(t.user_attrs["bundle"], target / "bundle")
        target.mkdir(parents=True, exist_ok=True)
        (target / "recipe.yaml").write_text(recipe_yaml(cfg, t))
        write_json(target / "manifest.json", {
            "files": "student/ and bundle/" if here else f"on worker {t.user_attrs.get('worker')}: "
                                                         f"{t.user_attrs['student']}, {t.user_attrs['bundle']}",
            "command": "tune", "study": cfg.study_name, "trial": t.number, "mode": cfg.mode,
            "params": t.params, "figures": {k: t.user_attrs.get(k) for k in FIGURES},
            "budget": {"max_latency_ms": cfg.max_latency_ms, "max_size_mb": cfg.max_size_mb,
                       "min_speedup": cfg.min_speedup}})
    shutil.rmtree(out / "best", ignore_errors=True)
    tmp.replace(out / "best")


def recipe_yaml(cfg: TuneConfig, trial) -> str:
    """The trial's whole recipe as `kdedge distill --config` reads it: to retrain the winner on more data or
    other seeds without copying numbers out of a table."""
    recipe = to_dict(trial_recipe(cfg, trial.params, Path(".")))
    kept = {k.replace("_", "-"): list(v) if isinstance(v, tuple) else v for k, v in recipe.items()
            if v is not None and k not in ("out", "resume", "overwrite")}
    sample = (f"# The study trained on {cfg.max_train_samples} transfer rows: drop max-train-samples to use them "
              "all.\n" if cfg.max_train_samples else "")
    return (f"# kdedge tune, study '{cfg.study_name}', trial {trial.number}: "
            "kdedge distill --config recipe.yaml --out STUDENT [--seed N]\n" + sample
            + yaml.safe_dump(kept, sort_keys=False, allow_unicode=True))


def _fmt(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def markdown(study, cfg: TuneConfig, rows: list[dict], best: list) -> str:
    states = {}
    for r in rows:
        states[r["state"]] = states.get(r["state"], 0) + 1
    budget = [f"p50 ≤ {cfg.max_latency_ms:g} ms" if cfg.max_latency_ms else None,
              f"model.onnx ≤ {cfg.max_size_mb:g} MB" if cfg.max_size_mb else None,
              f"≥ {cfg.min_speedup:g}× the int8 teacher" if cfg.min_speedup else None]
    teacher = teacher_p50(study, rows)
    started = len(study.user_attrs.get(TEACHER_CALIBRATION, []))  # none in a study begun by an older kdedge
    lines = [f"# kdedge tune: study '{cfg.study_name}' ({cfg.mode})", "",
             f"Trials: {len(rows)} (" + ", ".join(f"{n} {s}" for s, n in sorted(states.items())) + f"). Backend "
             f"{cfg.backend}, {cfg.threads or 'default'} thread(s), batch 1; bundles int8 (preset {cfg.preset}); "
             f"the int8 teacher's p50 there: {_fmt(teacher, '.3f')} ms (median of {started} readings when the "
             f"study started and of its readings beside every trial, {cfg.rounds} interleaved round(s) each; a trial's "
             "speed-up is against the median of the starting readings, those beside it and those beside every trial "
             "finished before it). Retention: the bundle's dev metric through ONNX Runtime over the "
             "PyTorch teacher's.",
             "Budget: " + (", ".join(b for b in budget if b) or "none") if cfg.mode == "budget" else
             "Objectives: retention (max) and p50 (min); the Pareto front is kept.", ""]
    if best:
        lines += ["Kept under best/: " + ", ".join(f"trial {t.number}" for t in best), ""]
    elif cfg.mode == "budget":
        lines += ["No trial met the budget: nothing kept under best/.", ""]
    params = [k for k in (rows[0] if rows else {}) if k.startswith("param_")]
    lines += ["| trial | state | " + " | ".join(p[6:] for p in params) + " | retention | p50 ms | speed-up vs int8 "
              "teacher | MB | feasible | reason |",
              "|---:|---|" + "---|" * len(params) + "---:|---:|---:|---:|---|---|"]
    ordered = sorted(rows, key=lambda r: (r["retention"] is None, -(r["retention"] or 0)))
    for r in ordered:
        mark = " (hand-set)" if r["baseline"] else ""
        lines.append(f"| {r['number']}{mark} | {r['state']} | "
                     + " | ".join(_fmt(r[p], ".4g") if isinstance(r[p], float) else str(r[p]) for p in params)
                     + f" | {_fmt(r['retention'], '.4f')} | {_fmt(r['p50_ms'], '.3f')} "
                     f"| {_fmt(r['speedup_vs_teacher_int8'], '.1f')} | {_fmt(r['size_mb'], '.2f')} "
                     f"| {'–' if r['feasible'] is None else 'yes' if r['feasible'] else 'no'} | {r['reason'] or ''} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], teacher_p50: float | None, best: list, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [r for r in rows if r["retention"] is not None]
    kept = {t.number for t in best}
    fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
    for group, colour, label in ((lambda r: r["feasible"] is not False, "tab:blue", "trial"),
                                 (lambda r: r["feasible"] is False, "lightgrey", "trial over budget")):
        pts = [r for r in measured if group(r) and not r["baseline"]]
        if pts:
            ax.scatter([r["p50_ms"] for r in pts], [r["retention"] for r in pts], s=[20 + 30 * r["size_mb"] for r in pts],
                       color=colour, alpha=0.7, edgecolors="white", label=label)
    for r in measured:
        if r["baseline"]:
            ax.scatter(r["p50_ms"], r["retention"], s=20 + 30 * r["size_mb"], marker="s", color="tab:orange",
                       edgecolors="black", label="hand-set recipe", zorder=4)
        if r["number"] in kept:
            ax.scatter(r["p50_ms"], r["retention"], s=20 + 30 * r["size_mb"], facecolors="none", edgecolors="red",
                       linewidths=1.5, zorder=5, label="kept (best/)")
    if teacher_p50:
        ax.axvline(teacher_p50, color="black", linestyle=":", linewidth=1, label="int8 teacher p50")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), fontsize=8)
    ax.set_xlabel("p50 latency, ms (batch 1, the int8 bundle on the study's backend)")
    ax.set_ylabel("retention (dev)")
    ax.set_title("kdedge tune: retention vs latency (marker area: bundle MB)")
    ax.grid(True, alpha=0.3)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
