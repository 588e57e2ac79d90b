"""Named option sets a command starts from (`--defaults NAME`): built-in defaults < preset < --config < flags.

A preset is a YAML file here, `<command>-<name>.yaml`, with the keys of that command's config. `--defaults auto`
(the default) picks one from the task: small-data when it has fewer than SMALL_DATA_ROWS labelled training rows,
small-data-assisted when such a task's student also has a teacher assistant (`--intermediate-teacher`).
Presets are applied where a config is built from what the user gave (the command line, or `build_with_defaults`);
a config made directly in Python holds exactly its fields.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from kdedge.config import build_config, load_yaml
from kdedge.errors import KdedgeError

PRESETS_DIR = Path(__file__).parent
BUILT_IN, AUTO, SMALL_DATA = "built-in", "auto", "small-data"
SMALL_DATA_ASSISTED = "small-data-assisted"  # the small-data recipe with a teacher assistant (--intermediate-teacher)
# Below it a task is small-data: MRPC (3,668 rows), RTE (2,490), STS-B (5,749), CoLA (8,551); SST-2 has 67,349.
SMALL_DATA_ROWS = 10_000


def preset_names(command: str) -> list[str]:
    return sorted(p.stem.removeprefix(f"{command}-") for p in PRESETS_DIR.glob(f"{command}-*.yaml"))


def preset_path(command: str, name: str) -> Path:
    if name not in preset_names(command):
        known = ", ".join([AUTO, BUILT_IN, *preset_names(command)])
        raise KdedgeError(f"--defaults {name}: kdedge {command} has no such option set (known: {known})")
    return PRESETS_DIR / f"{command}-{name}.yaml"


def auto_preset(cfg: Any, explicit: dict[str, Any]) -> tuple[str, str]:
    """The preset `--defaults auto` stands for with these options (`explicit`: those the user set), and why."""
    if explicit.get("student", "tinybert") != "tinybert":  # its budgets are a transformer's, not a BiLSTM's
        return BUILT_IN, f"the small-data preset is a TinyBERT recipe, not --student {explicit['student']}'s"
    # its budgets are both stages' of a task's run: with another recipe (general distillation reads no task) its
    # intermediate keys would be refused, naming options the user never gave
    if explicit.get("recipe", "two-stage") != "two-stage":
        return BUILT_IN, f"the small-data preset is a two-stage recipe, not --recipe {explicit['recipe']}'s"
    from kdedge.data import load_task_data  # only here: reading the task is the one costly step

    try:
        # the task's size, not a --max-train-samples sample of it: a quick run on part of a large task stays as it is
        rows = len(load_task_data(dataclasses.replace(cfg, max_train_samples=None), train_optional=True).train)
    except KdedgeError:  # the command says what is wrong with its data where it reads it, after its own checks
        return BUILT_IN, "the task's data could not be read"
    if rows == 0:
        return BUILT_IN, "the task has no labelled training rows"
    if rows >= SMALL_DATA_ROWS:
        return BUILT_IN, f"{rows:,} labelled training rows"
    why = f"{rows:,} labelled training rows, fewer than {SMALL_DATA_ROWS:,}"
    if explicit.get("intermediate_teacher"):
        return SMALL_DATA_ASSISTED, f"{why}, and an --intermediate-teacher"
    if hasattr(cfg, "intermediate_teacher"):  # a distill-like command: say what would do better
        why += (f"; with a small model fine-tuned on the task as --intermediate-teacher, the {SMALL_DATA_ASSISTED} "
                "preset's student is more accurate")
    return SMALL_DATA, why


def with_defaults(cls: type, command: str, cfg: Any, config_file: str | None,
                  given: dict[str, Any]) -> tuple[Any, str | None]:
    """`cfg` (built from `config_file` and the `given` flags) rebuilt on the preset its `defaults` names, with
    `defaults` set to the preset used; and a line saying which and why (None when the built-in defaults stay)."""
    name, why = cfg.defaults, "asked for with --defaults"
    if name == AUTO:
        explicit = {**(load_yaml(cls, config_file) if config_file else {}),
                    **{k: v for k, v in given.items() if v is not None}}
        name, why = auto_preset(cfg, explicit)
    if name == BUILT_IN:
        return dataclasses.replace(cfg, defaults=BUILT_IN), None
    path = preset_path(command, name)
    cfg = build_config(cls, config_file, base=load_yaml(cls, path), **{**given, "defaults": name})
    return cfg, (f"options from the {name} preset ({why}; {path.name}); --config and flags win over it, "
                 f"--defaults {BUILT_IN} leaves it out")


def build_with_defaults(cls: type, command: str, config_file: str | None = None,
                        **given: Any) -> tuple[Any, str | None]:
    """build_config, then the preset: what the command line does, for Python callers."""
    return with_defaults(cls, command, build_config(cls, config_file, **given), config_file, given)
