"""The task data of an already trained model (teacher, student or bundle): the task, columns and labels its
manifest recorded, read from wherever the files are on this machine."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from kdedge.config import RECORDED_DATA_FIELDS, DataOptions, ModelDataOptions
from kdedge.data.tasks import get_glue_task
from kdedge.errors import KdedgeError

_DATA_FIELDS = {f.name for f in dataclasses.fields(DataOptions)}


def recorded_data_options(folder: Path) -> dict:
    """The data options `folder` was made with: a bundle's `data`, a teacher's or student's `config`
    ({} for folders written before kdedge recorded them)."""
    try:
        manifest = json.loads((Path(folder) / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}
    recorded = manifest.get("data") or manifest.get("config") or {}
    return {k: recorded[k] for k in RECORDED_DATA_FIELDS if isinstance(recorded, dict) and recorded.get(k) is not None}


def model_data_options(folder: Path, task_name: str, given: ModelDataOptions) -> DataOptions:
    """The model's recorded task, with the locations and the dev budget given on this command line."""
    values = {"task": task_name, **recorded_data_options(folder)}
    values.update({k: v for k, v in dataclasses.asdict(given).items() if k in _DATA_FIELDS and v is not None})
    if get_glue_task(values["task"]) is None and not values.get("dev_file"):
        raise KdedgeError(f"{folder} was trained on '{values['task']}', your own data, and does not record where it "
                          "is: give --dev-file (and --train-file)")
    return DataOptions(**values)
