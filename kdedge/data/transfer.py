"""The transfer-set format: Parquet shards `shard-NNNNN.parquet` with columns text, text_pair (pair tasks),
source ("original" or the method), parent (the original training row it came from; null when none), label (the
gold label of original rows, null otherwise) and logits (the teacher's), plus manifest.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kdedge.data.loaders import Split
from kdedge.errors import KdedgeError

IGNORE_INDEX = -100  # a row without a gold label (classification); regression uses NaN
SHARD_GLOB = "shard-*.parquet"



def shard_path(folder: Path, index: int) -> Path:
    return folder / f"shard-{index:05d}.parquet"


def write_shard(path: Path, rows: list[dict], logits: np.ndarray, regression: bool, is_pair: bool) -> None:
    """Written to a temporary name and renamed: a shard file is either complete or absent."""
    columns = {
        "text": pa.array([r["text"] for r in rows], pa.string()),
        "source": pa.array([r["source"] for r in rows], pa.string()),
        "parent": pa.array([r["parent"] for r in rows], pa.int64()),
        "label": pa.array([r["label"] for r in rows], pa.float64() if regression else pa.int64()),
        "logits": pa.array([list(map(float, x)) for x in logits], pa.list_(pa.float32())),
    }
    if is_pair:
        columns["text_pair"] = pa.array([r["pair"] for r in rows], pa.string())
    tmp = path.with_suffix(".tmp")
    pq.write_table(pa.table(columns), tmp)
    tmp.replace(path)


def read_shards(folder: Path) -> pa.Table:
    shards = sorted(folder.glob(SHARD_GLOB))
    if not shards:
        raise KdedgeError(f"{folder} holds no transfer-set shards ({SHARD_GLOB}): give a `kdedge augment` output")
    return pa.concat_tables(pq.read_table(s) for s in shards)


def load_transfer_set(folder: str | Path, regression: bool) -> tuple[Split, np.ndarray, dict]:
    """The rows as a Split (labels: gold, or IGNORE_INDEX / NaN where there is none), the teacher logits,
    and the manifest."""
    folder = Path(folder)
    manifest_file = folder / "manifest.json"
    if not manifest_file.is_file():
        raise KdedgeError(f"{folder} is not a finished transfer set (no manifest.json): run `kdedge augment` "
                          "(with --resume if it was interrupted)")
    table = read_shards(folder)
    labels = table.column("label").to_pylist()
    if regression:
        labels = np.asarray([np.nan if v is None else v for v in labels], dtype=np.float32)
    else:
        labels = np.asarray([IGNORE_INDEX if v is None else v for v in labels], dtype=np.int64)
    pairs = table.column("text_pair").to_pylist() if "text_pair" in table.column_names else None
    split = Split(text=table.column("text").to_pylist(), labels=labels, text_pair=pairs, source=str(folder))
    logits = np.asarray(table.column("logits").to_pylist(), dtype=np.float32)
    return split, logits, json.loads(manifest_file.read_text())
