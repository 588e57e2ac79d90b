"""The search space of `kdedge tune`: a small YAML file naming DistillConfig options and their ranges or choices.

    lr: {low: 1.0e-5, high: 1.0e-3, log: true}
    temperature: {low: 1, high: 8}
    epochs: {low: 1, high: 3}                 # an integer option: integers
    soft_loss: {choices: [mse, soft_ce]}
    shape: {choices: [2-128-4-512, 3-256-8-1024]}   # layers-hidden-heads-intermediate, set together

Every other option of the recipe stays as the command line and --config give it.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kdedge.config import DistillConfig, _coerce, field_types
from kdedge.errors import KdedgeError

SHAPE = "shape"
SHAPE_FIELDS = ("layers", "hidden", "heads", "intermediate")
# What a trial may not change: where the data, the teacher and the outputs are, and how the run itself is run.
FIXED = {"task", "data_dir", "train_file", "dev_file", "text_column", "text_pair_column", "label_column", "task_type",
         "labels", "max_eval_samples", "max_length", "out", "teacher", "transfer", "student", "word_vectors",
         "eval_file", "select_on", "resume", "overwrite", "mixed_precision", "cache_dir", "eval_batch_size",
         "save_steps", "log_steps", "seed"}


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "float", "int" or "choice"
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple = ()

    def suggest(self, trial) -> Any:
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)


def load_space(path: str | Path) -> list[Param]:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as e:
        raise KdedgeError(f"--space {path}: cannot read it ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise KdedgeError(f"--space {path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(raw, dict) or not raw:
        raise KdedgeError(f"--space {path} must map option names to ranges or choices, e.g. lr: {{low: 1e-5, high: 1e-3, "
                          "log: true}")
    return [_param(str(name).replace("-", "_"), spec, path) for name, spec in raw.items()]


def _param(name: str, spec: Any, path: Path) -> Param:
    where = f"--space {path}, '{name}'"
    types = field_types(DistillConfig)
    if name != SHAPE and name not in types:
        hint = difflib.get_close_matches(name, sorted(types), n=1)
        raise KdedgeError(f"{where}: not a distill option" + (f" (did you mean '{hint[0]}'?)" if hint else ""))
    if name in FIXED:
        raise KdedgeError(f"{where}: fixed for the whole study (it names data, the teacher, outputs or how runs are "
                          "run); give it on the command line")
    if not isinstance(spec, dict):
        raise KdedgeError(f"{where}: give {{low: .., high: ..}} or {{choices: [..]}}, not {spec!r}")
    unknown = set(spec) - {"low", "high", "log", "step", "choices"}
    if unknown:
        raise KdedgeError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))} (use low, high, log, step or "
                          "choices)")
    if "choices" in spec:
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise KdedgeError(f"{where}: choices must be a non-empty list")
        if name == SHAPE:
            for choice in choices:
                parse_shape(choice, where)
            return Param(name, "choice", choices=tuple(str(c) for c in choices))
        return Param(name, "choice", choices=tuple(_coerce(DistillConfig, name, c, where) for c in choices))
    if name == SHAPE or types[name] not in (int, float):
        raise KdedgeError(f"{where}: a range needs a numeric option; give choices: [..]")
    try:
        low, high = float(spec["low"]), float(spec["high"])
    except (KeyError, TypeError, ValueError):
        raise KdedgeError(f"{where}: a range needs numbers low and high") from None
    if not low < high:
        raise KdedgeError(f"{where}: low ({low:g}) must be below high ({high:g})")
    log = bool(spec.get("log", False))
    if log and low <= 0:
        raise KdedgeError(f"{where}: a log range needs low > 0")
    for value in (low, high):
        _coerce(DistillConfig, name, int(value) if types[name] is int else value, where)
    return Param(name, "int" if types[name] is int else "float", low, high, log, spec.get("step"))


def parse_shape(value: Any, where: str = "shape") -> dict[str, int]:
    """'L-H-A-I' -> layers, hidden, heads, intermediate."""
    parts = str(value).split("-")
    if len(parts) != 4 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise KdedgeError(f"{where}: a shape is LAYERS-HIDDEN-HEADS-INTERMEDIATE, e.g. 2-128-4-512, not {value!r}")
    return dict(zip(SHAPE_FIELDS, map(int, parts)))


def apply(base: DistillConfig, params: dict[str, Any]) -> DistillConfig:
    """The recipe with a trial's values (the ranges are checked again, as for any config)."""
    values = {}
    for name, value in params.items():
        values.update(parse_shape(value) if name == SHAPE else {name: value})
    return dataclasses.replace(base, **values)


def baseline_params(base: DistillConfig, space: list[Param]) -> dict[str, Any]:
    """The recipe's own values of the searched options: the hand-set trial."""
    out = {}
    for p in space:
        if p.name == SHAPE:
            values = [getattr(base, f) for f in SHAPE_FIELDS]
            if None not in values:
                out[p.name] = "-".join(map(str, values))
        elif getattr(base, p.name) is not None:
            out[p.name] = getattr(base, p.name)
    return out
