"""The user's unlabeled text in the transfer set (`kdedge augment --unlabeled`), evaluation sets in distillation,
and distilling from unlabeled text alone."""

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kdedge.config import AugmentConfig, DataOptions, build_config
from kdedge.data import load_task_data
from kdedge.data.transfer import read_shards
from kdedge.errors import KdedgeError


def _augment(tmp_path, teacher, glue_dir, name="aug", **kw):
    from kdedge.augment.run import augment_transfer_set

    base = dict(task="sst2", data_dir=str(glue_dir), teacher=str(teacher), out=str(tmp_path / name),
                max_train_samples=40, max_eval_samples=100, method="none", shard_size=20, seed=3)
    base.update(kw)
    return augment_transfer_set(build_config(AugmentConfig, None, **base))


@pytest.fixture(scope="module")
def sst2(glue_dir):
    return load_task_data(DataOptions(task="sst2", data_dir=str(glue_dir)))


def _texts(sst2, lo, hi) -> list[str]:
    """Dev sentences past the 100 the tests score on: real text that is neither training nor held-out data."""
    return list(sst2.dev.text[lo:hi])


def _write(path: Path, texts: list[str], column="review") -> Path:
    """The same texts in the format the suffix names."""
    if path.suffix == ".txt":
        path.write_text("\n".join(texts) + "\n\n")  # a blank line is skipped
    elif path.suffix == ".csv":
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["id", column])
            writer.writerows([i, t] for i, t in enumerate(texts))
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps({column: t, "stars": 3}) + "\n" for t in texts))
    else:
        pq.write_table(pa.table({column: texts}), path)
    return path


def _teacher_logits(teacher, texts, pairs=None):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from kdedge.data.loaders import Split
    from kdedge.models.teacher_cache import compute_teacher_logits

    model = AutoModelForSequenceClassification.from_pretrained(str(teacher)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(teacher))
    split = Split(texts, np.zeros(len(texts)), pairs)
    return compute_teacher_logits(model, tokenizer, split, max_length=128, batch_size=64)


@pytest.mark.parametrize("suffix", [".txt", ".csv", ".jsonl", ".parquet"])
def test_unlabeled_text_in_each_format_is_labelled_by_the_teacher_with_its_source(suffix, sst2, tiny_teacher,
                                                                                   glue_dir, tmp_path):
    texts = _texts(sst2, 100, 150)
    file = _write(tmp_path / f"reviews{suffix}", texts)
    out = _augment(tmp_path, tiny_teacher, glue_dir, unlabeled=(f"shop={file}",), unlabeled_column="review")
    rows = read_shards(out).to_pylist()
    originals = [r for r in rows if r["source"] == "original"]
    mine = [r for r in rows if r["source"] == "unlabeled:shop"]
    assert len(originals) == 40 and len(mine) == 50 and len(rows) == 90
    assert [r["text"] for r in mine] == texts  # in file order, after the task's rows
    assert all(r["label"] is None and r["parent"] is None for r in mine)
    np.testing.assert_allclose([r["logits"] for r in mine], _teacher_logits(tiny_teacher, texts), atol=1e-5)
    m = json.loads((out / "manifest.json").read_text())
    assert m["metrics"]["unlabeled_rows_read"] == 50 and m["metrics"]["rows_by_source"]["unlabeled:shop"] == 50
    assert m["inputs"]["unlabeled"]["shop"]["source"] == str(file) and len(m["inputs"]["unlabeled"]["shop"]["sha256"]) == 64


def test_unlabeled_caps_ratio_and_augmentation(sst2, tiny_teacher, glue_dir, tmp_path):
    file = _write(tmp_path / "reviews.txt", _texts(sst2, 100, 160))
    capped = _augment(tmp_path, tiny_teacher, glue_dir, name="capped", unlabeled=(str(file),), max_unlabeled=25)
    by_source = json.loads((capped / "manifest.json").read_text())["metrics"]["rows_by_source"]
    assert by_source == {"original": 40, "unlabeled:reviews": 25}  # FILE alone is named after its stem
    mixed = _augment(tmp_path, tiny_teacher, glue_dir, name="mixed", unlabeled=(str(file),), unlabeled_ratio=0.5)
    assert json.loads((mixed / "manifest.json").read_text())["metrics"]["rows_by_source"]["unlabeled:reviews"] == 20
    varied = _augment(tmp_path, tiny_teacher, glue_dir, name="varied", unlabeled=(str(file),), method="rules",
                      variants=1, augment_unlabeled=True, include_originals=False)
    sources = {r["source"] for r in read_shards(varied).to_pylist()}
    assert sources == {"rules", "unlabeled:reviews", "unlabeled:reviews+rules"}


def test_unlabeled_pairs_keep_both_texts(tiny_pair_teacher, glue_dir, tmp_path):
    stsb = load_task_data(DataOptions(task="stsb", data_dir=str(glue_dir)))
    first, second = list(stsb.dev.text[200:230]), list(stsb.dev.text_pair[200:230])
    file = tmp_path / "pairs.tsv"
    file.write_text("a\tb\n" + "".join(f"{x}\t{y}\n" for x, y in zip(first, second)))
    out = _augment(tmp_path, tiny_pair_teacher, glue_dir, task="stsb", unlabeled=(f"faq={file}",), unlabeled_column="a",
                   unlabeled_pair_column="b", include_originals=False)
    rows = read_shards(out).to_pylist()
    assert [(r["text"], r["text_pair"], r["source"]) for r in rows] == [(x, y, "unlabeled:faq") for x, y in
                                                                        zip(first, second)]
    assert all(r["label"] is None for r in rows)
    np.testing.assert_allclose([r["logits"] for r in rows], _teacher_logits(tiny_pair_teacher, first, second), atol=1e-5)
    with pytest.raises(KdedgeError, match="a .txt file holds one text a line, but this is a pair task"):
        _augment(tmp_path, tiny_pair_teacher, glue_dir, name="txt", task="stsb",
                 unlabeled=(str(_write(tmp_path / "p.txt", first)),))
    with pytest.raises(KdedgeError, match="name the second text's column with --unlabeled-pair-column"):
        _augment(tmp_path, tiny_pair_teacher, glue_dir, name="nopair", task="stsb", unlabeled=(str(file),),
                 unlabeled_column="a")


def test_a_line_in_dev_or_an_eval_file_never_enters_the_set(sst2, tiny_teacher, glue_dir, tmp_path):
    eval_texts = _texts(sst2, 300, 340)
    eval_file = tmp_path / "held.tsv"
    eval_file.write_text("sentence\tlabel\n" + "".join(f"{t}\t1\n" for t in eval_texts))
    in_dev, in_eval = sst2.dev.text[7], eval_texts[3]
    texts = _texts(sst2, 100, 120) + [in_dev, in_eval.upper(), in_eval + " !"]
    file = _write(tmp_path / "reviews.txt", texts)
    out = _augment(tmp_path, tiny_teacher, glue_dir, unlabeled=(str(file),), eval_file=(f"held={eval_file}",))
    kept = {r["text"].lower() for r in read_shards(out).to_pylist()}
    assert kept.isdisjoint({in_dev.lower(), in_eval.lower(), (in_eval + " !").lower()})
    removed = json.loads((out / "manifest.json").read_text())["metrics"]["removed_by_filter"]
    # an exact copy (case aside) of dev and of the eval file, and a near copy of the eval file
    assert removed["dev_leak"] == 1 and removed["eval_leak"] == 1 and removed["near_eval_leak"] == 1
    assert json.loads((out / "manifest.json").read_text())["inputs"]["eval_sets"]["held"]["rows"] == 40


def test_resume_mid_file_gives_the_same_shards(sst2, tiny_teacher, glue_dir, tmp_path, monkeypatch):
    import kdedge.augment.run as run_module

    file = _write(tmp_path / "reviews.jsonl", _texts(sst2, 100, 170))
    kw = dict(unlabeled=(f"r={file}",), unlabeled_column="review", method="rules", variants=1,
              augment_unlabeled=True)
    whole = _augment(tmp_path, tiny_teacher, glue_dir, name="whole", **kw)
    real_write, written = run_module.write_shard, []

    def dies_in_the_unlabeled_file(path, *args):
        if len(written) == 3:  # 2 shards of task rows, 1 of the file: killed inside the file
            raise KeyboardInterrupt
        real_write(path, *args)
        written.append(path)

    monkeypatch.setattr(run_module, "write_shard", dies_in_the_unlabeled_file)
    with pytest.raises(KeyboardInterrupt):
        _augment(tmp_path, tiny_teacher, glue_dir, name="killed", **kw)
    monkeypatch.setattr(run_module, "write_shard", real_write)
    resumed = _augment(tmp_path, tiny_teacher, glue_dir, name="killed", resume=True, **kw)
    shards = sorted(whole.glob("shard-*.parquet"))
    assert len(shards) == 6  # 40 task rows and 70 unlabeled rows, 20 a shard
    for a, b in zip(shards, sorted(resumed.glob("shard-*.parquet")), strict=True):
        assert pq.read_table(a).to_pylist() == pq.read_table(b).to_pylist()


def test_distil_from_unlabeled_text_alone_with_an_eval_set(sst2, tiny_teacher, glue_dir, tmp_path):
    """A user's own task with no labelled training rows: a dev file, their text, and the teacher."""
    from kdedge.config import DistillConfig
    from kdedge.distill.run import distill_student

    names = ("negative", "positive")
    dev = tmp_path / "dev.csv"
    with dev.open("w", newline="") as f:
        csv.writer(f).writerows([("review", "sentiment")] + [(t, names[l]) for t, l in
                                                             zip(sst2.dev.text[:80], sst2.dev.labels[:80])])
    held = tmp_path / "held.csv"
    with held.open("w", newline="") as f:
        csv.writer(f).writerows([("review", "sentiment")] + [(t, names[l]) for t, l in
                                                             zip(sst2.dev.text[400:460], sst2.dev.labels[400:460])])
    reviews = _write(tmp_path / "reviews.txt", list(sst2.train.text[:300]))
    data = dict(task="reviews", dev_file=str(dev), text_column="review", label_column="sentiment")
    transfer = _augment(tmp_path, tiny_teacher, None, name="t", data_dir=None, max_train_samples=None,
                        unlabeled=(str(reviews),), **data)
    rows = read_shards(transfer).to_pylist()
    assert len(rows) > 250 and {r["source"] for r in rows} == {"unlabeled:reviews"}
    out = distill_student(build_config(
        DistillConfig, None, teacher=str(tiny_teacher), transfer=str(transfer), out=str(tmp_path / "s"),
        student="tinybert", layers=1, epochs=1, batch_size=32, eval_file=(f"held={held}",), select_on="held",
        cache_dir=str(tmp_path / "cache"), **data))
    m = json.loads((out / "metrics.json").read_text())
    assert m["selected_on"] == "held" and set(m["eval"]) == {"held"}
    held_scores = m["eval"]["held"]
    assert held_scores["retention"] == pytest.approx(held_scores["student"]["accuracy"]
                                                     / held_scores["teacher"]["accuracy"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"]["train"]["rows"] == len(rows) and manifest["inputs"]["eval_sets"]["held"]["rows"] == 60
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert any("held" in r.get("eval", {}) for r in log)
    with pytest.raises(KdedgeError, match="--select-on imdb: no such set \\(known: dev, held\\)"):
        distill_student(build_config(
            DistillConfig, None, teacher=str(tiny_teacher), transfer=str(transfer), out=str(tmp_path / "s2"),
            eval_file=(f"held={held}",), select_on="imdb", **data))


def test_augment_refuses_what_it_cannot_build(tiny_teacher, glue_dir, tmp_path):
    with pytest.raises(KdedgeError, match="nothing to build a transfer set from"):
        _augment(tmp_path, tiny_teacher, glue_dir, include_originals=False)
    with pytest.raises(KdedgeError, match="--augment-unlabeled varies the --unlabeled rows with --method"):
        _augment(tmp_path, tiny_teacher, glue_dir, name="a", augment_unlabeled=True, unlabeled=("x.txt",))
    with pytest.raises(KdedgeError, match="--unlabeled: file not found: .*missing.txt"):
        _augment(tmp_path, tiny_teacher, glue_dir, name="b", unlabeled=(str(tmp_path / "missing.txt"),))
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\nbroken \xff line\n")
    with pytest.raises(KdedgeError, match="bad.txt, line 2: not valid UTF-8 \\(byte 0xff at column 8\\)"):
        _augment(tmp_path, tiny_teacher, glue_dir, name="c", unlabeled=(str(bad),))
