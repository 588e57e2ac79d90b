"""Known, harmless library noise is silenced where it arises, never by a global filter that would hide real
warnings too. `kdedge --verbose` (or KDEDGE_VERBOSE=1, which the bench's worker processes inherit) shows it."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import warnings
from typing import Iterator

VERBOSE_ENV = "KDEDGE_VERBOSE"


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


class _DropMatching(logging.Filter):
    def __init__(self, pattern: str):
        super().__init__()
        self._pattern = re.compile(pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        return not self._pattern.search(record.getMessage())


@contextlib.contextmanager
def known_noise(*, warns: tuple[tuple[type[Warning], str], ...] = (),
                logs: tuple[tuple[str, str], ...] = ()) -> Iterator[None]:
    """Inside the block, drop the warnings `(category, message regex)` and the log records
    `(logger name, message regex)` listed; everything else still shows. A no-op in verbose mode."""
    if verbose():
        yield
        return
    filters = [(logging.getLogger(name or None), _DropMatching(pattern)) for name, pattern in logs]
    with warnings.catch_warnings():
        for category, pattern in warns:
            warnings.filterwarnings("ignore", message=pattern, category=category)
        for logger, f in filters:
            logger.addFilter(f)
        try:
            yield
        finally:
            for logger, f in filters:
                logger.removeFilter(f)


# transformers announces the classification head it adds to a pretrained encoder; kdedge adds it on purpose.
# transformers 5 reports it as a table; only a report whose sole finding is the missing head counts as noise.
_HEAD_ONLY_REPORT = (r"(?ms)LOAD REPORT(?!.*(?:UNEXPECTED|MISMATCH|CONVERSION))"
                     r"(?!.*^(?!classifier\.|score\.|pre_classifier\.)[\w.]+ +\| MISSING)")
NEW_HEAD_NOISE = (("transformers.modeling_utils", r"^Some weights of .* were not initialized from the model checkpoint"),
                  ("transformers.modeling_utils", _HEAD_ONLY_REPORT))
