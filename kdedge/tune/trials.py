"""What both the study and its report read of a study: which trials are within budget, why one was pruned, the
recipe a trial ran and the int8 teacher's pooled p50."""

from __future__ import annotations

import dataclasses
import statistics
from pathlib import Path

from kdedge.config import DistillConfig, TuneConfig
from kdedge.tune.space import apply

TEACHER_CALIBRATION = "teacher_int8_calibration_ms"  # study attribute: the teacher's starting readings


def feasible(trial) -> bool | None:
    """Within the budget (every constraint value <= 0), or None for a trial never measured."""
    values = trial.user_attrs.get("constraints")
    return None if values is None else all(v <= 0 for v in values.values())


def pooled_teacher_p50(study, readings: list[float]) -> float | None:
    """The median of the study's calibration readings of the int8 teacher and `readings` (None with neither)."""
    pooled = [*study.user_attrs.get(TEACHER_CALIBRATION, []), *readings]
    return statistics.median(pooled) if pooled else None


def trial_recipe(cfg: TuneConfig, params: dict, out: Path) -> DistillConfig:
    """The distill recipe a trial runs: the study's recipe with the trial's sampled values, written to `out`."""
    cfg = apply(cfg, params)
    values = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(DistillConfig)}
    return DistillConfig(**{**values, "out": str(out), "overwrite": True, "resume": False})


def pruned_reason(trial) -> str | None:
    if trial.state.name != "PRUNED":
        return None
    steps = sorted(trial.intermediate_values)
    return f"pruned after {len(steps)} evaluation(s), last dev {trial.intermediate_values[steps[-1]]:.4f}" \
        if steps else "pruned"
