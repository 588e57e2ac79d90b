"""The user's own unlabeled text (`kdedge augment --unlabeled NAME=FILE`), read a row at a time: plain text (one
example a line) or CSV/TSV/JSONL/Parquet with `--unlabeled-column` (and `--unlabeled-pair-column` for pair tasks).
The files are read in the order given, as one stream, so shard k always holds the same input rows and a resumed
run skips exactly what was written before."""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Iterator

from kdedge.errors import KdedgeError
from kdedge_runtime import data as data_files

SOURCE_PREFIX = "unlabeled:"


def read_unlabeled(path: Path, column: str, pair_column: str | None, is_pair: bool) -> Iterator[tuple[str, str | None]]:
    """(text, second text or None) for each non-empty example of the file."""
    if path.suffix.lower() == ".txt":
        if is_pair:
            raise KdedgeError(f"--unlabeled {path}: a .txt file holds one text a line, but this is a pair task; give a "
                              ".csv, .tsv, .jsonl or .parquet file with --unlabeled-column and --unlabeled-pair-column")
        yield from ((line, None) for line in _lines(path))
        return
    if is_pair and not pair_column:
        raise KdedgeError(f"--unlabeled {path}: this is a pair task; name the second text's column with "
                          "--unlabeled-pair-column")
    columns = [column] + ([pair_column] if is_pair else [])
    try:
        for _, values in data_files.read_rows(path, columns, header=True):
            if values[0].strip():
                yield values[0], values[1] if is_pair else None
    except data_files.DataError as e:
        raise KdedgeError(f"--unlabeled {e}") from None


def _lines(path: Path) -> Iterator[str]:
    if not path.is_file():
        raise KdedgeError(f"--unlabeled: file not found: {path}")
    with path.open("rb") as f:
        for line_num, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8-sig" if line_num == 1 else "utf-8").strip()
            except UnicodeDecodeError as e:
                raise KdedgeError(f"--unlabeled {path}, line {line_num}: not valid UTF-8 (byte 0x{raw[e.start]:02x} "
                                  f"at column {e.start + 1}); save the file as UTF-8") from None
            if line:
                yield line


def unlabeled_chunks(files: dict[str, Path], column: str, pair_column: str | None, is_pair: bool,
                     size: int) -> Iterator[list[tuple[str, str, str | None]]]:
    """The named files as one stream of (source, text, pair), `size` input rows at a time."""
    stream = ((SOURCE_PREFIX + name, text, pair) for name, path in files.items()
              for text, pair in read_unlabeled(path, column, pair_column, is_pair))
    while chunk := list(islice(stream, size)):
        yield chunk
