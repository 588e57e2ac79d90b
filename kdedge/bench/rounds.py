"""Latency over several rounds: on a shared machine one measurement can land in a noisy minute, so each model is timed
again in later rounds (the models interleaved) and every figure is the median over rounds."""

from __future__ import annotations

import statistics


def round_order(count: int, round_index: int) -> list[int]:
    """The jobs' order in a round: forward, then backward, alternately, so a slow drift hits every model alike."""
    order = list(range(count))
    return order[::-1] if round_index % 2 else order


def median_over_rounds(latencies: list[dict]) -> dict:
    """One worker latency dict ({"real": {bs: summary}, "padded": {bs: {len: summary}}}) per round -> the same shape,
    each summary's figures the median over rounds, its runs summed, and the rounds' p50s kept as p50_rounds_ms."""
    first = latencies[0]
    if "p50_ms" in first:
        merged = {key: statistics.median(s[key] for s in latencies) for key in first if key != "runs"}
        return {"runs": sum(s["runs"] for s in latencies), **merged,
                "p50_rounds_ms": [s["p50_ms"] for s in latencies]}
    return {key: median_over_rounds([lat[key] for lat in latencies]) for key in first}
