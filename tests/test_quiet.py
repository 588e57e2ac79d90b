"""Known library noise is silenced where it arises, only that noise, and `--verbose` shows it."""

import logging
import warnings

import pytest

from kdedge.quiet import VERBOSE_ENV, known_noise


def _emit():
    warnings.warn("a known harmless thing", UserWarning)
    warnings.warn("something real", UserWarning)
    logging.getLogger("somelib").warning("known advice for everyone")
    logging.getLogger("somelib").warning("a real problem")


NOISE = dict(warns=((UserWarning, "^a known harmless"),), logs=(("somelib", "^known advice"),))


@pytest.mark.parametrize("verbose", [False, True])
def test_only_the_named_noise_is_silenced_unless_verbose(monkeypatch, caplog, verbose):
    if verbose:
        monkeypatch.setenv(VERBOSE_ENV, "1")
    else:
        monkeypatch.delenv(VERBOSE_ENV, raising=False)
    with warnings.catch_warnings(record=True) as seen, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        with known_noise(**NOISE):
            _emit()
    shown = {str(w.message) for w in seen} | {r.getMessage() for r in caplog.records}
    assert {"something real", "a real problem"} <= shown
    assert ({"a known harmless thing", "known advice for everyone"} <= shown) == verbose
    # outside the block nothing is filtered any more
    with warnings.catch_warnings(record=True) as after:
        warnings.simplefilter("always")
        _emit()
    assert "a known harmless thing" in {str(w.message) for w in after}


def test_the_cli_flag_sets_verbose_for_the_worker_processes(monkeypatch):
    import os

    from click.testing import CliRunner

    from kdedge.cli import main

    monkeypatch.setenv(VERBOSE_ENV, "0")  # recorded, so the flag's change is undone after the test
    assert CliRunner().invoke(main, ["--verbose", "doctor"]).exit_code == 0
    assert os.environ.get(VERBOSE_ENV) == "1"
