"""Bad input, tired users and attackers: each case ends in one clear error that names what to fix (file, line,
column, option), a non-zero exit without a traceback, and nothing half-written."""

import json

import pytest
from click.testing import CliRunner

from kdedge.cli import main
from kdedge.config import DataOptions
from kdedge.data import load_task_data
from kdedge.errors import KdedgeError

GOOD_ROWS = ["a fine film\tpositive", "a dull film\tnegative", "great fun\tpositive", "so boring\tnegative"]


def _files(tmp_path, train_lines, dev_lines=None, name="data.tsv", header="text\tlabel"):
    train, dev = tmp_path / f"train-{name}", tmp_path / f"dev-{name}"
    for path, lines in ((train, train_lines), (dev, dev_lines or GOOD_ROWS)):
        body = "\n".join([header, *lines]) + "\n" if isinstance(lines, list) else lines
        path.write_bytes(body if isinstance(body, bytes) else body.encode())
    return str(train), str(dev)


def _load(train, dev, **kw):
    return load_task_data(DataOptions(train_file=train, dev_file=dev, **kw))


@pytest.mark.parametrize("lines, message", [
    (GOOD_ROWS + ["too\tmany\tfields"], r"train-data.tsv, line 6: 3 field\(s\), but the header has 2 \(a stray tab"),
    (GOOD_ROWS + ["one field only"], r"train-data.tsv, line 6: 1 field\(s\), but the header has 2"),
    (GOOD_ROWS + ["no label\t"], r"line 6, column 'label': the label is empty"),
])
def test_malformed_rows_never_reach_training(tmp_path, lines, message):
    with pytest.raises(KdedgeError, match=message):
        _load(*_files(tmp_path, lines))


def test_duplicate_header_columns_are_refused(tmp_path):
    train, dev = _files(tmp_path, [r + "\tpositive" for r in GOOD_ROWS], header="text\tlabel\tlabel")
    with pytest.raises(KdedgeError, match=r"line 1: the header names column 'label' more than once \(fields 2, 3\)"):
        _load(train, dev)


@pytest.mark.parametrize("score", ["nan", "inf", "-Infinity"])
def test_regression_labels_must_be_finite(tmp_path, score):
    rows = ["a man plays\t1.5", "a dog runs\t3.0", f"bad row\t{score}"]
    train, dev = _files(tmp_path, rows, rows[:2], name="scores.tsv")
    with pytest.raises(KdedgeError, match=rf"train-scores.tsv, line 4, column 'label': '{score}' is not a finite"):
        _load(train, dev, task_type="regression")


def test_non_utf8_bytes_name_the_line_and_byte(tmp_path):
    body = ("text\tlabel\n" + "\n".join(GOOD_ROWS) + "\n").encode() + b"caf\xe9 au lait\tpositive\n"
    train, dev = _files(tmp_path, body)
    with pytest.raises(KdedgeError, match=r"line 6: not valid UTF-8 \(byte 0xe9 at column 4\); save the file as UTF-8"):
        _load(train, dev)
    jsonl = tmp_path / "train.jsonl"
    jsonl.write_bytes(b'{"text": "ok", "label": "positive"}\n{"text": "caf\xe9", "label": "negative"}\n')
    with pytest.raises(KdedgeError, match=r"train.jsonl, line 2: not valid UTF-8"):
        _load(str(jsonl), str(jsonl))


def test_a_megabyte_field_is_read(tmp_path):
    long_text = "word " * 200_000  # 1 MB: past the csv module's 128 KB default
    train, dev = _files(tmp_path, GOOD_ROWS + [f"{long_text}\tpositive"])
    assert len(_load(train, dev).train.text[-1]) > 900_000


def test_jsonl_values_must_be_scalars(tmp_path):
    jsonl = tmp_path / "train.jsonl"
    jsonl.write_text('{"text": "ok", "label": "positive"}\n{"text": ["a", "list"], "label": "negative"}\n')
    with pytest.raises(KdedgeError, match=r"line 2, column 'text': expected a string or a number, not a JSON list"):
        _load(str(jsonl), str(jsonl))


def test_a_file_that_is_not_parquet_is_refused(tmp_path):
    fake = tmp_path / "train.parquet"
    fake.write_text("text,label\nnot,parquet\n")
    with pytest.raises(KdedgeError, match=r"train.parquet: not a readable Parquet file"):
        _load(str(fake), str(fake))


def test_bad_data_through_the_cli_is_one_line_without_traceback(tmp_path):
    train, dev = _files(tmp_path, GOOD_ROWS + ["too\tmany\tfields"])
    result = CliRunner().invoke(main, ["teacher", "--train-file", train, "--dev-file", dev, "--model", "unused",
                                       "--out", str(tmp_path / "t")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert "line 6: 3 field(s), but the header has 2" in result.output
