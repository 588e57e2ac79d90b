"""A child process that loads bundles with kdedge_runtime and classifies a few texts, one JSON request a line, so a
native crash (ONNX Runtime or tokenizers reading a hostile file) or a hang is a finding of the test, not the end of
the test run. The child's peak memory is reported with each answer.

    python -m tests.fuzz.isolated        (reads {"bundle": DIR, "texts": [...]} lines, answers one JSON line each)
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 60  # per bundle: load, one probe, a few texts (a tiny bundle takes well under a second)
MARK = "@@answer "  # what the libraries print on stdout (ONNX Runtime, protobuf) is not an answer
MAX_RSS_MB = 2048  # the stated bound on the child's peak memory (tiny bundles of ~1 MB; it starts near 150 MB)


def _answer(request: dict) -> dict:
    from kdedge_runtime import BundleError, Classifier

    try:
        classifier = Classifier(request["bundle"])
        texts = request["texts"]
        pairs = [t[::-1] for t in texts] if classifier.is_pair else None
        predictions = classifier.predict(texts, pairs)
        fine = all((p.label is None) == classifier.is_regression and (p.label is None or p.label in classifier.labels)
                   for p in predictions) and len(predictions) == len(texts)
        answer = {"ok": fine, "predictions": len(predictions)}
    except BundleError as e:
        answer = {"error": "BundleError", "message": str(e)}
    except BaseException as e:  # noqa: BLE001 (any other type is the finding)
        import traceback

        answer = {"error": type(e).__name__, "message": str(e)[:2000], "traceback": traceback.format_exc()[-3000:]}
    answer["peak_rss_mb"] = _peak_mb()
    return answer


def _reset_peak() -> None:
    """Linux: the peak resident size (/proc/self/status, VmHWM) starts again from the current size, so each answer
    reports its own request's peak. Without it the peak is the child's whole life's, and one heavy case would be
    blamed on every case after it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:  # not Linux: the lifetime peak, which the parent's restart after an over-bound answer bounds
        pass


def _peak_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    for line in sys.stdin:
        _reset_peak()
        print(MARK + json.dumps(_answer(json.loads(line))), flush=True)


class BundleLoader:
    """The parent's side: `load(bundle, texts)` is the child's answer; a crash or a hang raises AssertionError (and
    the next call starts a fresh child)."""

    def __init__(self):
        self.proc = None

    def _start(self):
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.fuzz.isolated"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT, env=env)

    def load(self, bundle: Path, texts: list[str]) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        request = json.dumps({"bundle": str(bundle), "texts": texts})
        self.proc.stdin.write(request + "\n")
        self.proc.stdin.flush()
        line: list[str] = []

        def read():
            while (text := self.proc.stdout.readline()) and not text.startswith(MARK):
                pass
            line.append(text[len(MARK):] if text else "")

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(TIMEOUT_S)
        if reader.is_alive():
            self.close()
            raise AssertionError(f"hang: no answer in {TIMEOUT_S} s loading {bundle}")
        if not line or not line[0]:
            code = self.proc.wait()
            self.proc = None
            raise AssertionError(f"the process crashed (exit {code}) loading {bundle}")
        answer = json.loads(line[0])
        if answer["peak_rss_mb"] >= MAX_RSS_MB:
            self.close()  # a fresh child for the next case, whatever it holds now
            raise AssertionError(f"peak memory {answer['peak_rss_mb']:.0f} MB loading {bundle}")
        return answer

    def close(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


if __name__ == "__main__":
    main()
