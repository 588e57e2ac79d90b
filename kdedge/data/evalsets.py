"""Evaluation sets beside dev (`--eval-file NAME=FILE`): labelled files of the task, read with the dev file's column
rules, each scored and compared with the teacher on its own, so that a student's loss out of domain shows next to
its dev figure. The same NAME=FILE syntax names unlabeled text files (`kdedge augment --unlabeled`)."""

from __future__ import annotations

import re
from pathlib import Path

from kdedge.config import DataOptions
from kdedge.data.loaders import Split, read_split
from kdedge.data.tasks import Task
from kdedge.errors import KdedgeError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")
RESERVED = ("dev",)  # the task's own dev set keeps its name everywhere


def parse_named_files(values: tuple[str, ...] | None, flag: str) -> dict[str, Path]:
    """NAME=FILE (or FILE alone, named after its stem) -> {name: path}, names unique and usable as report columns."""
    named: dict[str, Path] = {}
    for value in values or ():
        name, sep, file = value.partition("=")
        if not sep or Path(value).is_file():  # FILE alone (even one with '=' in its name)
            name, file = Path(value).stem, value
        if not _NAME.fullmatch(name) or name in RESERVED:
            raise KdedgeError(f"{flag} {value}: the name '{name}' must be 1-40 letters, digits, '.', '_' or '-' "
                              f"(and not {', '.join(RESERVED)}); write {flag} NAME=FILE")
        if name in named:
            raise KdedgeError(f"{flag}: the name '{name}' is given twice; name each file once (NAME=FILE)")
        if not file:
            raise KdedgeError(f"{flag} {value}: no file after '='; write {flag} NAME=FILE")
        named[name] = Path(file)
    return named


def load_eval_sets(task: Task, opts: DataOptions, values: tuple[str, ...] | None,
                   max_rows: int | None = None) -> dict[str, Split]:
    """The named evaluation sets, each read as the task's dev file is (the first `max_rows` rows when given)."""
    sets = {}
    for name, path in parse_named_files(values, "--eval-file").items():
        split = read_split(task, opts, path)
        sets[name] = split if max_rows is None or max_rows >= len(split) else split.select(range(max_rows))
    return sets


def describe(sets: dict[str, Split]) -> dict:
    return {name: {"source": s.source, "rows": len(s), "sha256": s.fingerprint()} for name, s in sets.items()}
