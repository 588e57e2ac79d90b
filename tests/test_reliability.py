"""Bad input, tired users and attackers: each case ends in one clear error that names what to fix (file, line,
column, option), a non-zero exit without a traceback, and nothing half-written."""


import pytest
import torch
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


@pytest.mark.parametrize("command, args, message", [
    ("teacher", ["--epochs", "-1"], "--epochs must be at least 1, not -1"),
    ("teacher", ["--epochs", "0"], "--epochs must be at least 1, not 0"),
    ("teacher", ["--lr", "-0.001"], "--lr must be greater than 0, not -0.001"),
    ("distill", ["--max-train-samples", "0"], "--max-train-samples must be at least 1, not 0"),
    ("distill", ["--batch-size", "0"], "--batch-size must be at least 1, not 0"),
    ("distill", ["--max-length", "0"], "--max-length must be at least 4, not 0"),
    ("distill", ["--alpha", "1.5"], "--alpha must be between 0 and 1, not 1.5"),
    ("distill", ["--temperature", "0"], "--temperature must be greater than 0, not 0.0"),
    ("augment", ["--p-replace", "2"], "--p-replace must be between 0 and 1, not 2.0"),
    ("bench", ["--min-runs", "0"], "--min-runs must be at least 1, not 0"),
    ("export", ["--opset", "7"], "--opset must be between 13 and 23, not 7"),
])
def test_option_ranges_are_checked_before_any_work(tmp_path, command, args, message):
    needed = {"teacher": [], "distill": ["--teacher", "t"], "augment": ["--teacher", "t"], "bench": [],
              "export": ["--model", "m"]}[command]
    result = CliRunner().invoke(main, [command, *needed, *args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and result.output == f"Error: {message}\n", result.output
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a .partial folder


def test_the_same_range_check_in_yaml_and_python(tmp_path):
    from kdedge.config import DistillConfig, build_config

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("batch-size: 0\n")
    with pytest.raises(KdedgeError, match="^--batch-size must be at least 1, not 0$"):
        build_config(DistillConfig, str(recipe), teacher="t", out="o")
    with pytest.raises(KdedgeError, match="^--batch-size must be at least 1, not 0$"):
        DistillConfig(teacher="t", out="o", batch_size=0)


def test_broken_yaml_is_one_line_naming_the_place(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("epochs: 3\nlr: [1e-4\n")
    result = CliRunner().invoke(main, ["distill", "--config", str(recipe), "--teacher", "t", "--out", "o"])
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "recipe.yaml, line 3, column 1: not valid YAML" in result.output


def test_a_run_that_fails_on_bad_input_does_not_block_the_corrected_rerun(tiny_teacher, glue_dir, tmp_path):
    from tests.conftest import _distil_at

    with pytest.raises(KdedgeError, match="cannot load teacher"):
        _distil_at(tmp_path, tmp_path / "no-such-teacher", glue_dir, epochs=1)
    assert not (tmp_path / "s.partial").exists() and not (tmp_path / "s").exists()
    out = _distil_at(tmp_path, tiny_teacher, glue_dir, epochs=1)  # no --overwrite or --resume needed
    assert (out / "model.safetensors").is_file()


def test_an_interrupted_run_keeps_its_checkpoints_for_resume(tiny_teacher, glue_dir, tmp_path, monkeypatch):
    from kdedge import training
    from tests.conftest import _distil_at

    real_save = training.TrainState.save
    calls = []

    def save_then_die(self, path):
        real_save(self, path)
        calls.append(path)
        raise KeyboardInterrupt  # Ctrl-C right after the first checkpoint

    monkeypatch.setattr(training.TrainState, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        _distil_at(tmp_path, tiny_teacher, glue_dir, epochs=1, save_steps=2)
    assert calls and (tmp_path / "s.partial").is_dir()
    with pytest.raises(KdedgeError, match="found an interrupted run"):
        _distil_at(tmp_path, tiny_teacher, glue_dir, epochs=1, save_steps=2)


def _weights(folder):
    from safetensors.numpy import load_file

    return load_file(str(folder / "model.safetensors"))


def _same_weights(a, b) -> bool:
    import numpy as np

    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)


def test_the_same_seed_gives_bit_identical_teachers(tiny_teacher, glue_dir, tmp_path):
    from transformers import AutoModel, AutoTokenizer

    from kdedge.config import TeacherConfig, build_config
    from kdedge.teacher import fine_tune_teacher

    encoder = tmp_path / "encoder"  # no classification head: the teacher stage draws a new one
    AutoModel.from_pretrained(tiny_teacher).save_pretrained(encoder)
    AutoTokenizer.from_pretrained(tiny_teacher).save_pretrained(encoder)

    def run(name, seed):
        torch.manual_seed(len(name) * 1000 + ord(name[0]))  # whatever state the process happens to be in
        return fine_tune_teacher(build_config(
            TeacherConfig, None, model=str(encoder), task="sst2", data_dir=str(glue_dir), max_train_samples=96,
            max_eval_samples=32, epochs=1, batch_size=16, lr=1e-3, seed=seed, out=str(tmp_path / name)))

    a, b, c = run("a", 3), run("b", 3), run("c", 4)
    assert _same_weights(a, b) and not _same_weights(a, c)  # a different seed: a different head


@pytest.mark.parametrize("student", [dict(), dict(student="tinybert", layers=1, init="random", hidden=16, heads=2,
                                                  recipe="two-stage", intermediate_epochs=1, lr=1e-3)])
def test_the_same_seed_gives_bit_identical_students(tiny_teacher, glue_dir, tmp_path, student):
    from tests.conftest import _distil_at

    runs = {}
    for name, seed, process_state in (("a", 11, 1), ("b", 11, 2), ("c", 12, 1)):
        torch.manual_seed(process_state)  # whatever state the process happens to be in
        runs[name] = _distil_at(tmp_path / name, tiny_teacher, glue_dir, epochs=1, seed=seed, **student)
    a, b, c = runs["a"], runs["b"], runs["c"]
    assert _same_weights(a, b) and not _same_weights(a, c)


def test_a_damaged_checkpoint_under_resume_is_one_clear_error(tiny_teacher, glue_dir, tmp_path, monkeypatch):
    from kdedge import training
    from tests.conftest import _distil_at

    real_save, saves = training.TrainState.save, []

    def die_at_the_second_checkpoint(self, path):
        saves.append(path)
        if len(saves) == 2:
            raise KeyboardInterrupt
        real_save(self, path)

    monkeypatch.setattr(training.TrainState, "save", die_at_the_second_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        _distil_at(tmp_path, tiny_teacher, glue_dir, epochs=1, save_steps=2)
    monkeypatch.setattr(training.TrainState, "save", real_save)
    checkpoint = tmp_path / "s.partial" / "checkpoint"
    assert (checkpoint / "trainer_state.json").is_file()  # the first checkpoint is complete
    for item in checkpoint.rglob("*"):
        if item.is_file():
            item.write_bytes(b"\x00garbage" * 3)
    with pytest.raises(KdedgeError, match=r"--resume: the checkpoint in .*checkpoint cannot be read .* --overwrite"):
        _distil_at(tmp_path, tiny_teacher, glue_dir, epochs=1, save_steps=2, resume=True)
    assert checkpoint.is_dir()  # kept: the user decides to start over


@pytest.mark.parametrize("damage", [b"", b"\x93NUMPY garbage", "nan"])
def test_a_damaged_teacher_logit_cache_entry_is_recomputed(tiny_teacher, glue_dir, tmp_path, damage):
    import numpy as np

    from tests.conftest import _distil_at

    _distil_at(tmp_path / "first", tiny_teacher, glue_dir, epochs=1, cache_dir=str(tmp_path / "cache"))
    entries = sorted((tmp_path / "cache" / "teacher-logits").glob("*.npy"))
    good = {e: np.load(e) for e in entries}
    for entry in entries:
        if damage == "nan":
            np.save(entry, np.full_like(good[entry], np.nan))
        else:
            entry.write_bytes(damage)
    _distil_at(tmp_path / "second", tiny_teacher, glue_dir, epochs=1, cache_dir=str(tmp_path / "cache"))
    for entry in entries:  # healed: the same logits as computed the first time
        np.testing.assert_array_equal(np.load(entry), good[entry])


def test_zero_epochs_keep_the_student_as_it_starts(tmp_path, tiny_teacher, glue_dir):
    """--epochs 0 trains nothing: the student as initialised is evaluated once and written (it crashed on a missing
    best checkpoint)."""
    import json

    from tests.conftest import _distil_at

    out = _distil_at(tmp_path, tiny_teacher, glue_dir, student="tinybert", layers=1, epochs=0)
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["dev"]["accuracy"] <= 1.0 and (out / "model.safetensors").is_file()
