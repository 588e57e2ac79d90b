"""Output folders that are never half-written, and the manifest every stage leaves behind.

A run works in `<out>.partial/` (checkpoints, log, best model) and only at the end is that folder
renamed to `<out>`. An existing `<out>` is replaced only with --overwrite, and only once the new
one is complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from kdedge.errors import KdedgeError

# `defaults` names the preset the other options came from; they are compared themselves
_IGNORED_FOR_RESUME = {"resume", "overwrite", "epochs", "patience", "save_steps", "eval_batch_size", "log_steps",
                       "defaults"}


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temp file + rename)."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # processes of one launch may write the same file
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in ("kdedge", "torch", "transformers", "accelerate", "datasets", "tokenizers", "onnx",
                 "onnxruntime", "onnxruntime-ep-openvino", "openvino", "optimum", "optimum-onnx", "numpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


# What a run saves as it goes and --resume continues from: checkpoints, finished stages, transfer-set shards.
_PROGRESS = ("checkpoint", "stage-", "shard-", "best")


class RunDir:
    """The working folder of one stage run, promoted to its final path when complete."""

    def __init__(self, out: str | Path, *, overwrite: bool = False, resume: bool = False, resumable: bool = True):
        from kdedge.processes import launch_state

        # Under `accelerate launch` every process opens the same run: all check, the main process acts.
        self._processes = launch_state()
        self.final = Path(out)
        self.work = self.final.with_name(self.final.name + ".partial")
        if self.final.exists() and not overwrite:
            raise KdedgeError(f"output folder {self.final} already exists; pass --overwrite to replace it")
        start_over = self.work.exists() and (not resumable or not resume)
        if start_over and resumable and not overwrite:
            raise KdedgeError(
                f"found an interrupted run in {self.work}: pass --resume to continue it, or --overwrite to start over"
            )
        self._processes.wait_for_everyone()
        if self.is_main:
            if start_over:  # a stage that cannot resume, or --overwrite
                shutil.rmtree(self.work)
            self.work.mkdir(parents=True, exist_ok=True)
        self._processes.wait_for_everyone()
        self.resume = resume
        self.started = time.time()

    @property
    def is_main(self) -> bool:
        return self._processes.is_main_process

    def __enter__(self) -> "RunDir":
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        """A run that fails on something the user must fix (its input or options) before it saved any progress
        leaves nothing behind, so the corrected rerun needs no --overwrite; an interrupted run (Ctrl-C, a kill,
        out of memory) or one with checkpoints keeps its folder for --resume."""
        if kind is not None and issubclass(kind, KdedgeError) and self.is_main and self.work.is_dir() \
                and not any(p.name.startswith(_PROGRESS) for p in self.work.iterdir()):
            shutil.rmtree(self.work)
        return False

    @property
    def best_dir(self) -> Path:
        return self.work / "best"

    @property
    def log_path(self) -> Path:
        return self.work / "train_log.jsonl"

    def check_config(self, config: dict) -> None:
        """Record the run's config; a resumed run must use the same one (up to run-control options)."""
        path = self.work / "run_config.json"
        if self.resume and path.exists():
            old = read_json(path)
            config = json.loads(json.dumps(config))  # as it was stored: tuples (repeatable flags) read back as lists
            diff = sorted(k for k in set(old) | set(config)
                          if k not in _IGNORED_FOR_RESUME and old.get(k) != config.get(k))
            if diff:
                raise KdedgeError(
                    f"--resume: the options differ from the interrupted run in {self.work} "
                    f"({', '.join(diff)}); use the same options or --overwrite to start over"
                )
        write_json(path, config)

    def finalize(self, keep: tuple[str, ...] = ()) -> Path:
        """Move the best model's files up, drop training state, and rename the folder into place (the main
        process does it; the others wait for it)."""
        self._processes.wait_for_everyone()
        if self.is_main:
            self._promote(keep)
        self._processes.wait_for_everyone()
        return self.final

    def _promote(self, keep: tuple[str, ...]) -> None:
        if self.best_dir.is_dir():
            for item in self.best_dir.iterdir():
                if not (self.work / item.name).exists():  # the stage's own metrics/manifest win
                    os.replace(item, self.work / item.name)
            shutil.rmtree(self.best_dir)
        for target in list(self.work.iterdir()):  # training state: checkpoints, finished stages, run config
            if target.name in keep or not target.name.startswith(("checkpoint", "stage-", "run_config.json")):
                continue
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink()
        trash = None
        if self.final.exists():
            trash = self.final.with_name(self.final.name + ".old")
            if trash.exists():
                shutil.rmtree(trash)
            os.replace(self.final, trash)
        os.replace(self.work, self.final)
        if trash is not None:
            shutil.rmtree(trash)

    def elapsed(self) -> float:
        return time.time() - self.started


def manifest(command: str, config: dict, *, inputs: dict, metrics: dict, wall_time_s: float,
             extra: dict | None = None) -> dict:
    return {
        "command": command,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config": config,
        "seed": config.get("seed"),
        "inputs": inputs,
        "metrics": metrics,
        "wall_time_s": round(wall_time_s, 2),
        "versions": library_versions(),
        **(extra or {}),
    }
