"""Load a task's train and dev splits from a local GLUE folder, the dataset hub, or the user's own files.

Every user-caused problem (missing file or column, malformed row, unknown label) raises one
KdedgeError that names the file, the line and the column.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from kdedge.config import DataOptions
from kdedge.data.tasks import Task, custom_task, get_glue_task
from kdedge.errors import KdedgeError
from kdedge.hub import hub_unreachable_detected
from kdedge_runtime import data as data_files

# A fixed seed for --max-train-samples, so every command draws the same rows.
SAMPLE_SEED = 0


@dataclass
class Split:
    text: list[str]
    labels: np.ndarray  # int64 class ids, or float32 scores for regression
    text_pair: list[str] | None = None
    source: str = ""

    def __len__(self) -> int:
        return len(self.text)

    def select(self, indices) -> "Split":
        indices = list(indices)
        return Split(
            text=[self.text[i] for i in indices],
            labels=self.labels[indices],
            text_pair=None if self.text_pair is None else [self.text_pair[i] for i in indices],
            source=self.source,
        )

    def fingerprint(self) -> str:
        """A content hash: the same rows in the same order give the same key."""
        h = hashlib.sha256()
        pairs = self.text_pair or [""] * len(self.text)
        for a, b in zip(self.text, pairs):
            h.update(a.encode())
            h.update(b"\x1f")
            h.update(b.encode())
            h.update(b"\x1e")
        h.update(np.ascontiguousarray(self.labels).tobytes())
        return h.hexdigest()


@dataclass
class TaskData:
    task: Task
    train: Split
    dev: Split

    def describe(self) -> dict:
        return {
            "task": self.task.to_dict(),
            "train": {"source": self.train.source, "rows": len(self.train), "sha256": self.train.fingerprint()},
            "dev": {"source": self.dev.source, "rows": len(self.dev), "sha256": self.dev.fingerprint()},
        }


# ----------------------------------------------------------------------------- raw rows

def _read_rows(path: Path, columns: list[str | int], header: bool) -> Iterator[tuple[int, list[str]]]:
    """(line number, values of `columns`) from a CSV/TSV/JSONL/Parquet file (kdedge_runtime's reader)."""
    try:
        yield from data_files.read_rows(path, columns, header)
    except data_files.DataError as e:
        raise KdedgeError(str(e)) from None


# ----------------------------------------------------------------------------- splits

def _split_from_rows(path: Path, columns: list[str | int], header: bool, task: Task) -> Split:
    try:
        text, pair, labels = data_files.read_labelled(
            path, columns, header, None if task.is_regression else task.raw_label_values)
    except data_files.DataError as e:
        raise KdedgeError(str(e)) from None
    return Split(text, labels, pair, source=str(path))


def _load_glue_local(task: Task, data_dir: str) -> tuple[Split, Split]:
    layout = task.local
    folder = Path(data_dir) / layout.folder
    if not folder.is_dir():
        raise KdedgeError(f"GLUE folder for {task.name} not found: {folder} (check --data-dir / KDEDGE_DATA_DIR)")
    return _glue_split(task, folder / "train.tsv"), _glue_split(task, folder / layout.dev_file)


def _glue_split(task: Task, path: Path) -> Split:
    """A file in a GLUE task's own layout (its columns, its header or none)."""
    layout = task.local
    cols = [layout.text] + ([layout.text_pair] if layout.text_pair is not None else []) + [layout.label]
    return _split_from_rows(path, cols, layout.header, task)


def _load_glue_hub(task: Task) -> tuple[Split, Split]:
    import datasets

    try:
        ds = datasets.load_dataset(*task.hub)
    except Exception as e:  # offline, unknown dataset, ...: one message with the way out
        unreachable = "The hub cannot be reached from here. " if hub_unreachable_detected() else "Offline? "
        raise KdedgeError(
            f"could not load GLUE task '{task.name}' from the dataset hub ({type(e).__name__}: {e}). "
            f"{unreachable}Point --data-dir (or KDEDGE_DATA_DIR) at a local GLUE folder."
        ) from None
    splits = []
    for split_name in ("train", task.hub_dev_split):
        d = ds[split_name]
        dtype = np.float32 if task.is_regression else np.int64
        pair = list(d[task.hub_columns[1]]) if task.is_pair else None
        splits.append(Split(list(d[task.hub_columns[0]]), np.asarray(d["label"], dtype=dtype), pair,
                            source=f"hub:{task.hub[0]}/{task.hub[1]}:{split_name}"))
    return splits[0], splits[1]


def _label_sort_key(v: str):
    try:
        return (0, float(v), v)
    except ValueError:
        return (1, 0.0, v)


def _load_custom(opts: DataOptions) -> tuple[Task, Split, Split]:
    """Your own task: --train-file and --dev-file, or --dev-file alone where a command needs no training rows (a
    transfer set of the user's unlabeled text, labelled by the teacher, replaces them)."""
    if not opts.dev_file:
        raise KdedgeError("--train-file needs --dev-file too (a labelled file to evaluate on)")
    dev_path = Path(opts.dev_file)
    label_source = Path(opts.train_file or opts.dev_file)
    cols = [opts.text_column] + ([opts.text_pair_column] if opts.text_pair_column else []) + [opts.label_column]
    is_pair = bool(opts.text_pair_column)
    regression = opts.task_type == "regression"
    name = opts.task or "custom"
    if regression:
        task = custom_task(name, is_pair=is_pair, label_names=(), regression=True)
    elif opts.labels:
        names = tuple(x.strip() for x in opts.labels.split(",") if x.strip())
        if len(names) < 2:
            raise KdedgeError("--labels needs at least two comma-separated label names")
        task = custom_task(name, is_pair=is_pair, label_names=names, regression=False)
    else:
        seen = {values[-1].strip() for _, values in _read_rows(label_source, cols, header=True)}
        if len(seen) < 2:
            raise KdedgeError(f"{label_source}, column '{data_files.shown(opts.label_column)}': found fewer than two "
                              "distinct labels")
        names = tuple(sorted(seen, key=_label_sort_key))
        task = custom_task(name, is_pair=is_pair, label_names=names, regression=False)
    if opts.train_file:
        train = _split_from_rows(Path(opts.train_file), cols, True, task)
    else:
        train = Split([], np.zeros(0, np.float32 if regression else np.int64), [] if is_pair else None, "(none)")
    dev = _split_from_rows(dev_path, cols, True, task)
    return task, train, dev


def read_split(task: Task, opts: DataOptions, path: Path) -> Split:
    """Another labelled file of the task (an evaluation set), read as its dev file is: a GLUE task's own layout, or
    the custom task's columns."""
    if task.local is not None:
        return _glue_split(task, path)
    cols = [opts.text_column] + ([opts.text_pair_column] if opts.text_pair_column else []) + [opts.label_column]
    return _split_from_rows(path, cols, True, task)


def sample_rows(total: int, size: int | None) -> np.ndarray | None:
    """The --max-train-samples rows of a `total`-row training set (ascending; the same in every command), or None
    when every row is used."""
    if size is None or size >= total:
        return None
    return np.sort(np.random.default_rng(SAMPLE_SEED).permutation(total)[:size])


def load_task_data(opts: DataOptions, *, train_optional: bool = False) -> TaskData:
    """Load train and dev for the task the options describe, with the sample budgets applied. With
    `train_optional` (commands that can work from unlabeled text alone), your own task may be a --dev-file alone."""
    glue = get_glue_task(opts.task) if opts.task else None
    if opts.train_file or (glue is None and opts.dev_file and train_optional):
        task, train, dev = _load_custom(opts)
    elif glue is not None:
        task = glue
        data_dir = opts.resolved_data_dir()
        train, dev = _load_glue_local(task, data_dir) if data_dir else _load_glue_hub(task)
        if opts.dev_file:  # e.g. an out-of-domain test set, scored instead of the task's dev split
            dev = _glue_split(task, Path(opts.dev_file))
    elif opts.task and opts.dev_file:
        raise KdedgeError(f"'{data_files.shown(opts.task)}' is not a GLUE task, so it is your own: this command needs "
                          "its training rows as well (--train-file)")
    elif opts.task:
        raise KdedgeError(
            f"unknown task '{data_files.shown(opts.task)}': use a GLUE task (sst2, cola, mrpc, stsb, qqp, mnli, qnli, "
            "rte, wnli) or give your own data with --train-file/--dev-file"
        )
    else:
        raise KdedgeError("no data given: pass --task (a GLUE task) or --train-file/--dev-file")

    if (rows := sample_rows(len(train), opts.max_train_samples)) is not None:
        train = train.select(rows)
    if opts.max_eval_samples is not None and opts.max_eval_samples < len(dev):
        dev = dev.select(range(opts.max_eval_samples))
    return TaskData(task, train, dev)
