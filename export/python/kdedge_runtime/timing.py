"""Latency measurement: warm-up, then timed runs until both a minimum count and a minimum time are reached.

The clock is a parameter so the statistics can be tested against known timings.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np


def measure(run: Callable[[], object], *, warmup: int, min_runs: int, min_time: float, max_runs: int,
            clock: Callable[[], float] = time.perf_counter) -> list[float]:
    """Seconds per call of `run` (which must block until its result is ready)."""
    for _ in range(warmup):
        run()
    times: list[float] = []
    spent = 0.0
    while len(times) < max_runs and (len(times) < min_runs or spent < min_time):
        start = clock()
        run()
        elapsed = clock() - start
        times.append(elapsed)
        spent += elapsed
    return times


def summarize(times_s: list[float], batch_size: int) -> dict:
    """Percentiles (linear interpolation), mean and std in milliseconds; throughput in examples per second."""
    ms = np.asarray(times_s, dtype=np.float64) * 1000.0
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    mean = float(ms.mean())
    return {"runs": int(ms.size), "p50_ms": float(p50), "p90_ms": float(p90), "p99_ms": float(p99),
            "mean_ms": mean, "std_ms": float(ms.std(ddof=1)) if ms.size > 1 else 0.0,
            "throughput": batch_size * 1000.0 / mean if mean > 0 else float("inf")}
