"""The resident memory of one process after each of N pruned `kdedge distill` runs (the loop a `kdedge tune` worker
runs): flat when nothing from a run stays alive. Found the importance hooks' leak (BENCHMARKS.md, issue 20).

Usage: python benchmarks/distill_memory.py TEACHER TRANSFER [--runs 3] [--rows 4000] [--intermediate 1000]
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
from pathlib import Path

from kdedge.config import DistillConfig, build_config
from kdedge.distill.run import distill_student


def resident_gb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("teacher")
    parser.add_argument("transfer")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--intermediate", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            cfg = build_config(DistillConfig, "configs/sst2-frontier.yaml", teacher=args.teacher, transfer=args.transfer,
                               max_train_samples=args.rows, intermediate_samples=args.intermediate, layers=2,
                               hidden=128, heads=4, intermediate=512, out=f"{tmp}/{run}", overwrite=True)
            t0 = time.time()
            distill_student(cfg)
            gc.collect()
            print(f"run {run + 1}: {time.time() - t0:.0f} s, resident {resident_gb():.2f} GB", flush=True)


if __name__ == "__main__":
    main()
