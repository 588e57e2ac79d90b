import json

import numpy as np
import pytest

from kdedge.config import DataOptions
from kdedge.data import compute_metrics, get_glue_task, load_task_data
from kdedge.errors import KdedgeError

# (task, train rows, dev rows, dev label counts by class id) as documented in shared/data/glue/SOURCES.md
GLUE_FILES = [
    ("sst2", 67349, 872, [428, 444]),
    ("cola", 8551, 1043, [322, 721]),
    ("mrpc", 3668, 408, [129, 279]),
    ("rte", 2490, 277, [146, 131]),
]


@pytest.mark.parametrize("name,n_train,n_dev,dev_counts", GLUE_FILES)
def test_glue_local_loader_counts_and_labels(glue_dir, name, n_train, n_dev, dev_counts):
    data = load_task_data(DataOptions(task=name, data_dir=str(glue_dir)))
    assert (len(data.train), len(data.dev)) == (n_train, n_dev)
    assert np.bincount(data.dev.labels).tolist() == dev_counts
    assert data.task.is_pair == (name in ("mrpc", "rte"))
    assert all(isinstance(t, str) and t for t in data.dev.text)


def test_stsb_is_regression_with_scores(glue_dir):
    data = load_task_data(DataOptions(task="stsb", data_dir=str(glue_dir)))
    assert (len(data.train), len(data.dev)) == (5749, 1500)
    assert data.dev.labels.dtype == np.float32
    assert 0.0 <= data.dev.labels.min() and data.dev.labels.max() <= 5.0
    assert data.dev.labels.mean() == pytest.approx(2.364, abs=1e-3)
    assert data.dev.text_pair[0] == "A man wearing a hard hat is dancing."


def test_glue_quirks(glue_dir):
    mrpc = load_task_data(DataOptions(task="MRPC", data_dir=str(glue_dir)))  # BOM before 'Quality'
    assert mrpc.train.text[0].startswith("Amrozi accused his brother")
    cola = load_task_data(DataOptions(task="cola", data_dir=str(glue_dir)))  # no header row
    assert cola.train.text[0].startswith("Our friends won't buy this analysis")
    rte = load_task_data(DataOptions(task="rte", data_dir=str(glue_dir)))  # string labels
    assert rte.task.label_names == ("entailment", "not_entailment") and rte.dev.labels[0] == 1


def test_data_dir_from_environment(glue_dir, monkeypatch):
    monkeypatch.setenv("KDEDGE_DATA_DIR", str(glue_dir))
    assert len(load_task_data(DataOptions(task="sst2")).dev) == 872


def test_max_train_samples_is_a_fixed_sample(glue_dir):
    a = load_task_data(DataOptions(task="sst2", data_dir=str(glue_dir), max_train_samples=200, max_eval_samples=50))
    b = load_task_data(DataOptions(task="sst2", data_dir=str(glue_dir), max_train_samples=200))
    assert len(a.train) == 200 and len(a.dev) == 50
    assert a.train.text == b.train.text
    assert a.train.fingerprint() == b.train.fingerprint()


def test_a_glue_task_scores_another_dev_file_in_its_layout(glue_dir, tmp_path):
    imdb = tmp_path / "imdb.tsv"
    imdb.write_text("sentence\tlabel\nA long, slow and lovely film.\t1\nTwo hours I will never get back.\t0\n")
    data = load_task_data(DataOptions(task="sst2", data_dir=str(glue_dir), dev_file=str(imdb)))
    assert len(data.train) == 67349 and data.dev.labels.tolist() == [1, 0]
    assert data.dev.text[1] == "Two hours I will never get back." and data.dev.source == str(imdb)
    imdb.write_text("text\tlabel\nfine\t1\n")
    with pytest.raises(KdedgeError, match="column 'sentence' not found"):
        load_task_data(DataOptions(task="sst2", data_dir=str(glue_dir), dev_file=str(imdb)))


def test_unknown_task_names_the_way_out():
    with pytest.raises(KdedgeError, match="unknown task 'sst3'"):
        load_task_data(DataOptions(task="sst3", data_dir="."))


def test_missing_glue_folder(tmp_path):
    with pytest.raises(KdedgeError, match="GLUE folder for sst2 not found"):
        load_task_data(DataOptions(task="sst2", data_dir=str(tmp_path)))


def test_hub_unreachable_points_to_data_dir(monkeypatch):
    monkeypatch.delenv("KDEDGE_DATA_DIR", raising=False)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(KdedgeError, match="--data-dir"):
        load_task_data(DataOptions(task="rte"))


def _write(path, text):
    path.write_text(text)
    return str(path)


def test_custom_csv_with_a_bad_row_names_file_line_and_column(tmp_path):
    train = _write(tmp_path / "train.csv", "review,stars\ngood film,pos\nawful,neg\nfine\n")
    dev = _write(tmp_path / "dev.csv", "review,stars\nok,pos\n")
    with pytest.raises(KdedgeError, match=r"train\.csv, line 4: .*column 'stars'"):
        load_task_data(DataOptions(train_file=train, dev_file=dev, text_column="review", label_column="stars"))


def test_custom_unknown_label_and_missing_column(tmp_path):
    train = _write(tmp_path / "train.tsv", "text\tlabel\ngreat\tpos\nbad\tneg\n")
    dev = _write(tmp_path / "dev.tsv", "text\tlabel\nmeh\tneutral\n")
    with pytest.raises(KdedgeError, match=r"dev\.tsv, line 2, column 'label': unknown label 'neutral'"):
        load_task_data(DataOptions(train_file=train, dev_file=dev))
    with pytest.raises(KdedgeError, match=r"column 'sentence' not found; the header has: text, label"):
        load_task_data(DataOptions(train_file=train, dev_file=dev, text_column="sentence"))


def test_custom_jsonl_and_parquet_pairs(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"q": f"question {i}", "a": f"answer {i}", "y": i % 3} for i in range(12)]
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    dev = tmp_path / "dev.parquet"
    pq.write_table(pa.Table.from_pylist(rows[:4]), dev)
    data = load_task_data(DataOptions(task="qa", train_file=str(train), dev_file=str(dev), text_column="q",
                                      text_pair_column="a", label_column="y"))
    assert data.task.name == "qa" and data.task.is_pair and data.task.label_names == ("0", "1", "2")
    assert data.dev.text_pair[1] == "answer 1" and data.dev.labels.tolist() == [0, 1, 2, 0]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"q": "x", "a": "y", "y": 1}\n{"q": "x", "y": 1}\n')
    with pytest.raises(KdedgeError, match=r"bad\.jsonl, line 2: column 'a' is missing"):
        load_task_data(DataOptions(train_file=str(bad), dev_file=str(dev), text_column="q",
                                   text_pair_column="a", label_column="y"))


def test_custom_regression_rejects_non_numbers(tmp_path):
    train = _write(tmp_path / "t.csv", "text,label\na,0.5\nb,high\n")
    with pytest.raises(KdedgeError, match=r"t\.csv, line 3, column 'label': 'high' is not a number"):
        load_task_data(DataOptions(train_file=train, dev_file=train, task_type="regression"))


def test_metrics_registry():
    mrpc, stsb, cola = get_glue_task("mrpc"), get_glue_task("stsb"), get_glue_task("cola")
    logits = np.array([[2.0, 1.0], [0.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    m = compute_metrics(mrpc, logits, np.array([0, 1, 0, 0]))
    assert m["accuracy"] == 0.75 and m["f1"] == pytest.approx(2 / 3)
    assert compute_metrics(cola, logits, np.array([0, 1, 1, 0]))["matthews_correlation"] == pytest.approx(1.0)
    s = compute_metrics(stsb, np.array([[1.0], [2.0], [3.0]]), np.array([1.0, 2.5, 2.9]))
    assert s["spearmanr"] == pytest.approx(1.0) and 0.9 < s["pearson"] < 1.0
