"""Bundles and reference logits for the browser tests: tiny students distilled and exported by kdedge, and what the
Python runtime (kdedge_runtime) computes for each on real GLUE dev rows and edge cases.

    python test/fixtures.py OUT   (from export/web, in kdedge's environment; `npm test` runs it)

OUT/<case>/bundle is the bundle, OUT/<case>/expected.json its inputs and the Python runtime's logits and labels.
Rebuilt only when kdedge's code or this script changed (OUT/stamp).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
BATCH = 7  # int8 logits depend on which rows share a batch (dynamic ranges): both runtimes use the same batches
EDGE_TEXTS = ["", "   ", "a " * 400, "Ce film était très émouvant — 真的很好看! 🎬👍", "ÅNGSTRÖM naïve café", "\t\n"]
EDGE_PAIRS = ["something", "b " * 300, "", "a pair", "x", "naïve café"]


def stamp() -> str:
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for folder in (ROOT / "kdedge", ROOT / "export" / "python" / "kdedge_runtime"):
        for file in sorted(folder.rglob("*.py")):
            digest.update(file.read_bytes())
    return digest.hexdigest()


def build(out: Path) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from transformers.utils import logging as hf_logging

        from kdedge.config import DataOptions
        from kdedge.data import load_task_data
        from kdedge_runtime import Classifier
        from tests.conftest import GLOVE, GLUE_DIR, _distil_at, build_tiny_bert, export_tiny
    except ImportError as e:
        sys.exit(f"error: the browser tests build their bundles with kdedge ({e}): run them in kdedge's environment "
                 "(python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[dev]' at the repository root)")
    hf_logging.disable_progress_bar()  # its per-model "Loading weights" bars
    for needed in (GLUE_DIR / "SST-2" / "dev.tsv", GLUE_DIR / "STS-B" / "dev.tsv", GLOVE):
        if not needed.is_file():
            sys.exit(f"error: {needed} not found: the browser tests read GLUE and GloVe from ../shared "
                     "(or set KDEDGE_SHARED)")

    def data(task, **kw):
        return load_task_data(DataOptions(task=task, data_dir=str(GLUE_DIR), **kw))

    work = Path(tempfile.mkdtemp(prefix="kdedge-web-fixtures-"))
    os.environ["KDEDGE_CACHE_DIR"] = str(work / "cache")
    sst2, stsb = data("sst2", max_train_samples=2000), data("stsb", max_train_samples=1000, max_eval_samples=200)
    teacher = build_tiny_bert(work / "teacher", sst2.train.text + sst2.dev.text, 2, label_names=("negative", "positive"))
    pair_teacher = build_tiny_bert(work / "pair-teacher", stsb.train.text + stsb.train.text_pair, 1, regression=True)
    glove = dict(word_vectors=str(GLOVE), lstm_hidden=16, mlp_hidden=16, lr=1e-2)
    tinybert = dict(student="tinybert", layers=1, init="teacher-layers", lr=1e-3)
    pair = dict(task="stsb", max_train_samples=300, max_eval_samples=100, epochs=1)
    students = {
        "sst2-bilstm": _distil_at(work / "sst2-bilstm", teacher, GLUE_DIR, **glove),
        "sst2-tinybert": _distil_at(work / "sst2-tinybert", teacher, GLUE_DIR, **tinybert),
        "stsb-tinybert": _distil_at(work / "stsb-tinybert", pair_teacher, GLUE_DIR, **tinybert, **pair),
        "stsb-bilstm": _distil_at(work / "stsb-bilstm", pair_teacher, GLUE_DIR, **glove, **pair),
    }
    sst2_texts = list(data("sst2", max_eval_samples=300).dev.text) + EDGE_TEXTS
    stsb_texts = list(stsb.dev.text) + EDGE_TEXTS
    stsb_pairs = list(stsb.dev.text_pair) + EDGE_PAIRS
    cases = {  # case -> (student, quantize, texts, pairs)
        "sst2-tinybert": ("sst2-tinybert", "none", sst2_texts, None),
        "sst2-bilstm": ("sst2-bilstm", "none", sst2_texts, None),
        "sst2-tinybert-int8": ("sst2-tinybert", "dynamic", sst2_texts, None),
        "stsb-tinybert": ("stsb-tinybert", "none", stsb_texts, stsb_pairs),
        "stsb-bilstm": ("stsb-bilstm", "none", stsb_texts, stsb_pairs),
    }
    for case, (student, quantize, texts, pairs) in cases.items():
        bundle = export_tiny(students[student], GLUE_DIR, work / "bundles" / case, quantize=quantize)
        classifier = Classifier(bundle)
        logits = classifier.logits(texts, pairs, batch_size=BATCH)
        labels = [p.label for p in classifier.predict(texts, pairs, batch_size=BATCH)]
        shutil.copytree(bundle, out / case / "bundle")
        (out / case / "expected.json").write_text(json.dumps({
            "texts": texts, "pairs": pairs, "batch_size": BATCH, "precision": "int8" if quantize != "none" else "fp32",
            "logits": logits.tolist(), "labels": labels}))
        print(f"fixtures: {case}: {len(texts)} rows")
    shutil.rmtree(work, ignore_errors=True)


def main(out: Path) -> None:
    wanted = stamp()
    partial = out.with_name(out.name + ".partial")
    partial.parent.mkdir(parents=True, exist_ok=True)
    # test runs started side by side build the fixtures once: the first holds the lock, the others then find them
    with open(out.with_name(out.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (out / "stamp").is_file() and (out / "stamp").read_text() == wanted:
            print(f"fixtures: {out} is up to date")
            return
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        build(partial)
        (partial / "stamp").write_text(wanted)
        shutil.rmtree(out, ignore_errors=True)
        partial.rename(out)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python test/fixtures.py OUT")
    main(Path(sys.argv[1]).resolve())
