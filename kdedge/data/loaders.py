"""Load a task's train and dev splits from a local GLUE folder, the dataset hub, or the user's own files.

Every user-caused problem (missing file or column, malformed row, unknown label) raises one
KdedgeError that names the file, the line and the column.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from kdedge.config import DataOptions
from kdedge.data.tasks import Task, custom_task, get_glue_task
from kdedge.errors import KdedgeError
from kdedge.hub import hub_unreachable_detected

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
    """Yield (line number, values of `columns`) from a CSV/TSV/JSONL/Parquet file."""
    if not path.is_file():
        raise KdedgeError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".tsv", ".csv", ".txt"):
        yield from _read_delimited(path, columns, header, delimiter="," if suffix == ".csv" else "\t")
    elif suffix in (".jsonl", ".json"):
        yield from _read_jsonl(path, columns)
    elif suffix == ".parquet":
        yield from _read_parquet(path, columns)
    else:
        raise KdedgeError(f"{path}: unsupported file type '{suffix}' (use .csv, .tsv, .jsonl or .parquet)")


# The largest field the csv module accepts: far beyond any text a model reads (its default, 128 KB, is not).
_FIELD_LIMIT = 64 * 1024 * 1024


def _read_delimited(path: Path, columns, header: bool, delimiter: str):
    # TSV files follow GLUE: no quoting at all (quotes are literal text). CSV uses standard quoting.
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    csv.field_size_limit(_FIELD_LIMIT)
    with path.open(newline="", encoding="utf-8-sig") as f:  # utf-8-sig drops MRPC's BOM
        reader = csv.reader(f, delimiter=delimiter, quoting=quoting)
        rows = _checked(reader, path)
        if header:
            names = [n.strip() for n in next(rows, None) or []]
            if not names:
                raise KdedgeError(f"{path}: the file is empty")
            duplicated = next((n for n in names if names.count(n) > 1), None)
            if duplicated is not None:
                fields = [str(i + 1) for i, n in enumerate(names) if n == duplicated]
                raise KdedgeError(f"{path}, line 1: the header names column '{duplicated}' more than once (fields "
                                  f"{', '.join(fields)}); rename or drop the extra one")
            missing = [c for c in columns if c not in names]
            if missing:
                raise KdedgeError(f"{path}: column '{missing[0]}' not found; the header has: {', '.join(names)}")
            idx, width = [names.index(c) for c in columns], len(names)
        else:
            idx, width = list(columns), None
        for row in rows:
            if not row:
                continue
            width = width or len(row)  # no header: the first row sets the width
            if len(row) != width:
                what = "the header has" if header else "the first row has"
                lost = [str(c) for c, i in zip(columns, idx) if i >= len(row)]
                hint = (f" (column '{lost[0]}' is missing)" if lost else
                        " (a stray tab inside a text? TSV files are read without quoting)" if delimiter == "\t" else "")
                raise KdedgeError(f"{path}, line {reader.line_num}: {len(row)} field(s), but {what} {width}{hint}")
            yield reader.line_num, [row[i] for i in idx]


def _checked(reader, path: Path):
    """The reader's rows, with csv and encoding errors turned into one message naming the line."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise KdedgeError(f"{path}, line {reader.line_num}: {e} (fields are limited to "
                              f"{_FIELD_LIMIT // 2**20} MB)") from None
        except UnicodeDecodeError:
            raise _not_utf8(path) from None


def _not_utf8(path: Path) -> KdedgeError:
    with path.open("rb") as f:
        for line_num, raw in enumerate(f, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                return KdedgeError(f"{path}, line {line_num}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at column "
                                   f"{e.start + 1}); save the file as UTF-8")
    return KdedgeError(f"{path}: not valid UTF-8; save the file as UTF-8")


def _read_jsonl(path: Path, columns):
    try:
        with path.open(encoding="utf-8") as f:
            yield from _jsonl_rows(f, path, columns)
    except UnicodeDecodeError:
        raise _not_utf8(path) from None


def _jsonl_rows(lines, path: Path, columns):
    for line_num, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise KdedgeError(f"{path}, line {line_num}: not valid JSON ({e.msg})") from None
        if not isinstance(record, dict):
            raise KdedgeError(f"{path}, line {line_num}: expected a JSON object")
        for c in columns:
            if record.get(c) is None:
                raise KdedgeError(f"{path}, line {line_num}: column '{c}' is missing")
            if isinstance(record[c], (dict, list)):
                raise KdedgeError(f"{path}, line {line_num}, column '{c}': expected a string or a number, not a "
                                  f"JSON {type(record[c]).__name__}")
        yield line_num, [str(record[c]) for c in columns]


def _read_parquet(path: Path, columns):
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises its own types for a file that is not Parquet
        raise KdedgeError(f"{path}: not a readable Parquet file ({type(e).__name__}: {e})") from None
    duplicated = next((c for c in columns if table.column_names.count(c) > 1), None)
    if duplicated is not None:
        raise KdedgeError(f"{path}: column '{duplicated}' appears more than once; rename or drop the extra one")
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise KdedgeError(f"{path}: column '{missing[0]}' not found; it has: {', '.join(table.column_names)}")
    data = [table.column(c).to_pylist() for c in columns]
    for row_num, values in enumerate(zip(*data), 1):
        for c, v in zip(columns, values):
            if v is None:
                raise KdedgeError(f"{path}, row {row_num}: column '{c}' is empty")
        yield row_num, [str(v) for v in values]


# ----------------------------------------------------------------------------- splits

def _split_from_rows(path: Path, rows, task: Task, label_col: str | int) -> Split:
    text, pair, labels = [], [], []
    lookup = {v: i for i, v in enumerate(task.raw_label_values)}
    for line_num, values in rows:
        raw = values[-1].strip()
        if task.is_regression:
            try:
                score = float(raw)
            except ValueError:
                raise KdedgeError(f"{path}, line {line_num}, column '{label_col}': '{raw}' is not a number") from None
            if not math.isfinite(score):
                raise KdedgeError(f"{path}, line {line_num}, column '{label_col}': '{raw}' is not a finite number")
            labels.append(score)
        else:
            if not raw:
                raise KdedgeError(f"{path}, line {line_num}, column '{label_col}': the label is empty")
            if raw not in lookup:
                raise KdedgeError(
                    f"{path}, line {line_num}, column '{label_col}': unknown label '{raw}' "
                    f"(expected one of: {', '.join(task.raw_label_values)})"
                )
            labels.append(lookup[raw])
        text.append(values[0].strip())
        if task.is_pair:
            pair.append(values[1].strip())
    if not text:
        raise KdedgeError(f"{path}: no data rows")
    dtype = np.float32 if task.is_regression else np.int64
    return Split(text, np.asarray(labels, dtype=dtype), pair if task.is_pair else None, source=str(path))


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
    return _split_from_rows(path, _read_rows(path, cols, layout.header), task, layout.label)


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
    if not opts.dev_file:
        raise KdedgeError("--train-file needs --dev-file too (a labelled file to evaluate on)")
    train_path, dev_path = Path(opts.train_file), Path(opts.dev_file)
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
        seen = {values[-1].strip() for _, values in _read_rows(train_path, cols, header=True)}
        if len(seen) < 2:
            raise KdedgeError(f"{train_path}, column '{opts.label_column}': found fewer than two distinct labels")
        names = tuple(sorted(seen, key=_label_sort_key))
        task = custom_task(name, is_pair=is_pair, label_names=names, regression=False)
    train = _split_from_rows(train_path, _read_rows(train_path, cols, header=True), task, opts.label_column)
    dev = _split_from_rows(dev_path, _read_rows(dev_path, cols, header=True), task, opts.label_column)
    return task, train, dev


def sample_rows(total: int, size: int | None) -> np.ndarray | None:
    """The --max-train-samples rows of a `total`-row training set (ascending; the same in every command), or None
    when every row is used."""
    if size is None or size >= total:
        return None
    return np.sort(np.random.default_rng(SAMPLE_SEED).permutation(total)[:size])


def load_task_data(opts: DataOptions) -> TaskData:
    """Load train and dev for the task the options describe, with the sample budgets applied."""
    if opts.train_file:
        task, train, dev = _load_custom(opts)
    elif opts.task:
        task = get_glue_task(opts.task)
        if task is None:
            raise KdedgeError(
                f"unknown task '{opts.task}': use a GLUE task (sst2, cola, mrpc, stsb, qqp, mnli, qnli, rte, wnli) "
                "or give your own data with --train-file/--dev-file"
            )
        data_dir = opts.resolved_data_dir()
        train, dev = _load_glue_local(task, data_dir) if data_dir else _load_glue_hub(task)
        if opts.dev_file:  # e.g. an out-of-domain test set, scored instead of the task's dev split
            dev = _glue_split(task, Path(opts.dev_file))
    else:
        raise KdedgeError("no data given: pass --task (a GLUE task) or --train-file/--dev-file")

    if (rows := sample_rows(len(train), opts.max_train_samples)) is not None:
        train = train.select(rows)
    if opts.max_eval_samples is not None and opts.max_eval_samples < len(dev):
        dev = dev.select(range(opts.max_eval_samples))
    return TaskData(task, train, dev)
