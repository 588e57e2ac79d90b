"""Labelled text files as kdedge reads them, for the device bench and for kdedge itself (one reader, the same
messages): CSV (standard quoting), TSV (GLUE's: no quoting at all), JSON lines, Parquet (with pyarrow). Columns by
header name, or by position in a file without a header. Every problem a file can have is one DataError naming the
file, the line and the column.
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np


class DataError(ValueError):
    """A data file that cannot be read as asked (missing, malformed, a missing column, an unknown label)."""


# What a message escapes: control characters (line breaks among them), the Unicode line and paragraph separators,
# lone surrogates (what Python makes of bytes that are not UTF-8).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def shown(value) -> str:
    """`value` (a name or value read from a file or a flag) as a message echoes it: on one line, each control
    character, line separator or lone surrogate escaped as JSON writes it (\\n, \\u0000, \\ud800), so that every
    message is one line a terminal can print. export/node/src/data.js escapes the same characters the same way."""
    return _UNPRINTABLE.sub(lambda m: json.dumps(m.group(0))[1:-1], str(value))


def read_rows(path: Path, columns: list[str | int], header: bool) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, values of `columns`) from a CSV/TSV/JSONL/Parquet file."""
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".tsv", ".csv", ".txt"):
        yield from _read_delimited(path, columns, header, delimiter="," if suffix == ".csv" else "\t")
    elif suffix in (".jsonl", ".json"):
        yield from _read_jsonl(path, columns)
    elif suffix == ".parquet":
        yield from _read_parquet(path, columns)
    else:
        raise DataError(f"{path}: unsupported file type '{suffix}' (use .csv, .tsv, .jsonl or .parquet)")


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
                raise DataError(f"{path}: the file is empty")
            duplicated = next((n for n in names if names.count(n) > 1), None)
            if duplicated is not None:
                fields = [str(i + 1) for i, n in enumerate(names) if n == duplicated]
                raise DataError(f"{path}, line 1: the header names column '{shown(duplicated)}' more than once (fields "
                                  f"{', '.join(fields)}); rename or drop the extra one")
            missing = [c for c in columns if c not in names]
            if missing:
                raise DataError(f"{path}: column '{shown(missing[0])}' not found; the header has: "
                                f"{shown(', '.join(names))}")
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
                hint = (f" (column '{shown(lost[0])}' is missing)" if lost else
                        " (a stray tab inside a text? TSV files are read without quoting)" if delimiter == "\t" else "")
                raise DataError(f"{path}, line {reader.line_num}: {len(row)} field(s), but {what} {width}{hint}")
            yield reader.line_num, [row[i] for i in idx]


def _checked(reader, path: Path):
    """The reader's rows, with csv and encoding errors turned into one message naming the line."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise DataError(f"{path}, line {reader.line_num}: {e} (fields are limited to "
                              f"{_FIELD_LIMIT // 2**20} MB)") from None
        except UnicodeDecodeError:
            raise _not_utf8(path) from None


def _not_utf8(path: Path) -> DataError:
    with path.open("rb") as f:
        for line_num, raw in enumerate(f, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                return DataError(f"{path}, line {line_num}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at column "
                                   f"{e.start + 1}); save the file as UTF-8")
    return DataError(f"{path}: not valid UTF-8; save the file as UTF-8")


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
            raise DataError(f"{path}, line {line_num}: not valid JSON ({e.msg})") from None
        except (ValueError, RecursionError) as e:  # an integer of over 4300 digits; a few hundred levels of [
            why = "nested too deeply" if isinstance(e, RecursionError) else str(e).split(";")[0]
            raise DataError(f"{path}, line {line_num}: not valid JSON ({why})") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}, line {line_num}: expected a JSON object")
        for c in columns:
            if record.get(c) is None:
                raise DataError(f"{path}, line {line_num}: column '{shown(c)}' is missing")
            if isinstance(record[c], (dict, list)):
                raise DataError(f"{path}, line {line_num}, column '{shown(c)}': expected a string or a number, not a "
                                  f"JSON {type(record[c]).__name__}")
        yield line_num, [str(record[c]) for c in columns]


def _read_parquet(path: Path, columns):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow), or give a .csv, .tsv or "
                        ".jsonl file") from None

    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises its own types for a file that is not Parquet
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""  # pyarrow's run over several lines
        raise DataError(f"{path}: not a readable Parquet file ({type(e).__name__}: {first})") from None
    try:
        names = table.column_names  # decoded from the file's schema only now, and not checked by pyarrow before
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: a column name is not valid UTF-8 (byte 0x{e.object[e.start]:02x} at offset "
                        f"{e.start}); save the file with UTF-8 column names") from None
    duplicated = next((c for c in columns if names.count(c) > 1), None)
    if duplicated is not None:
        raise DataError(f"{path}: column '{shown(duplicated)}' appears more than once; rename or drop the extra one")
    missing = [c for c in columns if c not in names]
    if missing:
        raise DataError(f"{path}: column '{shown(missing[0])}' not found; it has: {shown(', '.join(names))}")
    data = [_strings(table.column(c), c, path) for c in columns]
    for row_num, values in enumerate(zip(*data), 1):
        for c, v in zip(columns, values):
            if v is None:
                raise DataError(f"{path}, row {row_num}: column '{shown(c)}' is empty")
        yield row_num, [str(v) for v in values]


def _strings(column, name: str, path: Path) -> list:
    """A Parquet column as Python values; a string cell that is not UTF-8 (pyarrow does not check them on reading)
    is a DataError naming its row."""
    try:
        return column.to_pylist()
    except UnicodeDecodeError:
        for row_num, cell in enumerate(column, 1):
            try:
                cell.as_py()
            except UnicodeDecodeError as e:
                raise DataError(f"{path}, row {row_num}, column '{shown(name)}': not valid UTF-8 (byte "
                                f"0x{e.object[e.start]:02x} at offset {e.start}); save the file as UTF-8") from None
        raise DataError(f"{path}, column '{shown(name)}': not valid UTF-8; save the file as UTF-8") from None


FLOAT32_MAX = float(np.finfo(np.float32).max)


def read_labelled(path: Path, columns: list[str | int], header: bool, label_values: Sequence[str] | None
                  ) -> tuple[list[str], list[str] | None, np.ndarray]:
    """Texts, second texts (None unless `columns` names two text columns before the label) and labels: class ids by
    position in `label_values` (the raw values as the file writes them), or scores when it is None (regression)."""
    text, pair, labels = [], [], []
    is_pair = len(columns) == 3
    label_col = columns[-1]
    lookup = {v: i for i, v in enumerate(label_values or ())}
    for line_num, values in read_rows(Path(path), columns, header):
        raw = values[-1].strip()
        if label_values is None:
            try:
                score = float(raw)
            except ValueError:
                raise DataError(f"{path}, line {line_num}, column '{shown(label_col)}': '{shown(raw)}' is not a "
                                "number") from None
            if not math.isfinite(score) or abs(score) > FLOAT32_MAX:  # scores are float32: 1e100 would be inf
                raise DataError(f"{path}, line {line_num}, column '{shown(label_col)}': '{shown(raw)}' is not a finite "
                                "number (a score's magnitude must be under 3.4e38)")
            labels.append(score)
        else:
            if not raw:
                raise DataError(f"{path}, line {line_num}, column '{shown(label_col)}': the label is empty")
            if raw not in lookup:
                raise DataError(
                    f"{path}, line {line_num}, column '{shown(label_col)}': unknown label '{shown(raw)}' "
                    f"(expected one of: {shown(', '.join(label_values))})"
                )
            labels.append(lookup[raw])
        text.append(values[0].strip())
        if is_pair:
            pair.append(values[1].strip())
    if not text:
        raise DataError(f"{path}: no data rows")
    dtype = np.float32 if label_values is None else np.int64
    return text, pair if is_pair else None, np.asarray(labels, dtype=dtype)
