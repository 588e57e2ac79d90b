"""How long each fuzz target runs: a seeded CI budget, or a time budget for benchmarks/fuzz.sh.

    (default)                     profile "ci": derandomized (the same examples every run), the target's own small
                                  example count (a few hundred in all), no example database
    KDEDGE_FUZZ_EXAMPLES=N        every target tries N examples per round
    HYPOTHESIS_PROFILE=long       random (not seeded) examples
    KDEDGE_FUZZ_SECONDS=S         rounds of examples until S seconds are spent on each target (with the long profile)
    KDEDGE_FUZZ_STATS=FILE.json   the number of cases tried per target, written at the end of the run
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, settings

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
          HealthCheck.function_scoped_fixture, HealthCheck.large_base_example]
settings.register_profile("ci", derandomize=True, database=None, deadline=None, suppress_health_check=_QUIET,
                          print_blob=True)
settings.register_profile("long", derandomize=False, database=None, deadline=None, suppress_health_check=_QUIET,
                          print_blob=True)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
SECONDS = float(os.environ.get("KDEDGE_FUZZ_SECONDS", 0))
EXAMPLES = int(os.environ["KDEDGE_FUZZ_EXAMPLES"]) if os.environ.get("KDEDGE_FUZZ_EXAMPLES") else None
CASES: Counter = Counter()  # cases tried per target in this run
FINDINGS: dict[str, str] = {}


def fuzz(target: str, prop, examples: int) -> None:
    """Run the @given property `prop` (no arguments left): `examples` cases (the CI budget), or rounds of cases until
    KDEDGE_FUZZ_SECONDS are spent. The first failing case fails the test, Hypothesis showing it shrunk."""
    n = EXAMPLES or examples
    runner = settings(settings.get_profile(PROFILE), max_examples=n)(prop)
    deadline = time.monotonic() + SECONDS
    while True:
        try:
            runner()
        except BaseException as e:
            FINDINGS[target] = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300] if str(e).strip() else ''}"
            raise
        if time.monotonic() >= deadline or PROFILE == "ci" and not SECONDS:
            return


def count(target: str) -> None:
    CASES[target] += 1


def write_stats() -> None:
    path = os.environ.get("KDEDGE_FUZZ_STATS")
    if path:
        Path(path).write_text(json.dumps({"profile": PROFILE, "seconds_per_target": SECONDS, "cases": dict(CASES),
                                          "findings": FINDINGS}, indent=2) + "\n")
